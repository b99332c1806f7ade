"""Trading rules of one experiment: costs, leverage, shorting, action mode, account size."""

from __future__ import annotations

import math
from dataclasses import dataclass

ACTION_MODES = ("continuous", "discrete")


@dataclass
class TradingConfig:
    """What trading costs and what the agent may do; validated on construction.

    Costs are in basis points of traded notional and charged on every fill: ``fee_bps``
    (exchange commission), ``half_spread_bps`` (crossing half the bid/ask spread) and
    ``slippage_bps`` (moving the book). ``max_leverage`` caps gross exposure as a multiple of
    equity. An episode ends (terminated) when equity falls below
    ``ruin_threshold * initial_cash``.
    """

    fee_bps: float = 5.0
    half_spread_bps: float = 2.0
    slippage_bps: float = 1.0
    max_leverage: float = 1.0
    allow_short: bool = True
    action_mode: str = "continuous"
    initial_cash: float = 10_000.0
    ruin_threshold: float = 0.5

    def __post_init__(self) -> None:
        for name in ("fee_bps", "half_spread_bps", "slippage_bps"):
            value = self._number(name)
            if value < 0:
                raise ValueError(f"trading.{name} must be >= 0, got {value:g}")
        if self._number("max_leverage") <= 0:
            raise ValueError(f"trading.max_leverage must be > 0, got {self.max_leverage:g}")
        if self._number("initial_cash") <= 0:
            raise ValueError(f"trading.initial_cash must be > 0, got {self.initial_cash:g}")
        if not 0 <= self._number("ruin_threshold") < 1:
            raise ValueError(
                f"trading.ruin_threshold must be in [0, 1), got {self.ruin_threshold:g}"
            )
        if not isinstance(self.allow_short, bool):
            raise ValueError(f"trading.allow_short must be a bool, got {self.allow_short!r}")
        if self.action_mode not in ACTION_MODES:
            raise ValueError(
                f"trading.action_mode must be one of {ACTION_MODES}, got {self.action_mode!r}"
            )

    def _number(self, name: str) -> float:
        """Coerce field ``name`` to a finite float (YAML may give ints), or raise naming it."""
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"trading.{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"trading.{name} must be finite, got {value!r}")
        setattr(self, name, float(value))
        return float(value)

    @property
    def cost_bps(self) -> float:
        """All-in cost of one unit of traded notional, in basis points."""
        return self.fee_bps + self.half_spread_bps + self.slippage_bps
