"""Observation checks: shape, dtype, finiteness and a plausible range, key by key.

Why: one NaN in a feature window silently poisons every gradient of a PPO update, and a
feature that escaped normalisation (|x| in the thousands) trains a policy that cannot
transfer. The trading envs check their first observation when they are built and, with
``validate_every_step=True`` (``env.validate_every_step``, on in ``debug=fast``), every
observation they return; off, the step pays one boolean test.

Hard failures (wrong shape, wrong dtype, a non-finite value) raise a ValueError naming the key,
the env and the position. Values beyond ``+-bounds`` are only counted and logged once per key:
the pipeline clips normalised features to ``+-data.clip`` (10 by default), so a larger value
is suspicious but not necessarily wrong (the portfolio vector of a heavily levered book).
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv, VectorWrapper

log = logging.getLogger(__name__)

PROBLEMS: tuple[str, ...] = ("checked", "nonfinite", "out_of_range", "bad_shape", "bad_dtype")
_SINGLE_KEY = "obs"  # the key counts are kept under for a non-Dict (Box) space


class ObservationValidator:
    """Checks observations of ``space`` (a Dict of Boxes, or one Box), single or batched.

    ``counts[key][problem]`` counts env observations (rows of a batch) checked and found with
    each problem (``PROBLEMS``); ``bad_shape`` counts calls, since a misshapen array has no rows.
    """

    def __init__(self, space: gym.Space, bounds: float = 50.0) -> None:
        if isinstance(space, gym.spaces.Dict):
            self.spaces = dict(space.spaces)
        elif isinstance(space, gym.spaces.Box):
            self.spaces = {_SINGLE_KEY: space}
        else:
            raise TypeError(f"ObservationValidator needs a Dict or Box space, got {space}")
        if not bounds > 0:
            raise ValueError(f"bounds must be > 0, got {bounds}")
        self.bounds = float(bounds)
        self.counts: dict[str, dict[str, int]] = {
            key: dict.fromkeys(PROBLEMS, 0) for key in self.spaces
        }
        self._warned: set[str] = set()

    def check(self, obs: Any, batched: bool | None = None) -> None:
        """Check one observation (``batched=False``), a batch with a leading env axis
        (``True``) or either, told apart by shape (``None``). Raises ValueError on a hard
        failure; counts and logs (once per key) values beyond ``+-bounds``."""
        if not isinstance(obs, dict):
            obs = {_SINGLE_KEY: obs}
        if obs.keys() != self.spaces.keys():
            raise ValueError(
                f"observation keys {sorted(obs)} differ from the space's {sorted(self.spaces)}"
            )
        for key, space in self.spaces.items():
            self._check(key, np.asarray(obs[key]), space, batched)

    __call__ = check

    def _check(self, key: str, x: np.ndarray, space: gym.Space, batched: bool | None) -> None:
        counts, shape = self.counts[key], tuple(space.shape)
        if x.shape == shape and batched is not True:
            batched, rows = False, 1
        elif x.shape[1:] == shape and x.ndim == len(shape) + 1 and batched is not False:
            batched, rows = True, x.shape[0]
        else:
            counts["bad_shape"] += 1
            want = {True: f"[N, *{shape}]", False: shape}.get(batched, f"{shape} or [N, *{shape}]")
            raise ValueError(f"observation {key!r} has shape {x.shape}, expected {want}")
        counts["checked"] += rows
        if x.dtype != space.dtype:
            counts["bad_dtype"] += rows
            raise ValueError(f"observation {key!r} has dtype {x.dtype}, expected {space.dtype}")
        if x.size == 0:
            return
        if not np.isfinite(x).all():
            flat = x.reshape(rows, -1)
            counts["nonfinite"] += int((~np.isfinite(flat)).any(axis=1).sum())
            env, pos = self._where(~np.isfinite(x), batched)
            raise ValueError(
                f"observation {key!r} of env {env} is {x[(env, *pos) if batched else pos]} at "
                f"position {pos} of its {shape} array; check the data and features there"
            )
        b = self.bounds
        if x.max() > b or x.min() < -b:
            outside = np.abs(x) > b
            counts["out_of_range"] += int(outside.reshape(rows, -1).any(axis=1).sum())
            if key not in self._warned:
                self._warned.add(key)
                env, pos = self._where(outside, batched)
                value = x[(env, *pos) if batched else pos]
                log.warning(
                    "observation %r of env %d is %g at position %s, beyond +-%g (features are "
                    "normalised and clipped to +-data.clip); counted in observation_checks, "
                    "logged once",
                    key,
                    env,
                    value,
                    pos,
                    b,
                )

    @staticmethod
    def _where(mask: np.ndarray, batched: bool) -> tuple[int, tuple[int, ...]]:
        first = tuple(int(i) for i in np.argwhere(mask)[0])
        return (first[0], first[1:]) if batched else (0, first)


class ValidatedVectorEnv(VectorWrapper):
    """Checks every observation a VectorEnv returns (for plain gymnasium tasks)."""

    def __init__(self, env: VectorEnv, bounds: float = 50.0) -> None:
        super().__init__(env)
        self.validator = ObservationValidator(env.single_observation_space, bounds)

    @property
    def observation_checks(self) -> dict[str, dict[str, int]]:
        return self.validator.counts

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.validator.check(obs, batched=True)
        return obs, info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        out = self.env.step(actions)
        self.validator.check(out[0], batched=True)
        return out
