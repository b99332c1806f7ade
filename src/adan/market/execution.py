"""Execution costs: what a fill of a given notional pays in fees, spread and slippage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adan.market.config import TradingConfig


@dataclass(frozen=True)
class ExecutionCosts:
    """Cash paid per env for one batch of fills, by cause (same shape as the notional)."""

    fee: np.ndarray
    spread: np.ndarray
    slippage: np.ndarray
    total: np.ndarray


@dataclass(frozen=True)
class CostModel:
    """Linear cost model: each cost is a fixed fraction of absolute traded notional.

    Recorded separately so a backtest can say where the money went; linear in notional, so
    costs summed over assets equal the cost of the summed notional.
    """

    fee_rate: float
    spread_rate: float
    slippage_rate: float

    @classmethod
    def from_config(cls, trading: TradingConfig) -> CostModel:
        return cls(
            fee_rate=trading.fee_bps * 1e-4,
            spread_rate=trading.half_spread_bps * 1e-4,
            slippage_rate=trading.slippage_bps * 1e-4,
        )

    @property
    def total_rate(self) -> float:
        return self.fee_rate + self.spread_rate + self.slippage_rate

    def costs(self, traded_notional: np.ndarray) -> ExecutionCosts:
        """Costs of fills with absolute notional ``traded_notional`` ([N] or [N, A])."""
        notional = np.abs(traded_notional)
        return ExecutionCosts(
            fee=notional * self.fee_rate,
            spread=notional * self.spread_rate,
            slippage=notional * self.slippage_rate,
            total=notional * self.total_rate,
        )
