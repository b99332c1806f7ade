"""Log per-episode trading metrics of the episodes that finished during each PPO iteration."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl


class TradingMetrics(pl.Callback):
    """Averages the trading statistics the env reports at episode end (return, Sharpe, max
    drawdown, win rate, turnover, costs, trades) over the episodes finished in an iteration and
    logs them as ``trading/<name>``. Envs without trading statistics log nothing."""

    def __init__(self, keys: list[str] | None = None) -> None:
        self.keys = keys

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:  # noqa: ANN001
        episodes = getattr(pl_module, "completed_episodes", [])
        trading = [e for e in episodes if len(e) > 2]  # more than return and length
        if not trading:
            return
        keys = self.keys or [k for k in trading[0] if k not in ("return", "length")]
        metrics = {
            f"trading/{k}": float(np.nanmean([e[k] for e in trading if k in e])) for k in keys
        }
        metrics["trading/episodes"] = float(len(trading))
        pl_module.log_metrics(metrics)
