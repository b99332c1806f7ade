"""Evaluators: score a policy on one held-out split, for ``val/...`` during training and the
closing summary. ``TradingEvaluator`` backtests a market split beside buy-and-hold."""

from __future__ import annotations

import numpy as np
import torch

from adan.evaluation.backtest import PolicyActor, record_performance, run_backtest
from adan.evaluation.baselines import buy_and_hold
from adan.evaluation.metrics import bar_returns
from adan.evaluation.records import BacktestRecord
from adan.market.spec import MarketSpec


class TradingEvaluator:
    """Scores a policy on one split: ``__call__`` gives the agent's metrics (for ``val/…``),
    ``compare`` the agent beside buy-and-hold (the closing summary)."""

    def __init__(self, spec: MarketSpec) -> None:
        data, window = spec.data, spec.window
        split = data.meta.get("split", "evaluation")
        if len(data) < window + 2:
            raise ValueError(
                f"the {split} split has {len(data)} bars; a backtest with env.window={window} "
                f"needs at least {window + 2}: lengthen the data or change data.split"
            )
        self.spec = spec
        self.last_record: BacktestRecord | None = None  # the agent's latest backtest
        # Several trading profiles: one backtest each (an account runs one profile).
        self.profiles = [name for name, _ in spec.trading.profile_configs()]

    @property
    def bars_per_year(self) -> float:
        """The annualisation of every ratio this evaluator reports (the spec's)."""
        return self.spec.bars_per_year

    def backtest(self, policy: torch.nn.Module) -> BacktestRecord:
        return run_backtest(PolicyActor(policy), self.spec, num_runs=len(self.profiles))

    def _agent(self, policy: torch.nn.Module) -> tuple[dict[str, float], dict[str, dict]]:
        """(the agent's metrics, per-profile metrics when there are several profiles; the
        agent's are then their mean)."""
        # one run per profile, all in one batch (run i trades profile i): the simulation of
        # each run is that of its profile alone, at the cost of one backtest
        record = self.last_record = self.backtest(policy)
        if len(self.profiles) == 1:
            return record_performance(record, self.spec.bars_per_year), {}
        each = {
            name: record_performance(record, self.spec.bars_per_year, run=i)
            for i, name in enumerate(self.profiles)
        }
        keys = next(iter(each.values())).keys()
        mean = {k: float(np.mean([m[k] for m in each.values()])) for k in keys}
        return mean, each

    def __call__(self, policy: torch.nn.Module) -> dict[str, float]:
        """The agent's metrics (with several profiles: their mean, and ``<profile>/<k>``)."""
        mean, each = self._agent(policy)
        for name, metrics in each.items():
            mean.update({f"{name}/{k}": v for k, v in metrics.items()})
        return mean

    def agent_returns(self) -> tuple[np.ndarray, np.ndarray]:
        """(bar times, the agent's net simple return per bar) of the latest backtest, averaged
        over profiles: the series a sweep's selection statistics compare across trials."""
        if self.last_record is None:
            raise RuntimeError("agent_returns() needs a backtest first: call compare() or ()")
        returns = bar_returns(self.last_record.equity).mean(axis=1)
        return self.last_record.timestamps[1:], returns

    def compare(self, policy: torch.nn.Module) -> dict[str, dict[str, float]]:
        """The agent (and each profile, when several) beside buy-and-hold."""
        mean, each = self._agent(policy)
        bh = buy_and_hold(self.spec)
        out = {"agent": mean}
        out.update({f"agent_{name}": metrics for name, metrics in each.items()})
        out["buy_and_hold"] = record_performance(bh, self.spec.bars_per_year)
        return out
