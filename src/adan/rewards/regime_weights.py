"""The adaptive reward's per-regime multipliers: the component names and the checked table.

Kept apart from ``adaptive.py`` so the reward's settings (``rewards/schema.py``) can check
``reward.regime_weights`` without importing the reward itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from adan.data.regimes import REGIME_NAMES
from adan.errors import check

COMPONENTS = ("return", "sharpe", "sortino", "drawdown", "turnover")


def regime_table(
    regime_weights: Mapping[str, Mapping[str, float]] | None,
) -> np.ndarray | None:
    """``{regime: {component: multiplier}}`` as an [R, C] array (missing: 1.0), validated
    with the full key (``reward.regime_weights.<regime>.<component>``); None or an empty
    mapping (every multiplier 1.0) gives None: no regime weighting."""
    if regime_weights is None or (isinstance(regime_weights, Mapping) and not regime_weights):
        return None
    key = "reward.regime_weights"
    check(
        isinstance(regime_weights, Mapping),
        key,
        "must map regime names to mappings",
        regime_weights,
    )
    table = np.ones((len(REGIME_NAMES), len(COMPONENTS)))
    for regime, weights in regime_weights.items():
        check(regime in REGIME_NAMES, key, f"keys must be among {list(REGIME_NAMES)}", regime)
        rkey = f"{key}.{regime}"
        check(isinstance(weights, Mapping), rkey, "must map component names to numbers", weights)
        for name, value in weights.items():
            check(name in COMPONENTS, rkey, f"keys must be among {list(COMPONENTS)}", name)
            ckey = f"{rkey}.{name}"
            number = isinstance(value, int | float) and not isinstance(value, bool)
            check(number and math.isfinite(value), ckey, "must be a finite number", value)
            check(value >= 0, ckey, "must be >= 0", value)
            table[REGIME_NAMES.index(regime), COMPONENTS.index(name)] = float(value)
    return table
