"""Chronological train / val / test splits with an embargo, and a train-only feature scaler.

Why: time series must be split by time (never shuffled), with a gap of ``embargo`` bars so
features spanning a boundary cannot leak; normalisation statistics come from the training
rows only, and travel with the checkpoint as plain lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

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


def _check_count(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming ``name`` if it is not an integer >= minimum."""
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= minimum
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def _utc_ns(name: str, value: Any) -> np.datetime64:
    """``value`` (string, datetime, numpy or pandas timestamp) as naive-UTC datetime64[ns]."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}={value!r} is not a date/time: {err}") from None
    if ts is pd.NaT:
        raise ValueError(f"{name}={value!r} is not a date/time")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.as_unit("ns").asm8, "ns")


def split_by_date(
    timestamps: np.ndarray,
    train_end: Any,
    val_end: Any,
    test_end: Any = None,
    embargo: int = 0,
) -> dict[str, tuple[int, int]]:
    """Half-open [start, stop) bar ranges for train, val, test, cut at calendar dates.

    Why: results are reported for fixed periods (e.g. "val = 2023") whatever the bar count.
    train = bars with timestamp < ``train_end``; val = from ``train_end`` plus ``embargo`` bars
    to before ``val_end``; test = from ``val_end`` plus ``embargo`` bars to before ``test_end``
    (None: to the last bar). Dates are strings or numpy / pandas / datetime timestamps; naive
    ones are taken as UTC, like ``timestamps`` (datetime64, strictly increasing).
    """
    ts = np.asarray(timestamps)
    if ts.ndim != 1 or len(ts) == 0:
        raise ValueError(f"timestamps must be a non-empty 1-D array, got shape {ts.shape}")
    if not np.issubdtype(ts.dtype, np.datetime64):
        ts = pd.to_datetime(ts, utc=True).tz_localize(None).to_numpy()
    ts = ts.astype("datetime64[ns]")
    if len(ts) > 1 and not (ts[1:] > ts[:-1]).all():
        bad = int(np.argmin(ts[1:] > ts[:-1]))
        raise ValueError(
            f"timestamps must be strictly increasing; row {bad + 1} ({ts[bad + 1]}) "
            f"is not after row {bad} ({ts[bad]})"
        )
    embargo = _check_count("embargo", embargo, 0)
    first, last, n = ts[0], ts[-1], len(ts)
    span = f"the data runs from {first} to {last} ({n} bars)"
    dates = {"train_end": train_end, "val_end": val_end}
    if test_end is not None:
        dates["test_end"] = test_end
    cuts: dict[str, np.datetime64] = {}
    for name, value in dates.items():
        cut = _utc_ns(name, value)
        if cut <= first or (cut > last and name != "test_end"):
            raise ValueError(f"{name}={value!r} ({cut}) is outside the data: {span}")
        cuts[name] = cut
    order = list(cuts)
    for before, after in zip(order, order[1:], strict=False):
        if cuts[after] <= cuts[before]:
            raise ValueError(f"{after}={dates[after]!r} must be after {before}={dates[before]!r}")
    stop = {k: int(np.searchsorted(ts, v, side="left")) for k, v in cuts.items()}
    train_stop, val_stop = stop["train_end"], stop["val_end"]
    bounds = {
        "train": (0, train_stop),
        "val": (train_stop + embargo, val_stop),
        "test": (val_stop + embargo, stop.get("test_end", n)),
    }
    cause = {"train": "train_end", "val": "val_end", "test": "test_end"}
    for name, (start, end) in bounds.items():
        if end <= start:
            raise ValueError(
                f"{name} split is empty: bars [{start}, {end}) with embargo={embargo}; "
                f"move {cause[name]} (or reduce the embargo); {span}"
            )
    return bounds


def walk_forward_folds(
    n_bars: int,
    n_folds: int,
    train_bars: int | None,
    val_bars: int,
    test_bars: int = 0,
    embargo: int = 0,
    expanding: bool = False,
) -> list[dict[str, tuple[int, int]]]:
    """Walk-forward folds: list of {"train", "val"[, "test"]} half-open bar ranges, oldest first.

    Why: one split judges a model on one period; folds marching forward in time give several
    out-of-sample periods while never training on the future. The val periods are
    ``val_bars`` long, contiguous and non-overlapping, and tile the end of the history: the
    last fold's val (followed by ``embargo`` + ``test_bars`` bars of test when ``test_bars`` >
    0) ends at ``n_bars``. Each fold trains on the ``train_bars`` bars before its val, less an
    ``embargo`` gap (``expanding``: from the first fold's train start up to that gap, so the
    train window grows by ``val_bars`` per fold). ``train_bars=None`` gives the first fold
    every bar before it. A fold's test may overlap the next fold's val: folds are separate
    runs. Earlier bars not needed by any fold are left unused.
    """
    n_bars = _check_count("n_bars", n_bars, 1)
    n_folds = _check_count("n_folds", n_folds, 1)
    val_bars = _check_count("val_bars", val_bars, 1)
    test_bars = _check_count("test_bars", test_bars, 0)
    embargo = _check_count("embargo", embargo, 0)
    if train_bars is not None:
        train_bars = _check_count("train_bars", train_bars, 1)
    tail = embargo + test_bars if test_bars else 0
    first_val = n_bars - tail - n_folds * val_bars
    need = (train_bars or 1) + embargo + n_folds * val_bars + tail
    if first_val - embargo < (train_bars or 1):
        raise ValueError(
            f"walk-forward needs {need} bars (train_bars={train_bars} + embargo={embargo} + "
            f"n_folds={n_folds} x val_bars={val_bars}"
            + (f" + embargo + test_bars={test_bars}" if test_bars else "")
            + f"), only n_bars={n_bars} available"
        )
    first_len = first_val - embargo if train_bars is None else train_bars  # fold 0's train
    folds = []
    for k in range(n_folds):
        val_start = first_val + k * val_bars
        train_stop = val_start - embargo
        start = first_val - embargo - first_len if expanding else train_stop - first_len
        fold = {"train": (start, train_stop), "val": (val_start, val_start + val_bars)}
        if test_bars:
            test_start = val_start + val_bars + embargo
            fold["test"] = (test_start, test_start + test_bars)
        folds.append(fold)
    return folds


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
