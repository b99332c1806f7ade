"""The agent group's settings (``agent=ppo``): defaults and ranges of ``adan.agents.PPO``."""

from __future__ import annotations

from dataclasses import dataclass

from adan.errors import check as _check


@dataclass
class PPOConfig:
    _target_: str = "adan.agents.PPO"
    _partial_: bool = True
    total_timesteps: int = 1_200_000  # per process under trainer=ddp
    n_steps: int = 128  # rollout length per env
    n_minibatches: int = 8  # minibatches per pass over the rollout
    n_epochs: int = 4  # passes over each rollout
    learning_rate: float = 3e-4  # Adam's initial learning rate
    anneal_lr: bool = True  # linear decay to 0 over total_timesteps
    gamma: float = 0.99  # discount per bar
    gae_lambda: float = 0.95  # GAE's bias/variance trade-off (1: Monte Carlo returns)
    clip_range: float = 0.2  # PPO's policy ratio clip, 1 +/- clip_range
    anneal_clip_range: bool = False  # linear decay of clip_range to 0 over total_timesteps
    clip_range_vf: float | None = 0.2  # value clipping around the old values; null: off
    normalize_advantage: bool = True  # per minibatch, to zero mean and unit std
    ent_coef: float = 0.001  # entropy bonus (its value at the start of training)
    ent_coef_final: float | None = None  # reached linearly from ent_coef; null: constant
    # Discrete and MultiDiscrete actions only (a no-op for Box): keep the policy's mean entropy
    # above this fraction of the uniform policy's (sum of log n_i) with a learned extra entropy
    # coefficient, a Lagrange multiplier; null: off
    entropy_floor: float | None = 0.5
    # that coefficient's log moves by entropy_floor_lr x (floor - entropy) / (sum of log n_i)
    # after each minibatch
    entropy_floor_lr: float = 0.5
    vf_coef: float = 0.5  # weight of the value loss
    max_grad_norm: float = 0.5  # global gradient-norm clip
    target_kl: float | None = None  # stop an update's epochs early past this KL; null: never
    adam_eps: float = 1e-5  # Adam's epsilon
    seed: int = 0  # PPO's own RNG (sampling, minibatch order); ${seed}

    def __post_init__(self) -> None:
        k = "agent."
        _check(self.total_timesteps > 0, k + "total_timesteps", "must be > 0", self.total_timesteps)
        _check(self.n_steps > 0, k + "n_steps", "must be > 0", self.n_steps)
        _check(self.n_minibatches > 0, k + "n_minibatches", "must be > 0", self.n_minibatches)
        _check(self.n_epochs > 0, k + "n_epochs", "must be > 0", self.n_epochs)
        _check(self.learning_rate > 0, k + "learning_rate", "must be > 0", self.learning_rate)
        _check(0 < self.gamma <= 1, k + "gamma", "must be in (0, 1]", self.gamma)
        _check(0 <= self.gae_lambda <= 1, k + "gae_lambda", "must be in [0, 1]", self.gae_lambda)
        _check(0 < self.clip_range <= 1, k + "clip_range", "must be in (0, 1]", self.clip_range)
        _check(
            self.clip_range_vf is None or self.clip_range_vf > 0,
            k + "clip_range_vf",
            "must be > 0 or null",
            self.clip_range_vf,
        )
        _check(self.ent_coef >= 0, k + "ent_coef", "must be >= 0", self.ent_coef)
        _check(
            self.ent_coef_final is None or self.ent_coef_final >= 0,
            k + "ent_coef_final",
            "must be >= 0 or null",
            self.ent_coef_final,
        )
        _check(
            self.entropy_floor is None or 0 < self.entropy_floor < 1,
            k + "entropy_floor",
            "must be in (0, 1) or null",
            self.entropy_floor,
        )
        _check(
            self.entropy_floor_lr > 0, k + "entropy_floor_lr", "must be > 0", self.entropy_floor_lr
        )
        _check(self.vf_coef >= 0, k + "vf_coef", "must be >= 0", self.vf_coef)
        _check(self.max_grad_norm > 0, k + "max_grad_norm", "must be > 0", self.max_grad_norm)
        _check(
            self.target_kl is None or self.target_kl > 0,
            k + "target_kl",
            "must be > 0 or null",
            self.target_kl,
        )
