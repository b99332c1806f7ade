"""Reference strategies scored over the same bars and costs as the agent."""

from __future__ import annotations

import numpy as np

from adan.data.bars import MarketData
from adan.market.config import TradingConfig
from adan.market.execution import CostModel


def buy_and_hold_equity(data: MarketData, start: int, trading: TradingConfig) -> np.ndarray:
    """Equity of an equal-weight book bought at bar ``start+1``'s open (paying the same fees,
    spread and slippage as the agent) and held: ``equity[0]`` is the cash at ``start``'s close,
    ``equity[k]`` the value at bar ``start+k``'s close. Units are held, not rebalanced."""
    cash0 = trading.initial_cash
    open_, close = data.open[start + 1], data.close[start + 1 :]
    cost_rate = CostModel.from_config(trading).total_rate
    budget = cash0 / (1.0 + cost_rate)  # notional such that notional + costs = cash
    units = budget / data.num_assets / open_
    equity = close @ units
    return np.concatenate([[cash0], equity])
