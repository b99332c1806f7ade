"""Deterministic evaluation of a policy on a plain gymnasium task."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode


class GymEvaluator:
    """Runs ``n_episodes`` episodes at once (one per sub-env of a VectorEnv, seeded from
    ``seed``, disjoint from training's) with the policy's deterministic action, and reports the
    mean and std of their returns."""

    METRICS = ("mean_return", "std_return")

    def __init__(self, env_id: str, n_episodes: int = 10, seed: int = 10_000) -> None:
        self.env_id, self.n_episodes, self.seed = env_id, n_episodes, seed

    def _make_env(self) -> gym.vector.VectorEnv:
        """The task's own array-vectorised env where it has one (CartPole does: one numpy step
        for all episodes), else gymnasium's synchronous wrapper of single envs."""
        try:
            env = gym.make_vec(
                self.env_id, num_envs=self.n_episodes, vectorization_mode="vector_entry_point"
            )
            if (
                env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
                == AutoresetMode.NEXT_STEP
            ):
                return env
            env.close()
        except gym.error.Error:
            pass
        return gym.make_vec(
            self.env_id,
            num_envs=self.n_episodes,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP},  # finished envs are ignored
        )

    @torch.no_grad()
    def __call__(self, policy: torch.nn.Module) -> dict[str, float]:
        env = self._make_env()
        device = next(policy.parameters()).device
        obs, _ = env.reset(seed=self.seed)
        returns = np.zeros(self.n_episodes)
        running = np.ones(self.n_episodes, dtype=bool)
        while running.any():
            x = torch.as_tensor(obs, dtype=torch.float32, device=device)
            obs, reward, terminated, truncated, _ = env.step(policy.to_env_action(policy.act(x)))
            returns += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
        env.close()
        return {"mean_return": float(returns.mean()), "std_return": float(returns.std())}
