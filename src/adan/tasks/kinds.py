"""Which kind of task a config describes: trading on a market, or a plain gymnasium task.

The one place that decides it (``experiment=cartpole`` has no ``data`` group), so the train,
walk-forward and preflight paths cannot disagree.
"""

from __future__ import annotations

from omegaconf import DictConfig


def is_gym_task(cfg: DictConfig) -> bool:
    """True for a plain gymnasium task (``env.env_id``, no market data)."""
    return cfg.get("data") is None
