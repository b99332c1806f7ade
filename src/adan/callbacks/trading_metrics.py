"""Log per-episode trading metrics of the episodes that finished during each PPO iteration."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl


class TradingMetrics(pl.Callback):
    """Averages the trading statistics the env reports at episode end (return, Sharpe, max
    drawdown, win rate, turnover, costs, trades, stop exits, risk clips) over the episodes
    finished in an iteration and logs them as ``trading/<name>``; with several trading
    profiles, also per profile as ``trading/<profile>/<name>``. The trading desk's state is
    logged beside them: the behaviour engine's parameters (``dbe/<param>``) and the risk
    limits' clip counts (``risk/...``). Envs without trading statistics log nothing."""

    def __init__(self, keys: list[str] | None = None) -> None:
        self.keys = keys

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:  # noqa: ANN001
        env = getattr(pl_module, "env", None)
        stats = getattr(env, "trading_stats", None)  # the env's public statistics, if a market
        metrics = dict(stats()) if stats is not None else {}
        episodes = getattr(pl_module, "completed_episodes", [])
        trading = [e for e in episodes if len(e) > 2]  # more than return and length
        if trading:
            skip = ("return", "length", "profile")
            keys = self.keys or [k for k in trading[0] if k not in skip]
            metrics.update(_means(trading, keys, "trading/"))
            metrics["trading/episodes"] = float(len(trading))
            names = getattr(env, "profile_names", ())
            if len(names) > 1:
                for index, name in enumerate(names):
                    mine = [e for e in trading if int(e.get("profile", -1)) == index]
                    if mine:
                        metrics.update(_means(mine, keys, f"trading/{name}/"))
                        metrics[f"trading/{name}/episodes"] = float(len(mine))
        if metrics:
            pl_module.log_metrics(metrics)


def _means(episodes: list[dict], keys: list[str], prefix: str) -> dict[str, float]:
    return {
        prefix + k: float(np.nanmean([e[k] for e in episodes if k in e]))
        for k in keys
        if any(k in e for e in episodes)
    }
