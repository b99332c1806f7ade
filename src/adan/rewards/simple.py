"""Simple PnL reward: the log change of equity after every cost."""

from __future__ import annotations

import numpy as np

from adan.rewards.base import RewardFunction, StepOutcome
from adan.rewards.schema import SimpleRewardSchema


class SimpleReward(RewardFunction):
    """``scale * log(equity_t / equity_{t-1})``, net of fees, spread and slippage.

    Log returns add up over an episode, so the undiscounted return is the log growth of the
    account: maximising it is maximising final wealth.
    """

    def __init__(self, scale: float = SimpleRewardSchema.scale) -> None:
        self.scale = float(scale)

    def __call__(self, outcome: StepOutcome) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        log_return = outcome.net_log_return
        reward = np.multiply(log_return, self.scale, dtype=np.float32)
        return reward, {"log_return": log_return}
