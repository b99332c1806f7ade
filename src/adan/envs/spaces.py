"""Gymnasium spaces of one trading env (shared by the single and the vector env)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from adan.market.config import TradingConfig
from adan.market.simulator import PORTFOLIO_EXTRA
from adan.market.sizing import num_discrete_actions

_BIG = float(np.finfo(np.float32).max)


def observation_space(window: int, num_assets: int, num_features: int) -> spaces.Dict:
    """``market``: float32 [window, A, F] feature window (oldest bar first);
    ``portfolio``: float32 [A + 2] = weight per asset, cash fraction, drawdown. Only
    quantities that mean the same in a 256-bar training episode and a years-long backtest
    (no episode clock, no equity level). Bounded only by the float32 range: features are
    normalised, not clipped (finite bounds keep gymnasium's checker quiet)."""
    return spaces.Dict(
        {
            "market": spaces.Box(-_BIG, _BIG, (window, num_assets, num_features), np.float32),
            "portfolio": spaces.Box(-_BIG, _BIG, (num_assets + PORTFOLIO_EXTRA,), np.float32),
        }
    )


def action_space(trading: TradingConfig, num_assets: int) -> spaces.Space:
    """Continuous: Box [-1, 1]^A float32, target weight per asset (negative values mean flat
    when shorting is off; the space stays symmetric as gymnasium recommends). Discrete:
    MultiDiscrete, per asset {0: short, 1: flat, 2: long} or long-only {0: flat, 1: long}."""
    if trading.action_mode == "discrete":
        return spaces.MultiDiscrete(np.full(num_assets, num_discrete_actions(trading)))
    return spaces.Box(-1.0, 1.0, (num_assets,), np.float32)
