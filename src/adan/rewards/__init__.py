"""Reward functions: map a batched step outcome to rewards (simple PnL, adaptive multi-objective)."""

from adan.rewards.adaptive import AdaptiveReward
from adan.rewards.base import RewardFunction, StepOutcome
from adan.rewards.simple import SimpleReward

__all__ = ["AdaptiveReward", "RewardFunction", "SimpleReward", "StepOutcome"]
