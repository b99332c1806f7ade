"""What a backtest leaves behind: per-bar records of each strategy, and the scored result.

Plots, reports and loggers read these; nothing here runs a simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class BacktestRecord:
    """One strategy's path over a split, bar by bar, for R runs (R > 1 for a seeded random
    baseline: one run per seed).

    Row 0 is the starting point (the close of the first decision bar, all cash); row k the
    state after the k-th step, marked at that bar's close. Per-step arrays (``costs``,
    ``turnover``) have one row fewer.
    """

    name: str
    timestamps: np.ndarray  # [n+1] datetime64[ns]: the bar each row is marked at
    equity: np.ndarray  # [n+1, R] float64
    weights: np.ndarray  # [n+1, R, A] position value / equity per asset (signed)
    costs: np.ndarray  # [n, R] cash paid per step (fees + spread + slippage)
    turnover: np.ndarray  # [n, R] traded notional / equity per step
    close: np.ndarray  # [n+1, A] close prices of those bars
    assets: tuple[str, ...]
    regimes: np.ndarray | None = None  # [n+1] true regime labels, when the data has them
    initial_cash: float = 10_000.0

    @property
    def runs(self) -> int:
        return self.equity.shape[1]


@dataclass
class EvaluationResult:
    """A split scored: the agent and every baseline, with their metrics.

    ``metrics[name]`` is a flat {metric: value}; for a multi-run baseline (random) each value
    is the mean over runs and ``spread[name]`` holds the standard deviations.
    ``sharpe_ci[name]`` is the (low, high) bootstrap interval of the Sharpe ratio.
    """

    split: str
    records: dict[str, BacktestRecord]
    metrics: dict[str, dict[str, float]]
    spread: dict[str, dict[str, float]] = field(default_factory=dict)
    sharpe_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # period, costs, bars_per_year, ckpt
