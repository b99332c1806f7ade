"""Deterministic evaluation of a policy on a plain gymnasium task."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch


class GymEvaluator:
    """Runs ``n_episodes`` episodes with the policy's deterministic action (seeds
    ``seed, seed+1, …``, disjoint from training's) and reports the mean and std of returns."""

    def __init__(self, env_id: str, n_episodes: int = 10, seed: int = 10_000) -> None:
        self.env_id, self.n_episodes, self.seed = env_id, n_episodes, seed

    @torch.no_grad()
    def __call__(self, policy: torch.nn.Module) -> dict[str, float]:
        env = gym.make(self.env_id)
        device = next(policy.parameters()).device
        returns = []
        for i in range(self.n_episodes):
            obs, _ = env.reset(seed=self.seed + i)
            total, done = 0.0, False
            while not done:
                x = torch.as_tensor(obs[None], dtype=torch.float32, device=device)
                action, _, _ = policy(x, deterministic=True)
                obs, reward, terminated, truncated, _ = env.step(policy.to_env_action(action)[0])
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        env.close()
        return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns))}
