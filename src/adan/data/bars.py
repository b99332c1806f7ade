"""The two data containers every other module speaks: raw `Bars` and model-ready `MarketData`.

Both are time-major: axis 0 is the bar index on one common clock, axis 1 the asset.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Bars:
    """Raw OHLCV bars of A assets on one clock (no features yet).

    Prices and volume are float64 arrays of shape [T, A]. ``regimes`` holds the true market
    regime per bar ([T] int8) when the source knows it (the synthetic market), else None.
    """

    timestamps: np.ndarray  # [T] datetime64[ns], UTC, strictly increasing
    assets: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    regimes: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = (len(self.timestamps), len(self.assets))
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
class MarketData:
    """Everything the simulator needs for one period: prices to trade at and features to observe.

    ``features[t]`` is computed from bars up to and including t only (causal), normalised with
    statistics of the training period. Slicing returns views, never copies.
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
            meta=meta,
        )
