"""Which settings a resumed run may change, and the check that refuses the others.

A checkpoint carries the resolved config it was trained with (``adan_config``). Resuming it
with a config that changes the experiment (the market, the features, the costs, the network,
the reward, PPO's hyperparameters, the seed) would continue one run's history under another
run's rules, so it is refused before any work, with every differing key. What may change is
how long and where the run goes on: the budget, the Trainer, callbacks, loggers and paths.
"""

from __future__ import annotations

import logging
from typing import Any

from adan.errors import ResumeMismatchError

log = logging.getLogger(__name__)

# Top-level groups and keys that define the experiment: compared on resume.
EXPERIMENT = ("data", "env", "model", "reward", "trading", "agent", "seed", "optimized_metric")

# Keys inside those groups that may still change on resume (they change how long or how the
# run is executed, not what it computes).
MAY_CHANGE = (
    "agent.total_timesteps",  # the budget (annealing then spans the new budget)
    "data.cache_dir",  # where features are cached (content-addressed)
    "data.n_jobs",  # threads reading files
    "data.report_path",  # where the cleaning report goes
    "env.validate_every_step",  # observation checks
    "model.compile",  # torch.compile of the same network
)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": leaf}`` of a nested dict (lists are leaves)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


# Keys whose null means "derived from the data": a resumed run keeps the checkpoint's value.
DERIVED = ("data.bars_per_year", "env.bars_per_year")


def _compared(key: str) -> bool:
    return not any(key == m or key.startswith(m + ".") for m in MAY_CHANGE)


def experiment_differences(saved: dict[str, Any], requested: dict[str, Any]) -> list[tuple]:
    """``(key, checkpoint value, requested value)`` for every experiment key that differs. A key
    the checkpoint has and the request lacks shows ``<absent>``; a key the checkpoint lacks
    (a setting added since it was written) is not a difference (see :func:`new_settings`), nor
    is a ``DERIVED`` key requested as null."""
    absent = "<absent>"
    a = flatten({g: saved[g] for g in EXPERIMENT if g in saved})
    b = flatten({g: requested[g] for g in EXPERIMENT if g in requested})
    out = []
    for key in sorted(a):
        if not _compared(key) or (key in DERIVED and b.get(key, absent) is None):
            continue
        if a[key] != b.get(key, absent):
            out.append((key, a[key], b.get(key, absent)))
    return out


def new_settings(saved: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """Experiment keys of the request that the checkpoint predates, with their values."""
    a = flatten({g: saved[g] for g in EXPERIMENT if g in saved})
    b = flatten({g: requested[g] for g in EXPERIMENT if g in requested})
    return {k: v for k, v in b.items() if k not in a and _compared(k)}


def check_resume(saved: dict[str, Any], requested: dict[str, Any], path: str) -> None:
    """Raise :class:`ResumeMismatchError` listing every experiment key that differs; warn of
    settings the checkpoint predates (they take the requested values)."""
    added = new_settings(saved, requested)
    if added:
        log.warning(
            "%s predates %d setting(s); the resumed run uses %s",
            path,
            len(added),
            ", ".join(f"{k}={v!r}" for k, v in added.items()),
        )
    diffs = experiment_differences(saved, requested)
    if not diffs:
        return
    rows = "\n".join(f"  {key}: {old!r} -> {new!r}" for key, old, new in diffs)
    raise ResumeMismatchError(
        f"cannot resume {path}: the requested config changes the experiment it was trained "
        f"with ({len(diffs)} key{'s' if len(diffs) > 1 else ''}, checkpoint value -> requested "
        f"value):\n{rows}\nResume with the checkpoint's settings (its .hydra/config.yaml), or "
        "start a new run without ckpt_path. Only the budget (agent.total_timesteps), trainer, "
        "callbacks, logger and paths keys may change on resume (docs/reliability.md)."
    )
