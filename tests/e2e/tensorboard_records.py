"""Read back a TensorBoard run's HParams row from its event files, as TensorBoard does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata, plugin_data_pb2


def read_hparams(logdir: Path) -> tuple[dict[str, Any], list[str], dict[str, float]]:
    """(hyperparameters of the session, metric names of the experiment, each metric's last
    scalar value) of the run whose event files are in ``logdir``."""
    events = EventAccumulator(str(logdir), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    data = {tag: plugin_data_pb2.HParamsPluginData.FromString(raw) for tag, raw in content.items()}
    start = data[metadata.SESSION_START_INFO_TAG].session_start_info
    hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    experiment = data[metadata.EXPERIMENT_TAG].experiment
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert data[metadata.SESSION_END_INFO_TAG].session_end_info.status == 1  # STATUS_SUCCESS
    scalars = set(events.Tags()["scalars"])
    values = {m: events.Scalars(m)[-1].value for m in metrics if m in scalars}
    return hparams, metrics, values
