"""Tiny deterministic vector envs for PPO tests."""

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode


class ConstantVecEnv(gym.vector.VectorEnv):
    """Observation always 1, reward ``reward`` per step (action 1 gives ``bonus`` more);
    episodes end after ``length`` steps, by truncation or termination."""

    def __init__(
        self,
        num_envs=4,
        length=3,
        truncate=True,
        reward=1.0,
        bonus=0.0,
        mode=AutoresetMode.NEXT_STEP,
    ):
        self.num_envs = num_envs
        self.single_observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.single_action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.metadata = {"autoreset_mode": mode}
        self.length, self.truncate, self.reward, self.bonus, self.mode = (
            length,
            truncate,
            reward,
            bonus,
            mode,
        )
        self.t = np.zeros(num_envs, dtype=int)
        self.needs_reset = np.zeros(num_envs, dtype=bool)
        self.actions_seen = []

    def _obs(self):
        return np.ones((self.num_envs, 1), np.float32)

    def reset(self, *, seed=None, options=None):
        self.t[:] = 0
        self.needs_reset[:] = False
        return self._obs(), {}

    def step(self, actions):
        actions = np.asarray(actions)
        self.actions_seen.append(actions.copy())
        reward = self.reward + self.bonus * (actions == 1)
        reward = reward.astype(np.float32)
        if self.mode == AutoresetMode.NEXT_STEP:
            resetting = self.needs_reset.copy()
            self.t[resetting] = 0
            reward[resetting] = 0.0
        self.t[~self.needs_reset] += 1 if self.mode == AutoresetMode.NEXT_STEP else 0
        if self.mode == AutoresetMode.SAME_STEP:
            self.t += 1
        done = self.t >= self.length
        if self.mode == AutoresetMode.NEXT_STEP:
            done &= ~self.needs_reset
            self.needs_reset = done.copy()
        terminated = done & (not self.truncate)
        truncated = done & self.truncate
        info = {}
        if self.mode == AutoresetMode.SAME_STEP and done.any():
            info["final_obs"] = np.empty(self.num_envs, dtype=object)  # as gymnasium's _add_info
            for i in np.flatnonzero(done):
                info["final_obs"][i] = self._obs()[i]
            self.t[done] = 0
        return self._obs(), reward, terminated, truncated, info
