"""Small markets built directly from arrays, for the market/env tests (no dependency on
adan.data's generators)."""

from __future__ import annotations

import numpy as np

from adan.data.bars import MarketData
from adan.market.execution import ExecutionConfig

# the simulator rebalancing to every target, as hand-computed fills assume (the shipped
# default has a no-trade band)
EVERY_BAR = ExecutionConfig(rebalance_band=0.0)


def make_market(open_, close, features=None, num_features: int = 2) -> MarketData:
    """MarketData with the given open/close ([T] or [T, A]); features default to arange."""
    open_ = np.asarray(open_, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    if open_.ndim == 1:
        open_, close = open_[:, None], close[:, None]
    t, a = close.shape
    if features is None:
        features = np.arange(t * a * num_features, dtype=np.float32).reshape(t, a, num_features)
    return MarketData(
        timestamps=np.arange(t).astype("datetime64[h]").astype("datetime64[ns]"),
        assets=tuple(f"A{i}" for i in range(a)),
        feature_names=tuple(f"f{i}" for i in range(features.shape[2])),
        features=np.asarray(features, dtype=np.float32),
        open=open_,
        high=np.maximum(open_, close),
        low=np.minimum(open_, close),
        close=close,
        volume=np.ones_like(close),
    )


def random_walk(num_bars: int = 400, num_assets: int = 2, num_features: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (num_bars, num_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.003, close.shape))
    feats = rng.standard_normal((num_bars, num_assets, num_features), dtype=np.float32)
    return make_market(open_, close, feats)


class Rewarded:
    """A simulator with a reward applied as the envs apply it (``RewardedMarket``), for tests
    that check rewards beside the book: ``step``/``reset``/state go through the reward, every
    other attribute is the simulator's."""

    def __init__(self, simulator, reward=None) -> None:  # noqa: ANN001
        from adan.envs.rewarded import RewardedMarket
        from adan.rewards import SimpleReward

        self.simulator = simulator
        self.market = RewardedMarket(
            simulator, reward if reward is not None else SimpleReward(scale=1.0)
        )

    def step(self, actions, reset_mask=None):  # noqa: ANN001, ANN201
        return self.market.step(actions, reset_mask)

    def reset(self, envs=None, seed=None, out=None):  # noqa: ANN001, ANN201
        return self.market.reset(envs, seed=seed, out=out)

    def get_state(self) -> dict:
        return self.market.get_state()

    def set_state(self, state: dict) -> None:
        self.market.set_state(state)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.simulator, name)
