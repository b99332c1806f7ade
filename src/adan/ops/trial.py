"""Which sweep trial a job is, and the parameters it was given, for the experiment trackers.

A sweeper passes every trial job ``++optuna_trial.study=<name>``, ``++optuna_trial.number=<n>``
and ``++optuna_trial.storage=<url>``: inside a sweep ``cfg.optuna_trial`` holds them, outside
one it is absent. A trial's parameters are the job's Hydra task overrides (what the sweeper
chose, plus whatever the sweep was started with), less the ``optuna_trial.*`` ones.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
TRIAL_KEY = "optuna_trial"


def trial_of(node: Any) -> dict[str, Any] | None:
    """``{"study", "number"}`` of a sweep trial, from ``cfg.optuna_trial`` (or that node
    itself); None outside a sweep. The storage URL is left out: it may hold a password."""
    if isinstance(node, DictConfig) and "study" not in node:  # a run's config
        node = node.get(TRIAL_KEY)
    if node is None:
        return None
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if not isinstance(node, dict) or node.get("study") is None:
        return None
    number = node.get("number")
    return {"study": str(node["study"]), "number": None if number is None else int(number)}


def trial_name(trial: dict[str, Any]) -> str:
    """``<study>-trial<number>``."""
    return f"{trial['study']}-trial{trial['number']}"


def task_overrides() -> list[str]:
    """The current Hydra job's task overrides ([] outside a Hydra job)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        return []


def trial_params(overrides: list[str] | None = None) -> dict[str, Any]:
    """The job's overrides as ``{key: value}`` (``agent.learning_rate=3e-4`` gives
    ``{"agent.learning_rate": 0.0003}``, a group choice ``model=mlp`` gives ``{"model": "mlp"}``),
    without the ``optuna_trial.*`` ones; a deletion (``~key``) gives ``{"~key": None}``."""
    overrides = task_overrides() if overrides is None else overrides
    if not overrides:
        return {}
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params: dict[str, Any] = {}
    parser = OverridesParser.create()
    for line in overrides:
        try:
            (o,) = parser.parse_overrides([line])
        except Exception:  # Hydra parsed it once already; never fail a run on a report
            key, _, value = line.lstrip("~+").partition("=")
            if key.split(".")[0] != TRIAL_KEY:
                params[key] = value
            continue
        key = o.key_or_group if o.package is None else f"{o.key_or_group}@{o.package}"
        if key == TRIAL_KEY or key.startswith(TRIAL_KEY + "."):
            continue
        if o.is_delete():
            params[f"~{key}"] = None
        else:
            params[key] = o.value()
    return params
