"""The reward interface: what a reward function sees of one batched step, and what it returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepOutcome:
    """Result of one step for N envs, every field float64 [N] (``regime``: int, optional),
    net of costs unless stated.

    Returns are per bar, from the previous close-marked equity to this close-marked equity.
    Arrays belong to the caller's step; copy them to keep them.
    """

    net_log_return: np.ndarray  # log(equity_t / equity_{t-1}) after this step's costs
    gross_log_return: np.ndarray  # the same before this step's costs
    net_return: np.ndarray  # equity_t / equity_{t-1} - 1
    cost_fraction: np.ndarray  # costs paid this step / equity_{t-1}
    turnover: np.ndarray  # traded notional / equity at the fill
    exposure: np.ndarray  # gross position value / equity after the fill (at the fill price)
    drawdown: np.ndarray  # 1 - equity_t / peak equity of the episode
    prev_drawdown: np.ndarray
    # [N] int market regime at this bar's close (adan.data.regimes.REGIME_NAMES codes)
    regime: np.ndarray | None = None


class RewardFunction(ABC):
    """Maps a batched ``StepOutcome`` to rewards [N] float32 and named components.

    Stateful rewards keep one state per env as arrays over the batch: ``reset(num_envs)``
    sizes them, ``reset_envs(mask)`` clears the envs starting a new episode, and
    ``state_dict``/``load_state_dict`` checkpoint them exactly. Components are the unweighted
    terms, one [N] array each, so they can be logged one by one.
    """

    num_envs: int = 0

    def reset(self, num_envs: int) -> None:
        """Size the state for ``num_envs`` envs and clear it."""
        self.num_envs = num_envs

    def reset_envs(self, mask: np.ndarray) -> None:  # noqa: B027 - stateless default
        """Clear the state of the envs where ``mask`` [N] is True."""

    @abstractmethod
    def __call__(self, outcome: StepOutcome) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Reward [N] float32 and components {name: [N]} for one step."""

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027
        """Restore what ``state_dict`` returned."""
