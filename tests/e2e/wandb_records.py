"""Read back what an offline W&B run wrote: its ``run-<id>.wandb`` file as protobuf records.

wandb 0.31 ships no Python reader of that file any more (``wandb.sdk.internal.datastore`` is
gone: its Go core writes it), so this is the format, as the core writes it: a LevelDB-style
log. A 7-byte file header (``:W&B``, magic 0xBEE1, version 0), then 32 KiB blocks of chunks,
each a 7-byte header (CRC32 4, length 2, kind 1: full, first, middle, last) and its data; a
block's tail shorter than a header is padding. A record (``wandb_internal_pb2.Record``) is one
full chunk, or a first, middles and a last.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[pb.Record]:
    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if length == 0 and kind == 0:  # zero fill at the end of a block or file
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            pending = chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind == MIDDLE:
            pending += chunk
            continue
        else:
            assert kind == LAST, kind
            pending += chunk
        record = pb.Record()
        record.ParseFromString(pending)
        records.append(record)
        pending = b""
    return records


def _value(value_json: str) -> Any:
    try:
        return json.loads(value_json)
    except ValueError:
        return value_json


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


@dataclass
class OfflineRun:
    """The parts of an offline run the tests read: its identity, config, summary, metrics
    definitions, logged rows and artifacts."""

    dir: Path
    records: list[pb.Record]
    run: pb.RunRecord = field(init=False)
    config: dict[str, Any] = field(init=False)
    summary: dict[str, Any] = field(init=False)
    history: list[dict[str, Any]] = field(init=False)
    metrics: list[pb.MetricRecord] = field(init=False)
    artifacts: list[pb.ArtifactRecord] = field(init=False)
    used_artifacts: list[pb.UseArtifactRecord] = field(init=False)

    def __post_init__(self) -> None:
        kinds = [r.WhichOneof("record_type") for r in self.records]
        (self.run,) = [r.run for r, k in zip(self.records, kinds, strict=True) if k == "run"][:1]
        self.config = {_key(i): _value(i.value_json) for i in self.run.config.update}
        self.summary, self.history, self.metrics, self.artifacts = {}, [], [], []
        self.used_artifacts = []
        for record, kind in zip(self.records, kinds, strict=True):
            if kind == "config":
                self.config.update({_key(i): _value(i.value_json) for i in record.config.update})
            elif kind == "summary":
                self.summary.update({_key(i): _value(i.value_json) for i in record.summary.update})
            elif kind == "history":
                self.history.append({_key(i): _value(i.value_json) for i in record.history.item})
            elif kind == "metric":
                self.metrics.append(record.metric)
            elif kind == "artifact":
                self.artifacts.append(record.artifact)
            elif kind == "use_artifact":
                self.used_artifacts.append(record.use_artifact)

    def artifact_files(self, artifact: pb.ArtifactRecord) -> list[str]:
        return sorted(entry.path for entry in artifact.manifest.contents)


def offline_run(run_dir: Path) -> OfflineRun:
    """The one offline W&B run under ``run_dir/wandb``."""
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    (file,) = runs[0].glob("run-*.wandb")
    return OfflineRun(runs[0], read_records(file))


def offline_env(tmp_path: Path) -> dict[str, str]:
    """A subprocess environment for offline W&B runs: no API key, no W&B setting of the
    developer's own, every W&B directory inside ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return {
        **env,
        "WANDB_MODE": "offline",
        "WANDB_API_KEY": "",
        "WANDB_ERROR_REPORTING": "false",
        "WANDB_DIR": str(tmp_path),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
    }
