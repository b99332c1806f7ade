"""Settings that moved: the old key still works for now, with a warning naming the new one.

``migrate`` rewrites a composed config (or a checkpoint's saved config) in place before it is
checked, so everything after it reads the new key only. Setting both spellings to different
values is refused rather than guessed.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from adan.errors import ConfigError

log = logging.getLogger(__name__)

# The regime detector's settings as they were under trading.regime (a record of what moved:
# a setting added to data.regime later never had an old key).
REGIME_MOVED = (
    "method",
    "vol_span",
    "vol_ref_span",
    "trend_span",
    "adx_period",
    "volatile_threshold",
    "quiet_threshold",
    "calm_threshold",
    "adx_threshold",
    "smooth",
    "warmup",
    "hmm_iterations",
    "hmm_persistence",
)

# old key -> (new key, why it moved)
MOVED: dict[str, tuple[str, str]] = {
    "env.bars_per_year": (
        "data.bars_per_year",
        "the annualisation describes the data (its bar interval and calendar), not the env",
    ),
    **{
        f"trading.regime.{name}": (
            f"data.regime.{name}",
            "the data pipeline labels the regimes once, for every task",
        )
        for name in REGIME_MOVED
    },
}


def migrate(cfg: DictConfig, *, warn: bool = True) -> list[str]:
    """Move every deprecated key of ``cfg`` that is set to its new home; the old keys moved."""
    moved = []
    for old, (new, why) in MOVED.items():
        value = OmegaConf.select(cfg, old)
        if value is None or OmegaConf.select(cfg, new.split(".")[0]) is None:
            continue
        current = OmegaConf.select(cfg, new)
        if current is not None and current != value and current != _default(cfg, new):
            raise ConfigError(
                f"{old}={value} and {new}={current} disagree: {old} is deprecated, set only {new}"
            )
        if warn:
            text = f"{old} is deprecated and will be removed: set {new} instead ({why})"
            warnings.warn(text, FutureWarning, stacklevel=2)
            log.warning("%s; using %s=%s", text, new, value)
        OmegaConf.update(cfg, new, value, force_add=True)
        OmegaConf.update(cfg, old, None)
        moved.append(old)
    return moved


def _default(cfg: DictConfig, key: str) -> Any:
    """The schema default of ``key`` in a typed config (None where untyped or unknown): a new
    key still at its default was not set, so the old key's value wins."""
    parent, leaf = key.rsplit(".", 1)
    node = OmegaConf.select(cfg, parent)
    kind = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
    if kind is None or not is_dataclass(kind):
        return None
    found = {f.name: f for f in fields(kind)}.get(leaf)
    return None if found is None or found.default is MISSING else found.default


def migrated(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's saved config (plain containers) with its deprecated keys moved, silently:
    the checkpoint was written when they were current."""
    cfg = OmegaConf.create(saved)
    migrate(cfg, warn=False)
    return OmegaConf.to_container(cfg)
