"""The batched market: trading rules, execution, sizing, risk, regimes, behaviour, simulator."""

from adan.market.config import ProfileConfig, TradingConfig
from adan.market.desk import TradingDesk
from adan.market.execution import ExecutionConfig, ExecutionModel, Fills, WorkingOrders
from adan.market.portfolio import Portfolio
from adan.market.rng import BatchRNG
from adan.market.simulator import MarketSimulator
from adan.market.sizing import PositionSizer, SizingConfig, target_weights

__all__ = [
    "BatchRNG",
    "ExecutionConfig",
    "ExecutionModel",
    "Fills",
    "MarketSimulator",
    "Portfolio",
    "PositionSizer",
    "ProfileConfig",
    "SizingConfig",
    "TradingConfig",
    "TradingDesk",
    "WorkingOrders",
    "target_weights",
]
