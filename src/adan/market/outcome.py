"""What one batched step of the market did to each account: the simulator's result, before any
reward. Rewards (``adan.rewards``) are functions of it; the env applies one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepOutcome:
    """Result of one step for N envs, every field float64 [N] (``regime``: int, optional),
    net of costs unless stated.

    Returns are per bar, from the previous close-marked equity to this close-marked equity.
    Arrays belong to the caller's step; copy them to keep them.
    """

    net_log_return: np.ndarray  # log(equity_t / equity_{t-1}) after this step's costs
    gross_log_return: np.ndarray  # the same before this step's costs
    net_return: np.ndarray  # equity_t / equity_{t-1} - 1
    cost_fraction: np.ndarray  # costs paid this step / equity_{t-1}
    turnover: np.ndarray  # traded notional / equity at the fill
    exposure: np.ndarray  # gross position value / equity after the fill (at the fill price)
    drawdown: np.ndarray  # 1 - equity_t / peak equity of the episode
    prev_drawdown: np.ndarray
    # [N] int market regime at this bar's close (adan.data.regimes.REGIME_NAMES codes)
    regime: np.ndarray | None = None
