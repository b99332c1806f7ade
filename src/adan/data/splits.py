"""Chronological train / val / test splits with an embargo, and a train-only feature scaler.

Why: time series must be split by time (never shuffled), with a gap of ``embargo`` bars so
features spanning a boundary cannot leak; normalisation statistics come from the training
rows only, and travel with the checkpoint as plain lists.
"""

from __future__ import annotations

import numpy as np

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


def split_by_fraction(
    n_bars: int, train: float = 0.7, val: float = 0.15, test: float = 0.15, embargo: int = 0
) -> dict[str, tuple[int, int]]:
    """Half-open [start, stop) bar ranges for train, val, test, in that order in time.

    Fractions apply to the bars left after the two embargo gaps; ``embargo`` bars are dropped
    between train and val and between val and test. If the fractions sum to less than 1, the
    remaining bars at the end are unused.
    """
    fractions = {"train": train, "val": val, "test": test}
    for name, frac in fractions.items():
        if not 0.0 < float(frac) <= 1.0:
            raise ValueError(f"split fraction {name}={frac} must be in (0, 1]")
    total = sum(float(f) for f in fractions.values())
    if total > 1.0 + 1e-9:
        raise ValueError(f"split fractions train+val+test = {total:g} exceed 1 ({fractions})")
    if int(embargo) != embargo or embargo < 0:
        raise ValueError(f"embargo={embargo} must be a non-negative integer")
    embargo = int(embargo)
    usable = int(n_bars) - 2 * embargo
    if usable < 3:
        raise ValueError(f"{n_bars} bars leave {usable} after an embargo of {embargo} (x2)")
    n_train, n_val = int(train * usable), int(val * usable)
    n_test = usable - n_train - n_val if total > 1.0 - 1e-9 else int(test * usable)
    bounds, start = {}, 0
    for name, n in zip(SPLIT_NAMES, (n_train, n_val, n_test), strict=True):
        bounds[name] = (start, start + n)
        start += n + embargo
    return bounds


class FeatureScaler:
    """Per-(asset, feature) standardisation fitted on training rows, clipped to +-``clip``.

    ``std`` is floored at ``min_std`` so a constant feature maps to 0 instead of inf.
    """

    def __init__(self, clip: float = 10.0, min_std: float = 1e-8) -> None:
        if clip <= 0:
            raise ValueError(f"clip={clip} must be positive")
        self.clip, self.min_std = float(clip), float(min_std)
        self.mean: np.ndarray | None = None  # [A, F] float64
        self.std: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> FeatureScaler:
        """Fit on ``x`` [T, A, F] (the training rows only)."""
        if x.ndim != 3 or len(x) == 0:
            raise ValueError(f"FeatureScaler.fit expects non-empty [T, A, F], got {x.shape}")
        self.mean = x.mean(axis=0, dtype=np.float64)
        self.std = np.maximum(x.std(axis=0, dtype=np.float64), self.min_std)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / std as C-contiguous float32, clipped to [-clip, clip]."""
        if self.mean is None or self.std is None:
            raise RuntimeError("FeatureScaler.transform called before fit")
        if x.shape[1:] != self.mean.shape:
            raise ValueError(f"expected [T, *{self.mean.shape}] features, got {x.shape}")
        z = np.clip((x - self.mean) / self.std, -self.clip, self.clip)
        return np.ascontiguousarray(z, dtype=np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    def state_dict(self) -> dict:
        """Plain Python lists and floats, safe to put in a checkpoint or YAML."""
        if self.mean is None or self.std is None:
            raise RuntimeError("FeatureScaler.state_dict called before fit")
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "clip": self.clip,
            "min_std": self.min_std,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> FeatureScaler:
        scaler = cls(clip=state["clip"], min_std=state.get("min_std", 1e-8))
        scaler.mean = np.asarray(state["mean"], dtype=np.float64)
        scaler.std = np.asarray(state["std"], dtype=np.float64)
        return scaler

    def __repr__(self) -> str:
        shape = None if self.mean is None else self.mean.shape
        return f"FeatureScaler(clip={self.clip}, fitted={shape is not None}, shape={shape})"
