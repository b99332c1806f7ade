"""The market with a reward applied: what both gymnasium envs step.

The simulator (``adan.market``) says what each bar did to each account (a ``StepOutcome``);
this class turns that into the RL reward with the configured ``RewardFunction``, keeps the
reward's per-env state and the episode return, and adds them to the step's info
(``reward_components``, and ``episode["r"]`` when an episode ends). One class, so the single
env and the vector env cannot apply the reward differently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adan.market.rng import SeedLike
from adan.market.simulator import MarketSimulator, Obs
from adan.rewards.base import RewardFunction


class RewardedMarket:
    """``simulator`` stepped with ``reward`` applied to its outcomes."""

    def __init__(self, simulator: MarketSimulator, reward: RewardFunction) -> None:
        self.simulator = simulator
        self.reward_fn = reward
        n = simulator.num_envs
        reward.reset(n)
        self.episode_reward = np.zeros(n)  # the return of each env's running episode
        self._every = np.ones(n, dtype=bool)
        self._every.flags.writeable = False

    def reset(
        self, envs: np.ndarray | None = None, seed: SeedLike = None, out: Obs | None = None
    ) -> Obs:
        """``MarketSimulator.reset``, with the reward's state cleared for the reset envs."""
        obs = self.simulator.reset(envs, seed=seed, out=out)
        if envs is None:
            mask = self._every
        else:
            envs = np.asarray(envs)
            mask = envs if envs.dtype == bool else np.isin(np.arange(len(self._every)), envs)
        self._clear(mask)
        return obs

    def _clear(self, mask: np.ndarray) -> None:
        self.reward_fn.reset_envs(mask)
        self.episode_reward[mask] = 0.0

    def step(
        self, actions: np.ndarray, reset_mask: np.ndarray | None = None
    ) -> tuple[Obs, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """(obs, reward [N] float32, terminated [N], truncated [N], info). Envs in
        ``reset_mask`` start a new episode (see ``MarketSimulator.step``): reward 0."""
        obs, outcome, terminated, truncated, info = self.simulator.step(actions, reset_mask)
        reward, components = self.reward_fn(outcome)
        self.episode_reward += reward
        done = terminated | truncated
        if done.any():
            info["episode"] = {"r": np.where(done, self.episode_reward, 0.0), **info["episode"]}
        comps: dict[str, np.ndarray] = {}
        for name, value in components.items():
            comps[name], comps["_" + name] = value, self._every
        if reset_mask is not None and reset_mask.any():
            reward[reset_mask] = 0.0
            for name in components:
                comps[name] = np.where(reset_mask, 0.0, comps[name])
            self._clear(reset_mask)
        info["reward_components"], info["_reward_components"] = comps, self._every
        return obs, reward, terminated, truncated, info

    def observe(self) -> Obs:
        return self.simulator.observe()

    def get_state(self) -> dict[str, Any]:
        """The simulator's state, the reward's and the running episode returns."""
        state = self.simulator.get_state()
        state["reward"] = self.reward_fn.state_dict()
        state["episode_reward"] = self.episode_reward.copy()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.simulator.set_state(state)
        self.reward_fn.load_state_dict(state["reward"])
        # checkpoints written before the reward moved here kept the return in the stats
        episode_reward = state.get("episode_reward", state["stats"].get("reward"))
        self.episode_reward = np.asarray(episode_reward, dtype=np.float64).copy()
