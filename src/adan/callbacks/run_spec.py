"""Put the run's composed config and its data contract into every checkpoint.

Why: a checkpoint alone must be enough to evaluate or deploy the agent with the exact data
transformation it was trained on: which files and cleaning, which features per timeframe, and
the normalisation statistics fitted on the training split.
``adan.evaluation.checkpoint.market_from_checkpoint`` rebuilds the pipeline from
``adan_config`` and applies the scalers in ``adan_data`` (see ``MarketPipeline.build``).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from adan.checkpoint_format import CONFIG_KEY, DATA_KEY, data_contract

__all__ = ["CONFIG_KEY", "DATA_KEY", "RunSpec", "data_contract"]


class RunSpec(pl.Callback):
    """Adds ``adan_config`` (the resolved config as plain containers) and ``adan_data`` (the
    data contract, or None for gym tasks) to each checkpoint Lightning saves."""

    def __init__(self, config: dict[str, Any], data: dict[str, Any] | None) -> None:
        self.config, self.data = config, data

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CONFIG_KEY] = self.config
        checkpoint[DATA_KEY] = self.data
