"""The trading group's node: ``TradingConfig`` itself, plus the Hydra target that builds it."""

from __future__ import annotations

from dataclasses import dataclass

from adan.market.config import TradingConfig


@dataclass
class TradingSchema(TradingConfig):
    """``TradingConfig`` itself (its ``__post_init__`` checks every value), plus the target."""

    _target_: str = "adan.market.TradingConfig"
