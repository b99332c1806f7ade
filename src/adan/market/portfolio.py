"""Batched portfolio book: cash, positions and PnL of N accounts over A assets, in float64."""

from __future__ import annotations

import numpy as np

from adan.market.batch import row_dot
from adan.market.kernels import close_positions, rebalance

_STATE = (
    "cash",
    "units",
    "avg_price",
    "realised_pnl",
    "equity",
    "peak",
    "drawdown",
    "turnover",
)


class Portfolio:
    """N independent accounts trading A assets; every field is an array over the batch.

    ``units`` are signed holdings (negative = short); ``avg_price`` is the average entry price
    of the open position (average-cost accounting). ``realised_pnl`` is the gain on closed
    quantities minus every cost paid, so ``equity == initial_cash + realised_pnl +
    unrealised_pnl(prices)`` at the prices the book was last marked at. ``turnover`` is the
    episode's cumulative traded notional in units of equity at the fill.
    """

    def __init__(self, num_envs: int, num_assets: int, initial_cash: float) -> None:
        self.initial_cash = float(initial_cash)
        n, a = num_envs, num_assets
        self.cash = np.full(n, self.initial_cash)
        self.units = np.zeros((n, a))
        self.avg_price = np.zeros((n, a))
        self.realised_pnl = np.zeros(n)
        self.equity = np.full(n, self.initial_cash)
        self.peak = np.full(n, self.initial_cash)
        self.drawdown = np.zeros(n)
        self.turnover = np.zeros(n)

    def reset(self, idx: np.ndarray | slice) -> None:
        """Empty the accounts ``idx``: all cash, no position."""
        self.cash[idx] = self.initial_cash
        self.units[idx] = 0.0
        self.avg_price[idx] = 0.0
        self.realised_pnl[idx] = 0.0
        self.equity[idx] = self.initial_cash
        self.peak[idx] = self.initial_cash
        self.drawdown[idx] = 0.0
        self.turnover[idx] = 0.0

    def value(self, prices: np.ndarray) -> np.ndarray:
        """Equity [N] if marked at ``prices`` [N, A] (does not change the book)."""
        return self.cash + row_dot(self.units, prices)

    def rebalance(self, target_units: np.ndarray, prices: np.ndarray, costs: np.ndarray) -> None:
        """Fill every account to ``target_units`` at ``prices`` [N, A], paying ``costs`` [N]
        (`kernels.rebalance`, the one the market-order fill uses too).

        Realised PnL and average entry prices follow average-cost accounting: reducing a
        position realises (price - avg) on the closed part; adding averages in; opening or
        flipping starts a new average at the fill price.
        """
        target = np.ascontiguousarray(target_units, dtype=np.float64)
        rebalance(self.units, target, np.ascontiguousarray(prices, dtype=np.float64),
                  self.avg_price, self.cash, self.realised_pnl,
                  np.ascontiguousarray(costs, dtype=np.float64))  # fmt: skip
        self.units = target

    def close(self, mask: np.ndarray, prices: np.ndarray, costs: np.ndarray) -> None:
        """Close the positions ``mask`` [N, A] entirely at ``prices`` [N, A], paying
        ``costs`` [N]: what ``rebalance`` does for a target of zero units there, in fewer
        passes (`kernels.close_positions`; the stop and target exits use its row in
        `kernels.close_exits`)."""
        close_positions(
            np.ascontiguousarray(mask, dtype=bool), np.ascontiguousarray(prices, dtype=np.float64),
            np.ascontiguousarray(costs, dtype=np.float64), self.units, self.avg_price,
            self.cash, self.realised_pnl,
        )  # fmt: skip

    def unrealised_pnl(self, prices: np.ndarray) -> np.ndarray:
        """Open-position PnL [N] at ``prices`` [N, A] versus average entry prices."""
        return row_dot(self.units, prices - self.avg_price)

    def weights(self, prices: np.ndarray) -> np.ndarray:
        """Signed position values as fractions of equity [N, A] at ``prices``."""
        return self.units * prices / self.equity[:, None]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).copy() for name in _STATE}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name in _STATE:
            current = getattr(self, name)
            value = np.asarray(state[name], dtype=np.float64)
            if value.shape != current.shape:
                raise ValueError(
                    f"portfolio.{name} has shape {value.shape}, expected {current.shape}"
                )
            setattr(self, name, value.copy())
