"""The batched market: trading rules, costs, portfolio book, sizing and the simulator core."""

from adan.market.config import TradingConfig
from adan.market.execution import CostModel, ExecutionCosts
from adan.market.portfolio import Portfolio
from adan.market.rng import BatchRNG
from adan.market.simulator import MarketSimulator
from adan.market.sizing import target_weights

__all__ = [
    "BatchRNG",
    "CostModel",
    "ExecutionCosts",
    "MarketSimulator",
    "Portfolio",
    "TradingConfig",
    "target_weights",
]
