"""The env group's settings (``env=trading|gym``): defaults and ranges of the envs."""

from __future__ import annotations

from dataclasses import dataclass

from adan.errors import check as _check


@dataclass
class TradingEnvSchema:
    _target_: str = "adan.envs.VecTradingEnv"
    _partial_: bool = True
    num_envs: int = 64  # environments stepped as one batch
    window: int = 32  # bars of history in each observation
    episode_length: int = 256  # bars per episode
    autoreset_mode: str = "NextStep"  # gymnasium's: NextStep | SameStep
    bars_per_year: float | None = None  # deprecated: use data.bars_per_year (moved there at start)
    validate_every_step: bool = False  # check every observation (adan.envs.validation)

    def __post_init__(self) -> None:
        k = "env."
        _check(self.num_envs > 0, k + "num_envs", "must be > 0", self.num_envs)
        _check(self.window > 1, k + "window", "must be > 1", self.window)
        _check(self.episode_length > 0, k + "episode_length", "must be > 0", self.episode_length)
        _check(
            self.autoreset_mode in ("NextStep", "SameStep"),
            k + "autoreset_mode",
            "must be 'NextStep' or 'SameStep'",
            self.autoreset_mode,
        )
        _check(
            self.bars_per_year is None or self.bars_per_year > 0,
            k + "bars_per_year",
            "must be > 0, or null to take it from the data",
            self.bars_per_year,
        )


@dataclass
class GymEnvSchema:
    _target_: str = "adan.envs.make_gym_vec_env"
    env_id: str = "CartPole-v1"  # a registered gymnasium id
    num_envs: int = 8  # environments stepped as one batch
    episode_length: int | None = None  # time limit; None keeps the task's own
    autoreset_mode: str = "NextStep"  # gymnasium's: NextStep | SameStep
    validate_every_step: bool = False  # check every observation (adan.envs.validation)

    def __post_init__(self) -> None:
        _check(self.num_envs > 0, "env.num_envs", "must be > 0", self.num_envs)
        _check(
            self.episode_length is None or self.episode_length > 0,
            "env.episode_length",
            "must be > 0 or null",
            self.episode_length,
        )
