"""The reward interface: what a reward function sees of one batched step, and what it returns."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from adan.market.outcome import StepOutcome

__all__ = ["RewardFunction", "StepOutcome"]


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
