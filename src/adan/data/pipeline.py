"""Raw bars to model-ready ``MarketData`` per split: features, warm-up, split, normalise.

Why one place: the order matters for honesty. Features are computed causally on the whole
history, warm-up rows are dropped (never zero-filled), the history is cut by time with an
embargo, and the scaler sees the training rows only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from adan.data.bars import Bars, MarketData
from adan.data.features import compute_features
from adan.data.splits import SPLIT_NAMES, FeatureScaler, split_by_fraction


class BarSource(Protocol):
    """Anything that yields ``Bars``: the synthetic market, a CSV loader, a feed."""

    def generate(self) -> Bars: ...


_SPLIT_KEYS = ("train", "val", "test", "embargo")


class MarketPipeline:
    """Build {"train", "val", "test"} ``MarketData`` from a bar source.

    ``split`` maps train/val/test fractions and ``embargo`` bars (a dict or Hydra DictConfig);
    ``source`` is an object with ``.generate() -> Bars`` (or a ``Bars`` itself). Each split must
    keep at least ``min_split_bars`` bars.
    """

    def __init__(
        self,
        source: BarSource | Bars,
        features: Sequence[str],
        split: Mapping[str, Any] | None = None,
        clip: float = 10.0,
        min_split_bars: int = 32,
    ) -> None:
        split = {} if split is None else {str(k): split[k] for k in split}
        unknown = sorted(set(split) - set(_SPLIT_KEYS))
        if unknown:
            raise ValueError(f"unknown split key {unknown[0]!r}; valid keys: {list(_SPLIT_KEYS)}")
        self.source = source
        self.features = tuple(str(f) for f in features)
        self.split = {"train": 0.7, "val": 0.15, "test": 0.15, "embargo": 0, **split}
        self.clip = float(clip)
        self.min_split_bars = int(min_split_bars)

    def __repr__(self) -> str:
        s = self.split
        return (
            f"MarketPipeline(source={self.source.__class__.__name__}, "
            f"features={len(self.features)}, split={s['train']}/{s['val']}/{s['test']} "
            f"embargo={s['embargo']}, clip={self.clip})"
        )

    def describe(self) -> str:
        """One line: what this pipeline will build."""
        return repr(self)

    def build(self) -> dict[str, MarketData]:
        """Generate bars, compute features, drop warm-up, split by time, normalise."""
        bars = self.source if isinstance(self.source, Bars) else self.source.generate()
        raw, warmup = compute_features(bars, self.features)
        self._check_finite(raw[warmup:], bars, warmup)
        raw = raw[warmup:]
        n = len(raw)
        bounds = split_by_fraction(n, **self.split)
        for name, (start, stop) in bounds.items():
            if stop - start < self.min_split_bars:
                raise ValueError(
                    f"split {name!r} has {stop - start} bars, need at least {self.min_split_bars} "
                    f"({len(bars)} bars, {warmup} warm-up dropped, split {self.split})"
                )
        scaler = FeatureScaler(clip=self.clip).fit(raw[slice(*bounds["train"])])
        feats = scaler.transform(raw)
        meta = {"scaler": scaler.state_dict(), "feature_names": list(self.features)}
        out = {}
        for name in SPLIT_NAMES:
            start, stop = bounds[name]
            rows = slice(warmup + start, warmup + stop)  # rows of the original bars
            out[name] = MarketData(
                timestamps=bars.timestamps[rows],
                assets=tuple(bars.assets),
                feature_names=self.features,
                features=np.ascontiguousarray(feats[start:stop]),
                open=np.ascontiguousarray(bars.open[rows], dtype=np.float64),
                high=np.ascontiguousarray(bars.high[rows], dtype=np.float64),
                low=np.ascontiguousarray(bars.low[rows], dtype=np.float64),
                close=np.ascontiguousarray(bars.close[rows], dtype=np.float64),
                volume=np.ascontiguousarray(bars.volume[rows], dtype=np.float64),
                regimes=None if bars.regimes is None else bars.regimes[rows],
                meta=dict(meta, split=name, bar_range=(rows.start, rows.stop), warmup=warmup),
            )
        return out

    def _check_finite(self, x: np.ndarray, bars: Bars, warmup: int) -> None:
        bad = ~np.isfinite(x)
        if bad.any():
            t, a, f = np.argwhere(bad)[0]
            raise ValueError(
                f"feature {self.features[f]!r} is {x[t, a, f]} for asset {bars.assets[a]!r} at "
                f"{bars.timestamps[warmup + t]} (row {warmup + t}) after warm-up; "
                "check the input bars there (non-positive or missing prices?)"
            )
