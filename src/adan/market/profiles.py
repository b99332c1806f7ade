"""Which trading profile each env of a batch runs: the index every stage spreads its per-profile
settings with (``value[profile]`` is the per-env array)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def profile_index(configs: Sequence[object], profile: np.ndarray, owner: str) -> np.ndarray:
    """``profile`` as a 1-D int64 array [N] of valid indices into ``configs``; a ValueError
    naming ``owner`` otherwise."""
    if not configs:
        raise ValueError(f"{owner} needs at least one config per profile")
    profile = np.asarray(profile)
    if profile.ndim != 1 or (profile.size and not np.issubdtype(profile.dtype, np.integer)):
        raise ValueError(f"{owner}: profile must be a 1-D int array [N], got {profile.dtype}")
    profile = profile.astype(np.int64)
    if profile.size and (profile.min() < 0 or profile.max() >= len(configs)):
        raise ValueError(f"{owner}: profile indices must be in [0, {len(configs)}), got {profile}")
    return profile
