"""Callbacks the fault tests add to a real run.

``LastCheckpointProbe``: at the start of every iteration, records which iteration the run is
at and how many environment steps ``last.ckpt`` holds, to a JSON-lines file that survives
``kill -9`` (each line fsynced)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytorch_lightning as pl
import torch

from adan.evaluation.checkpoint import read_checkpoint


class LastCheckpointProbe(pl.Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        last = Path(trainer.checkpoint_callback.dirpath) / "last.ckpt"
        steps = read_checkpoint(last)["adan_state"]["env_steps"] if last.exists() else 0
        row = {"iteration": trainer.current_epoch, "last_ckpt_steps": steps}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())


def read(path: Path) -> list[dict]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(x) for x in lines if x.strip()]


class PoisonParameters(pl.Callback):
    """Fault injection: at the start of iteration ``at``, the critic's output weights become
    NaN (what a numerical blow-up inside the network leaves behind)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.at:
            with torch.no_grad():
                pl_module.policy.value_head.weight.fill_(float("nan"))
