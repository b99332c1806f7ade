"""The data containers every other module speaks: raw `Bars`, model-ready `MarketData` and its
higher-timeframe companions `TimeframeData`.

All are time-major: axis 0 is the bar index on one common clock, axis 1 the asset.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from adan.data.calendar import CALENDARS


@dataclass(frozen=True)
class Bars:
    """Raw OHLCV bars of A assets on one clock (no features yet).

    Prices and volume are float64 arrays of shape [T, A]. ``regimes`` holds the true market
    regime per bar ([T] int8) when the source knows it (the synthetic market), else None;
    ``filled`` marks bars that cleaning filled in for a gap (flat at the last close, volume 0).

    The clock: ``calendar`` (``24x7``, ``fx``, ``equity``; see ``adan.data.calendar``), the bar
    length ``bar_ns`` (None: the median spacing of ``timestamps``) and, for equity, the bars of
    a trading session (None: judged from ``timestamps``). They give ``bars_per_year``.
    """

    timestamps: np.ndarray  # [T] datetime64[ns], UTC, strictly increasing
    assets: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    regimes: np.ndarray | None = None
    filled: np.ndarray | None = None  # [T, A] bool: bar filled in for a gap by cleaning
    calendar: str = "24x7"
    bar_ns: int | None = None
    bars_per_session: float | None = None

    def __post_init__(self) -> None:
        if self.calendar not in CALENDARS:
            raise ValueError(
                f"Bars.calendar must be one of {list(CALENDARS)}, got {self.calendar!r}"
            )
        shape = (len(self.timestamps), len(self.assets))
        if self.filled is not None and self.filled.shape != shape:
            raise ValueError(f"Bars.filled has shape {self.filled.shape}, expected {shape}")
        for name in ("open", "high", "low", "close", "volume"):
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(
                    f"Bars.{name} has shape {arr.shape}, expected {shape} (time, asset)"
                )
        if self.regimes is not None and self.regimes.shape != shape[:1]:
            raise ValueError(f"Bars.regimes has shape {self.regimes.shape}, expected {shape[:1]}")

    def __len__(self) -> int:
        return len(self.timestamps)


@dataclass(frozen=True)
class TimeframeData:
    """Normalised features of one higher timeframe (e.g. 4h bars over hourly base bars).

    ``features`` [P, A, F] float32 holds one row per higher bar (all finite: the warm-up rows
    are dropped); ``index`` [T] int64 gives, for every base bar t of the owning `MarketData`,
    the row of the latest higher bar that is *closed* at t's close (see
    `adan.data.timeframes.resample`). The observation at t is the window
    ``features[index[t] - window + 1 : index[t] + 1]``; every ``index[t] >= window - 1``.
    Slicing the owner slices ``index`` only, so a window may look back into higher bars closed
    before the slice starts (past data).
    """

    rule: str  # pandas offset alias, e.g. "4h"; the key in MarketData.timeframes
    feature_names: tuple[str, ...]
    features: np.ndarray  # [P, A, F] float32, C-contiguous
    index: np.ndarray  # [T] int64: latest closed higher bar per base bar
    window: int

    def __post_init__(self) -> None:
        p, f = len(self.features), len(self.feature_names)
        if self.features.ndim != 3 or self.features.shape[2] != f:
            raise ValueError(
                f"TimeframeData[{self.rule}].features has shape {self.features.shape}, "
                f"expected [P, A, {f}]"
            )
        if self.features.dtype != np.float32:
            raise ValueError(
                f"TimeframeData[{self.rule}].features must be float32, got {self.features.dtype}"
            )
        if self.index.ndim != 1 or self.index.dtype != np.int64:
            raise ValueError(
                f"TimeframeData[{self.rule}].index must be 1-D int64, got "
                f"{self.index.dtype} {self.index.shape}"
            )
        if int(self.window) != self.window or self.window < 1:
            raise ValueError(f"TimeframeData[{self.rule}].window must be >= 1, got {self.window}")
        if len(self.index) and (self.index.min() < self.window - 1 or self.index.max() >= p):
            raise ValueError(
                f"TimeframeData[{self.rule}].index must lie in [window - 1, P) = "
                f"[{self.window - 1}, {p}) so every base bar sees a full window of closed "
                f"higher bars; got [{self.index.min()}, {self.index.max()}]"
            )

    def take(self, rows: slice) -> TimeframeData:
        """The same higher bars, seen from base bars ``rows`` only (``index`` is a view)."""
        return replace(self, index=self.index[rows])


@dataclass(frozen=True)
class MarketData:
    """Everything the simulator needs for one period: prices to trade at and features to observe.

    ``features[t]`` is computed from bars up to and including t only (causal), normalised with
    statistics of the training period. Slicing returns views, never copies. ``timeframes``
    maps a rule (e.g. "4h") to the `TimeframeData` of that higher timeframe (empty: base only).
    """

    timestamps: np.ndarray  # [T] datetime64[ns]
    assets: tuple[str, ...]
    feature_names: tuple[str, ...]
    features: np.ndarray  # [T, A, F] float32, C-contiguous
    open: np.ndarray  # [T, A] float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    regimes: np.ndarray | None = None  # [T] int8 true regime (synthetic only)
    meta: dict = field(default_factory=dict)  # e.g. normalisation statistics, split name
    timeframes: dict[str, TimeframeData] = field(default_factory=dict)
    # [T] int8 regime detected causally over the whole history (adan.data.regime_detection)
    detected_regimes: np.ndarray | None = None

    def __post_init__(self) -> None:
        t, a, f = len(self.timestamps), len(self.assets), len(self.feature_names)
        if self.features.shape != (t, a, f):
            raise ValueError(
                f"MarketData.features has shape {self.features.shape}, expected {(t, a, f)}"
            )
        if self.features.dtype != np.float32:
            raise ValueError(f"MarketData.features must be float32, got {self.features.dtype}")
        for name in ("open", "high", "low", "close", "volume"):
            if getattr(self, name).shape != (t, a):
                raise ValueError(
                    f"MarketData.{name} has shape {getattr(self, name).shape}, expected {(t, a)}"
                )
        for rule, tf in self.timeframes.items():
            if tf.rule != rule or tf.index.shape != (t,) or tf.features.shape[1] != a:
                raise ValueError(
                    f"MarketData.timeframes[{rule!r}] (rule {tf.rule!r}, index {tf.index.shape}, "
                    f"features {tf.features.shape}) does not fit {t} bars of {a} assets"
                )

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def num_assets(self) -> int:
        return len(self.assets)

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def slice(self, start: int, stop: int, name: str | None = None) -> MarketData:
        """Bars [start, stop) as views of the same arrays."""
        s = slice(start, stop)
        meta = dict(self.meta, split=name) if name else dict(self.meta)
        return replace(
            self,
            timestamps=self.timestamps[s],
            features=self.features[s],
            open=self.open[s],
            high=self.high[s],
            low=self.low[s],
            close=self.close[s],
            volume=self.volume[s],
            regimes=None if self.regimes is None else self.regimes[s],
            detected_regimes=None if self.detected_regimes is None else self.detected_regimes[s],
            meta=meta,
            timeframes={rule: tf.take(s) for rule, tf in self.timeframes.items()},
        )
