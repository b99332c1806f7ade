"""Gymnasium spaces of one trading env (shared by the single and the vector env)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from gymnasium import spaces

from adan.market.config import TradingConfig
from adan.market.sizing import num_discrete_actions
from adan.market.spec import MarketSpec

_BIG = float(np.finfo(np.float32).max)


def observation_space(shapes: Mapping[str, tuple[int, ...]]) -> spaces.Dict:
    """One float32 Box per key of ``MarketSimulator.observation_shapes`` (one env):
    ``market`` [window, A, F] feature window (oldest bar first); ``market_<rule>``
    [W_rule, A, F_rule] per higher timeframe (its last closed bars); ``portfolio`` [A + 2] =
    weight per asset, cash fraction, drawdown; ``regime`` [4] (with ``trading.regime.observe``)
    one-hot bull/bear/sideways/volatile at t, in [0, 1]. Only quantities that mean the same in a 256-bar
    training episode and a years-long backtest (no episode clock, no equity level). Bounded only
    by the float32 range (finite bounds keep gymnasium's checker quiet); see
    `adan.envs.validation` for the range normalised features are expected in."""
    return spaces.Dict(
        {
            key: spaces.Box(0.0, 1.0, tuple(shape), np.float32)
            if key == "regime"
            else spaces.Box(-_BIG, _BIG, tuple(shape), np.float32)
            for key, shape in shapes.items()
        }
    )


def action_space(trading: TradingConfig, num_assets: int) -> spaces.Space:
    """Continuous: Box [-1, 1]^A float32, target weight per asset (negative values mean flat
    when shorting is off; the space stays symmetric as gymnasium recommends). Discrete:
    MultiDiscrete, per asset {0: short, 1: flat, 2: long} or long-only {0: flat, 1: long}."""
    if trading.action_mode == "discrete":
        return spaces.MultiDiscrete(np.full(num_assets, num_discrete_actions(trading)))
    return spaces.Box(-1.0, 1.0, (num_assets,), np.float32)


def spaces_of(spec: MarketSpec) -> tuple[spaces.Dict, spaces.Space]:
    """(observation space, action space) of one env trading ``spec``, without building one."""
    return observation_space(spec.observation_shapes), action_space(
        spec.trading, spec.data.num_assets
    )
