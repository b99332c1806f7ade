"""ADAN's envs in gymnasium's registry: ``gymnasium.make("adan/Trading-v0")`` and
``gymnasium.make_vec("adan/Trading-v0", num_envs=8)`` (the batched `VecTradingEnv`), so any
gymnasium-speaking library (Stable-Baselines3, CleanRL, RLlib) can train on ADAN's market.

Importing ``adan`` registers them (``adan/__init__.py``; this module loads when one is made);
``gymnasium.make("adan:adan/Trading-v0")`` imports ``adan`` for you.
With no arguments the env trades a small embedded market: the train split of a seeded
synthetic market (2 assets, 4,000 hourly bars, the default features), under
``TradingConfig()`` with a 32-bar window and `SimpleReward`. Every part can be replaced:

    gymnasium.make("adan/Trading-v0", split="val", trading={"fee_bps": 10}, window=16)
    gymnasium.make("adan/Trading-v0", spec=my_market_spec, reward=AdaptiveReward())
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from adan.data.bars import MarketData
from adan.envs.schema import TradingEnvSchema
from adan.envs.trading_env import TradingEnv
from adan.envs.vec_trading_env import VecTradingEnv
from adan.market.config import TradingConfig
from adan.market.spec import MarketSpec
from adan.rewards.base import RewardFunction
from adan.rewards.simple import SimpleReward

ENV_ID = "adan/Trading-v0"
SPLITS = ("train", "val", "test")


def small_market(
    n_bars: int = 4000, n_assets: int = 2, market_seed: int = 0
) -> dict[str, MarketData]:
    """The embedded default market's splits, built once per process (a few hundred ms)."""
    return _small_market(int(n_bars), int(n_assets), int(market_seed))


@lru_cache(maxsize=8)
def _small_market(n_bars: int, n_assets: int, market_seed: int) -> dict[str, MarketData]:
    from adan.data.features import DEFAULT_FEATURES
    from adan.data.pipeline import MarketPipeline
    from adan.data.synthetic import SyntheticMarket

    source = SyntheticMarket(n_assets=n_assets, n_bars=n_bars, seed=market_seed)
    return MarketPipeline(source, DEFAULT_FEATURES).build()


def market_spec(
    spec: MarketSpec | None = None,
    *,
    split: str = "train",
    n_bars: int = 4000,
    n_assets: int = 2,
    market_seed: int = 0,
    trading: TradingConfig | Mapping[str, Any] | None = None,
    window: int = TradingEnvSchema.window,
) -> MarketSpec:
    """``spec`` as given, else the small synthetic market's ``split`` under ``trading``."""
    if spec is not None:
        return spec
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if trading is not None and not isinstance(trading, TradingConfig):
        trading = TradingConfig(**dict(trading))
    data = small_market(n_bars, n_assets, market_seed)[split]
    return MarketSpec.of(data, trading, window=window)


def make_trading_env(
    spec: MarketSpec | None = None,
    reward: RewardFunction | None = None,
    episode_length: int = TradingEnvSchema.episode_length,
    seed: int | None = None,
    **market: Any,
) -> TradingEnv:
    """The ``adan/Trading-v0`` entry point: one `TradingEnv` (``market``: see `market_spec`)."""
    return TradingEnv(
        market_spec(spec, **market),
        SimpleReward() if reward is None else reward,
        episode_length=episode_length,
        seed=seed,
    )


def make_trading_vec_env(
    num_envs: int = TradingEnvSchema.num_envs,
    spec: MarketSpec | None = None,
    reward: RewardFunction | None = None,
    episode_length: int = TradingEnvSchema.episode_length,
    seed: int | None = None,
    autoreset_mode: str = TradingEnvSchema.autoreset_mode,
    **market: Any,
) -> VecTradingEnv:
    """The vector entry point: ``num_envs`` accounts in one batched `VecTradingEnv`."""
    return VecTradingEnv(
        market_spec(spec, **market),
        SimpleReward() if reward is None else reward,
        num_envs=num_envs,
        episode_length=episode_length,
        seed=seed,
        autoreset_mode=autoreset_mode,
    )
