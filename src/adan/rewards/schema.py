"""The reward group's settings (``reward=simple|adaptive``): defaults and ranges of the rewards."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adan.errors import check as _check
from adan.rewards.regime_weights import regime_table


@dataclass
class SimpleRewardSchema:
    _target_: str = "adan.rewards.SimpleReward"
    scale: float = 100.0  # multiplies the net log return (keeps values near unit size)

    def __post_init__(self) -> None:
        _check(self.scale > 0, "reward.scale", "must be > 0", self.scale)


@dataclass
class AdaptiveRewardSchema:
    _target_: str = "adan.rewards.AdaptiveReward"
    w_return: float = 1.0  # net log return
    w_sharpe: float = 1e-3  # differential Sharpe ratio (Moody & Saffell), O(1) per step
    w_sortino: float = 1e-3  # differential downside deviation ratio
    w_drawdown: float = 1.0  # minus the increase in drawdown
    w_turnover: float = 1e-4  # minus turnover (costs are already in the return)
    eta: float = 0.01  # EMA rate of the online moments
    scale: float = 100.0  # multiplies the weighted sum
    clip: float = 10.0  # bound on the ratio terms
    # {regime name: {component name: multiplier}}, missing = 1.0; empty or null: none. A dict
    # of Any, checked in __post_init__: OmegaConf 2.3 refuses ints in a dict[str, dict[str,
    # float]] and cannot merge a command-line dict into a None default.
    regime_weights: dict[str, Any] | None = field(default_factory=dict)
    regime_smoothing: float = 0.05  # EMA rate of the multipliers toward the current regime's

    def __post_init__(self) -> None:
        k = "reward."
        for name in ("w_return", "w_sharpe", "w_sortino", "w_drawdown", "w_turnover"):
            _check(getattr(self, name) >= 0, k + name, "must be >= 0", getattr(self, name))
        _check(0 < self.eta <= 1, k + "eta", "must be in (0, 1]", self.eta)
        _check(self.clip > 0, k + "clip", "must be > 0", self.clip)
        _check(self.scale > 0, k + "scale", "must be > 0", self.scale)
        _check(
            0 < self.regime_smoothing <= 1,
            k + "regime_smoothing",
            "must be in (0, 1]",
            self.regime_smoothing,
        )
        regime_table(self.regime_weights)  # names and values, with the full key
