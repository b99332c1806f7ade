"""Learning algorithms: PPO as a LightningModule, its rollout storage and GAE."""

from adan.agents.ppo import PPO
from adan.agents.rollout import RolloutBuffer, compute_gae

__all__ = ["PPO", "RolloutBuffer", "compute_gae"]
