"""Plain gymnasium tasks (CartPole and friends) as VectorEnvs for the same PPO."""

from __future__ import annotations

import gymnasium as gym
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from adan.envs.schema import GymEnvSchema
from adan.envs.validation import ValidatedVectorEnv


def make_gym_vec_env(
    env_id: str = GymEnvSchema.env_id,
    num_envs: int = GymEnvSchema.num_envs,
    episode_length: int | None = GymEnvSchema.episode_length,
    autoreset_mode: str = GymEnvSchema.autoreset_mode,
    validate_every_step: bool = GymEnvSchema.validate_every_step,
) -> gym.vector.VectorEnv:
    """``gymnasium.make_vec`` (synchronous) with episode statistics recorded in ``info``;
    ``episode_length`` replaces the task's time limit; ``validate_every_step`` checks every
    observation (`adan.envs.validation.ValidatedVectorEnv`)."""
    extra = {} if episode_length is None else {"max_episode_steps": episode_length}
    try:
        env = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode(autoreset_mode)},
            **extra,
        )
    except gym.error.Error as err:
        raise ValueError(f"env.env_id={env_id!r} cannot be made: {err}") from err
    env = RecordEpisodeStatistics(env)
    return ValidatedVectorEnv(env) if validate_every_step else env
