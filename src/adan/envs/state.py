"""The state of a plain gymnasium environment as plain values, so a checkpoint can hold it
without pickling code.

ADAN's own envs expose ``get_state``/``set_state``. Any other gymnasium Env or VectorEnv
(CartPole and friends, with their wrappers) keeps its state in instance attributes: arrays,
numbers, episode-statistics deques and NumPy generators. :func:`capture_env_state` walks the
chain of wrappers and sub-envs and records those attributes (a generator by its bit generator's
state dict); :func:`restore_env_state` writes them back into an env built from the same config.
Spaces, specs, functions and configuration strings are rebuilt from the config and not stored.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

_SCALARS = (bool, int, float, np.generic, type(None))
_BIT_GENERATORS = {
    g.__name__: g
    for g in (
        np.random.PCG64,
        np.random.PCG64DXSM,
        np.random.MT19937,
        np.random.Philox,
        np.random.SFC64,
    )
}


def _children(obj: Any) -> list[Any]:
    """The envs that ``obj`` wraps or holds, in a fixed order."""
    out = []
    for value in vars(obj).values():
        if isinstance(value, gym.Env | gym.vector.VectorEnv):
            out.append(value)
        elif (
            isinstance(value, list | tuple)
            and value
            and all(isinstance(v, gym.Env | gym.vector.VectorEnv) for v in value)
        ):
            out.extend(value)
    return out


def _envs(env: Any) -> list[Any]:
    """``env`` and everything below it, depth first."""
    out, stack = [], [env]
    while stack:
        obj = stack.pop()
        out.append(obj)
        stack.extend(reversed(_children(obj)))
    return out


def _value(value: Any) -> Any:
    """A plain-value copy of one attribute, or ``...`` if it is not state."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, np.ndarray):
        return value.copy() if value.dtype != object else ...
    if isinstance(value, np.random.Generator):
        return {"generator": dict(value.bit_generator.state)}
    if isinstance(value, deque):
        items = [_value(v) for v in value]
        return ... if any(v is ... for v in items) else {"deque": items, "maxlen": value.maxlen}
    if isinstance(value, list):
        items = [_value(v) for v in value]
        return ... if any(v is ... for v in items) else {"list": items}
    return ...


def capture_env_state(env: Any) -> list[dict[str, Any]]:
    """One ``{"class": name, "attrs": {...}}`` per env in ``env``'s chain."""
    out = []
    for obj in _envs(env):
        attrs = {}
        for name, value in vars(obj).items():
            v = _value(value)
            if v is not ...:
                attrs[name] = v
        out.append({"class": type(obj).__name__, "attrs": attrs})
    return out


def _restore(current: Any, saved: Any) -> Any:
    if isinstance(saved, dict) and "generator" in saved:
        if not isinstance(current, np.random.Generator):  # not seeded yet in this process
            name = saved["generator"].get("bit_generator")
            if name not in _BIT_GENERATORS:
                raise ValueError(f"the checkpoint names an unknown bit generator {name!r}")
            current = np.random.Generator(_BIT_GENERATORS[name]())
        current.bit_generator.state = saved["generator"]
        return current
    if isinstance(saved, dict) and "deque" in saved:
        return deque(saved["deque"], maxlen=saved["maxlen"])
    if isinstance(saved, dict) and "list" in saved:
        return list(saved["list"])
    if isinstance(saved, np.ndarray):
        return saved.copy()
    return saved


def restore_env_state(env: Any, state: list[dict[str, Any]]) -> None:
    """Write ``state`` (from :func:`capture_env_state`) into ``env``, built from the same config."""
    envs = _envs(env)
    classes = [type(e).__name__ for e in envs]
    if classes != [s["class"] for s in state]:
        raise ValueError(
            f"the checkpoint's environment chain {[s['class'] for s in state]} differs from "
            f"this run's {classes}"
        )
    for obj, saved in zip(envs, state, strict=True):
        for name, value in saved["attrs"].items():
            if not hasattr(obj, name):  # only what a freshly built env of this config has
                raise ValueError(
                    f"the checkpoint's {saved['class']} has an attribute {name!r} that this "
                    "run's does not"
                )
            setattr(obj, name, _restore(getattr(obj, name), value))
