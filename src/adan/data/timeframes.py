"""Higher timeframes (4h, 1d bars over hourly base bars), resampled causally.

Why: trends and regimes read better on slower bars, but a slow bar must not leak its future.
A 4h bar aggregates four hourly bars and is only known once its last hour has closed, so the
base bar t sees the latest higher bar that is *closed at t's close*, never the one in progress.

Conventions:

- ``Bars.timestamps`` are bar *open* times (datetime64[ns], UTC). The base bar length is the
  median difference of consecutive timestamps (robust to gaps and a few odd bars).
- Periods of ``rule`` (a fixed-length pandas frequency: "15min", "4h", "1d"; not "1W" or
  "1ME", whose length varies or whose anchor is not midnight) are anchored at the Unix epoch,
  i.e. UTC midnight, and labelled by their start, as pandas'
  ``resample(rule, closed="left", label="left", origin="epoch")``. Periods without a base bar
  are absent (no forward filling).
- The period holding base bar t is closed at t when t is its last base slot: t's open time
  plus the base bar length reaches the period's end (and the next base bar, if any, lies in a
  later period, which only matters for malformed overlapping bars). Otherwise the latest closed
  period is the previous existing one, or none (-1).

`HigherTimeframes` is the pipeline's part: resample, compute features with the base feature
registry, drop their warm-up rows, tell the pipeline from which base row every window is
complete, and normalise each timeframe with a scaler fitted on the higher bars closed within
the training split.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from adan.data.bars import Bars, TimeframeData
from adan.data.features import compute_features, require_finite
from adan.data.splits import FeatureScaler

_SPEC_KEYS = ("rule", "features", "window")


def rule_duration(rule: str) -> pd.Timedelta:
    """The fixed length of a pandas frequency alias ("4h" -> 4 hours); ValueError if it has
    none (calendar offsets such as "1W", "1ME") or is not positive."""
    try:
        with warnings.catch_warnings():  # pandas 3 deprecates lower-case "d"; it still works
            warnings.simplefilter("ignore")
            duration = pd.Timedelta(to_offset(str(rule)))
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"timeframe rule {rule!r} is not a fixed-length pandas frequency such as "
            f"'15min', '4h' or '1d' ({err})"
        ) from None
    if duration <= pd.Timedelta(0):
        raise ValueError(f"timeframe rule {rule!r} must be a positive duration, got {duration}")
    return duration


def bar_length(timestamps: np.ndarray) -> int:
    """Base bar length in nanoseconds: the median difference of consecutive timestamps."""
    ts = np.asarray(timestamps).astype("datetime64[ns]").view(np.int64)
    if len(ts) < 2:
        raise ValueError(f"need at least 2 bars to infer the bar length, got {len(ts)}")
    diff = np.diff(ts)
    if (diff <= 0).any():
        raise ValueError("bar timestamps must be strictly increasing")
    return int(np.median(diff))


def resample(bars: Bars, rule: str) -> tuple[Bars, np.ndarray]:
    """Aggregate ``bars`` into periods of ``rule`` (see the module docstring).

    Returns the higher-timeframe ``Bars`` (timestamp = period start; open first, high max, low
    min, close last, volume sum per asset; ``regimes`` of the period's last base bar; ``filled``
    if any of its base bars was filled in for a gap) and, for
    every base bar t, the int64 index of the latest higher bar closed at t's close (-1: none).
    """
    step = rule_duration(rule).value
    base = bar_length(bars.timestamps)
    if step < base:
        raise ValueError(
            f"timeframe rule {rule!r} ({pd.Timedelta(step)}) is shorter than the base bar "
            f"length {pd.Timedelta(base)}"
        )
    ts = bars.timestamps.astype("datetime64[ns]").view(np.int64)
    period = ts // step  # floor division: anchored at the epoch, also before 1970
    new = np.r_[True, period[1:] != period[:-1]]
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(ts) - 1]
    group = np.cumsum(new) - 1  # higher bar of each base bar

    def f64(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    higher = Bars(
        timestamps=(period[first] * step).astype("datetime64[ns]"),
        assets=tuple(bars.assets),
        open=f64(bars.open)[first],
        high=np.maximum.reduceat(f64(bars.high), first, axis=0),
        low=np.minimum.reduceat(f64(bars.low), first, axis=0),
        close=f64(bars.close)[last],
        volume=np.add.reduceat(f64(bars.volume), first, axis=0),
        regimes=None if bars.regimes is None else bars.regimes[last],
        filled=None if bars.filled is None else np.logical_or.reduceat(bars.filled, first, axis=0),
    )
    last_slot = ts + base >= (period + 1) * step
    last_slot[:-1] &= new[1:]  # a later base bar in the same period: not closed yet
    index = np.where(last_slot, group, group - 1).astype(np.int64)
    return higher, index


@dataclass(frozen=True)
class TimeframeSpec:
    """One higher timeframe to observe: ``rule`` bars, ``features``, a ``window`` of them."""

    rule: str
    features: tuple[str, ...]
    window: int = 16

    @classmethod
    def from_mapping(cls, spec: Mapping) -> TimeframeSpec:
        unknown = sorted(set(map(str, spec)) - set(_SPEC_KEYS))
        if unknown:
            raise ValueError(f"unknown timeframe key {unknown[0]!r}; valid keys: {_SPEC_KEYS}")
        if "rule" not in spec or "features" not in spec:
            raise ValueError(f"a timeframe needs 'rule' and 'features', got {dict(spec)}")
        window = spec.get("window", cls.window)
        if int(window) != window or window < 1:
            raise ValueError(f"timeframe {spec['rule']!r}: window must be >= 1, got {window}")
        rule_duration(spec["rule"])
        return cls(str(spec["rule"]), tuple(str(f) for f in spec["features"]), int(window))


class HigherTimeframes:
    """Resampled bars and raw features of each higher timeframe, for `MarketPipeline`.

    ``first_row`` is the first base row whose every higher window is complete (all of its
    higher bars closed and past their feature warm-up); the pipeline drops the rows before it
    in addition to the base warm-up. ``build`` normalises and returns the `TimeframeData`.
    """

    def __init__(self, bars: Bars, specs: Sequence[TimeframeSpec | Mapping] | None) -> None:
        self.specs = [
            s if isinstance(s, TimeframeSpec) else TimeframeSpec.from_mapping(s)
            for s in specs or ()
        ]
        durations = [rule_duration(s.rule) for s in self.specs]
        if len(set(durations)) != len(durations):
            raise ValueError(f"duplicate timeframes {[s.rule for s in self.specs]}")
        self._raw: list[np.ndarray] = []  # [P, A, F] float64, warm-up rows dropped
        self._index: list[np.ndarray] = []  # [T] int64 into _raw rows (< window-1: incomplete)
        self._warmup: list[int] = []
        self.first_row = 0
        for spec in self.specs:
            higher, index = resample(bars, spec.rule)
            raw, warmup = compute_features(higher, spec.features)
            raw, index = raw[warmup:], index - warmup
            require_finite(raw, higher, spec.features, warmup, f"timeframe {spec.rule!r}: ")
            complete = index >= spec.window - 1  # index never decreases: a suffix of rows
            if not complete.any():
                raise ValueError(
                    f"timeframe {spec.rule!r} never has a full window: it needs "
                    f"{warmup} warm-up + {spec.window} closed bars, the data holds "
                    f"{len(higher)} {spec.rule} bars ({len(bars)} base bars)"
                )
            self.first_row = max(self.first_row, int(complete.argmax()))
            self._raw.append(raw)
            self._index.append(index)
            self._warmup.append(warmup)

    def __bool__(self) -> bool:
        return bool(self.specs)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything ``__init__`` computed, as named arrays (for the feature cache)."""
        out = {"first_row": np.array(self.first_row)}
        for i, (raw, index, warmup) in enumerate(
            zip(self._raw, self._index, self._warmup, strict=True)
        ):
            out[f"tf{i}_raw"], out[f"tf{i}_index"] = raw, index
            out[f"tf{i}_warmup"] = np.array(warmup)
        return out

    @classmethod
    def from_arrays(
        cls, specs: Sequence[TimeframeSpec], arrays: Mapping[str, np.ndarray]
    ) -> HigherTimeframes:
        """The inverse of ``arrays``, for the same ``specs``."""
        self = cls.__new__(cls)
        self.specs = list(specs)
        self.first_row = int(arrays["first_row"])
        self._raw = [arrays[f"tf{i}_raw"] for i in range(len(specs))]
        self._index = [arrays[f"tf{i}_index"] for i in range(len(specs))]
        self._warmup = [int(arrays[f"tf{i}_warmup"]) for i in range(len(specs))]
        return self

    def build(
        self, start: int, train_stop: int, clip: float, fitted: Mapping[str, Mapping] | None = None
    ) -> tuple[dict[str, TimeframeData], dict]:
        """Normalise every timeframe with a scaler fitted on its higher bars closed by the end
        of the training split (base rows [.., ``train_stop``) of the original bars).

        Returns {rule: TimeframeData} whose ``index`` covers the original base rows
        [``start``, T) (``start >= first_row``: the rows the pipeline keeps; slice it with
        ``take`` as the base features) and {rule: {"scaler", "feature_names", "window",
        "warmup"}} for the meta (plain lists, like the base scaler's). With ``fitted`` (that
        meta, saved with a checkpoint) its scalers are applied instead of fitting new ones.
        """
        if start < self.first_row or (fitted is None and train_stop <= start):
            raise ValueError(f"need first_row={self.first_row} <= start={start} < train_stop")
        out, meta = {}, {}
        for spec, raw, index, warmup in zip(
            self.specs, self._raw, self._index, self._warmup, strict=True
        ):
            if fitted is not None:
                scaler = FeatureScaler.from_state_dict(fitted[spec.rule]["scaler"])
            else:
                scaler = FeatureScaler(clip=clip).fit(raw[: index[train_stop - 1] + 1])
            out[spec.rule] = TimeframeData(
                rule=spec.rule,
                feature_names=spec.features,
                features=scaler.transform(raw),
                index=np.ascontiguousarray(index[start:]),
                window=spec.window,
            )
            meta[spec.rule] = {
                "scaler": scaler.state_dict(),
                "feature_names": list(spec.features),
                "window": spec.window,
                "warmup": warmup,
            }
        return out, meta
