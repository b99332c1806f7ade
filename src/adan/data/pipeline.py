"""Raw bars to model-ready ``MarketData`` per split: features, warm-up, split, normalise.

Why one place: the order matters for honesty. Features are computed causally on the whole
history, warm-up rows are dropped (never zero-filled), the history is cut by time with an
embargo, and the scaler sees the training rows only. The same code, given the scalers saved
with a checkpoint (``fitted``), rebuilds exactly the transformation a trained agent expects.

Expensive work (loading and cleaning files, features on every timeframe) is cached on disk
under ``cache_dir``, keyed by a content hash of the raw input and the feature configuration
(see ``adan.data.cache``); splitting and normalising are cheap and always redone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from adan.data.bars import Bars, MarketData
from adan.data.cache import FeatureCache, content_key
from adan.data.calendar import clock_meta, resolve_bars_per_year
from adan.data.features import FEATURE_CODE_VERSION, compute_features, require_finite
from adan.data.regime_detection import RegimeConfig, attach_regimes, regime_config
from adan.data.schema import MarketPipelineSchema
from adan.data.splits import (
    FeatureScaler,
    split_by_date,
    split_by_fraction,
    walk_forward_folds,
)
from adan.data.timeframes import HigherTimeframes, TimeframeSpec

log = logging.getLogger(__name__)


class BarSource(Protocol):
    """Anything that yields ``Bars``: the synthetic market, a file loader, a feed.

    A source may also offer ``fingerprint() -> dict`` (what its bars depend on, e.g. file
    digests): the cache then skips ``generate()`` itself on a hit. Without one, the cache keys
    on the generated bars and saves the feature work only.
    """

    def generate(self) -> Bars: ...


_SPLIT_KEYS = ("train", "val", "test", "embargo", "train_end", "val_end", "test_end")


@dataclass
class PreparedBars:
    """One source's bars with raw (unnormalised) features: what the cache stores.

    ``first_row``: the first row with every feature past its warm-up and every higher
    timeframe window complete; rows before it are dropped, never filled.
    """

    bars: Bars
    raw: np.ndarray  # [T, A, F] float64
    first_row: int
    higher: HigherTimeframes
    report: dict | None = None  # the source's cleaning report, if it keeps one

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {
            **bars_to_arrays(self.bars),
            "raw": self.raw,
            "first_row": np.array(self.first_row),
            **{f"higher_{k}": v for k, v in self.higher.arrays().items()},
        }
        if self.report is not None:
            out["report"] = np.frombuffer(json.dumps(self.report).encode(), dtype=np.uint8)
        return out

    @classmethod
    def from_arrays(
        cls, a: Mapping[str, np.ndarray], specs: Sequence[TimeframeSpec]
    ) -> PreparedBars:
        higher = {k[len("higher_") :]: v for k, v in a.items() if k.startswith("higher_")}
        return cls(
            bars_from_arrays(a),
            a["raw"],
            int(a["first_row"]),
            HigherTimeframes.from_arrays(specs, higher),
            json.loads(a["report"].tobytes()) if "report" in a else None,
        )


_BAR_FIELDS = ("open", "high", "low", "close", "volume")


def bars_to_arrays(bars: Bars) -> dict[str, np.ndarray]:
    """``Bars`` as plain named arrays (no pickle needed to store them)."""
    out = {
        "timestamps": bars.timestamps.astype("datetime64[ns]").view(np.int64),
        "assets": np.array(bars.assets, dtype=str),
        "calendar": np.array(bars.calendar, dtype=str),
        **{k: getattr(bars, k) for k in _BAR_FIELDS},
    }
    for k in ("regimes", "filled"):
        if getattr(bars, k) is not None:
            out[k] = getattr(bars, k)
    if bars.bar_ns is not None:
        out["bar_ns"] = np.array(bars.bar_ns, dtype=np.int64)
    if bars.bars_per_session is not None:
        out["bars_per_session"] = np.array(bars.bars_per_session, dtype=np.float64)
    return out


def bars_from_arrays(a: Mapping[str, np.ndarray]) -> Bars:
    """The inverse of ``bars_to_arrays``."""
    return Bars(
        timestamps=a["timestamps"].view("datetime64[ns]"),
        assets=tuple(str(x) for x in a["assets"]),
        regimes=a.get("regimes"),
        filled=a.get("filled"),
        calendar=str(a["calendar"]) if "calendar" in a else "24x7",
        bar_ns=int(a["bar_ns"]) if "bar_ns" in a else None,
        bars_per_session=float(a["bars_per_session"]) if "bars_per_session" in a else None,
        **{k: a[k] for k in _BAR_FIELDS},
    )


def clock_of(bars: Bars) -> dict[str, Any]:
    """``MarketData.meta``'s clock keys for ``bars``: ``bar_interval``, ``bar_seconds``,
    ``calendar``, ``bars_per_year`` (see ``adan.data.calendar.clock_meta``)."""
    return clock_meta(bars.timestamps, bars.calendar, bars.bar_ns, bars.bars_per_session)


class MarketPipeline:
    """Build {"train", "val", "test"} ``MarketData`` from a bar source.

    - ``source``: an object with ``.generate() -> Bars`` (or a ``Bars`` itself).
    - ``split``: ``train``/``val``/``test`` fractions, or dates ``train_end``/``val_end``
      (/``test_end``), and ``embargo`` bars dropped between consecutive splits. Each split
      must keep at least ``min_split_bars`` bars.
    - ``timeframes``: higher timeframes to observe as well, each ``{rule: "4h", features:
      [...], window: 16}`` (see `adan.data.timeframes`).
    - ``test_source``: a separate held-out period that becomes the whole test split (own
      warm-up, the training scaler); ``split`` then cuts the history into train and val only.
    - ``cache_dir``: where prepared bars and features are cached (None: no cache).
    - ``n_jobs``: assets whose features are computed in parallel (-1: all cores).
    - ``bars_per_year``: the annualisation every split's meta carries; None: the bars' own
      (bar interval and calendar). A value more than 10% away from theirs is refused.
    - ``regime``: how every split's bars are labelled bull / bear / sideways / volatile
      (``RegimeConfig``; None: its defaults), in one causal pass over the splits in time order
      (``attach_regimes``; an HMM is fitted on train only).
    """

    def __init__(
        self,
        source: BarSource | Bars,
        features: Sequence[str],
        split: Mapping[str, Any] | None = None,
        clip: float = MarketPipelineSchema.clip,
        min_split_bars: int = MarketPipelineSchema.min_split_bars,
        timeframes: Sequence[Mapping[str, Any]] | None = None,
        test_source: BarSource | Bars | None = None,
        cache_dir: str | None = MarketPipelineSchema.cache_dir,
        n_jobs: int = MarketPipelineSchema.n_jobs,
        bars_per_year: float | None = MarketPipelineSchema.bars_per_year,
        regime: RegimeConfig | Mapping[str, Any] | None = None,
    ) -> None:
        split = {} if split is None else {str(k): split[k] for k in split}
        unknown = sorted(set(split) - set(_SPLIT_KEYS))
        if unknown:
            raise ValueError(f"unknown split key {unknown[0]!r}; valid keys: {list(_SPLIT_KEYS)}")
        self.source, self.test_source = source, test_source
        self.features = tuple(str(f) for f in features)
        self.split = {"train": 0.7, "val": 0.15, "test": 0.15, "embargo": 0, **split}
        self.clip = float(clip)
        self.min_split_bars = int(min_split_bars)
        self.timeframes = tuple(TimeframeSpec.from_mapping(tf) for tf in timeframes or ())
        self.cache = FeatureCache(cache_dir) if cache_dir else None
        self.n_jobs = int(n_jobs)
        self.bars_per_year = None if bars_per_year is None else float(bars_per_year)
        self.regime = regime_config(regime)

    def __repr__(self) -> str:
        s = self.split
        cut = (
            f"dates<{s['train_end']}/<{s.get('val_end')}"
            if s.get("train_end")
            else f"{s['train']}/{s['val']}/{s['test']}"
        )
        tfs = "".join(f", {tf.rule} x{tf.window}" for tf in self.timeframes)
        test = f", test={self.test_source.__class__.__name__}" if self.test_source else ""
        return (
            f"MarketPipeline(source={self.source.__class__.__name__}{test}, "
            f"features={len(self.features)}, split={cut} embargo={s['embargo']}, "
            f"clip={self.clip}{tfs})"
        )

    def describe(self) -> str:
        """One line: what this pipeline will build."""
        return repr(self)

    # ------------------------------------------------------------------------ preparing
    def prepare(self, source: BarSource | Bars) -> PreparedBars:
        """Bars and raw features of ``source``, from the cache when it holds them."""
        if self.cache is None:
            return self._prepare(source)
        fingerprint = getattr(source, "fingerprint", None)
        bars = None
        if fingerprint is not None:
            what = fingerprint()
        else:
            bars = source if isinstance(source, Bars) else source.generate()
            what = bars_to_arrays(bars)
        key = content_key(
            "prepared-bars",
            what,
            list(self.features),
            [(tf.rule, list(tf.features), tf.window) for tf in self.timeframes],
            FEATURE_CODE_VERSION,
        )
        t0 = time.perf_counter()
        arrays, hit = self.cache.get_or_compute(
            key, lambda: self._prepare(source if bars is None else bars).to_arrays()
        )
        prepared = PreparedBars.from_arrays(arrays, self.timeframes)
        if hit:
            log.info(
                "features: cache hit %s (%.2fs)", self.cache.path(key), time.perf_counter() - t0
            )
            if prepared.report is not None and hasattr(source, "restore_report"):
                source.restore_report(prepared.report)
        return prepared

    def _prepare(self, source: BarSource | Bars) -> PreparedBars:
        bars = source if isinstance(source, Bars) else source.generate()
        raw, warmup = compute_features(bars, self.features, n_jobs=self.n_jobs)
        higher = HigherTimeframes(bars, self.timeframes)
        first = max(warmup, higher.first_row)  # + rows whose higher windows are incomplete
        require_finite(raw[first:], bars, self.features, first)
        report = getattr(source, "report", None)
        return PreparedBars(bars, raw, first, higher, None if report is None else report.to_dict())

    # ------------------------------------------------------------------------ building
    def build(self, fitted: Mapping[str, Any] | None = None) -> dict[str, MarketData]:
        """Prepare, split by time, normalise: {"train", "val", "test"} ``MarketData``.

        ``fitted``: a data contract saved with a checkpoint (``adan_data``: feature names and
        scalers); its scalers are applied instead of fitting new ones on train, so evaluation
        sees exactly the training transformation.
        """
        history = self.prepare(self.source)
        n = len(history.bars) - history.first_row
        kept_ts = history.bars.timestamps[history.first_row :]
        bounds = self._bounds(n, kept_ts)
        self._check_sizes(bounds, history)
        if fitted is not None:
            self._check_contract(fitted, history.bars)
        out = self._assemble(history, bounds, fitted)
        if self.test_source is not None:
            test = self.prepare(self.test_source)
            if tuple(test.bars.assets) != tuple(history.bars.assets):
                raise ValueError(
                    f"the test period's assets {test.bars.assets} differ from the history's "
                    f"{history.bars.assets}; name them with data.assets (and data.test_assets "
                    "if the test files differ), in the same order"
                )
            if test.bars.timestamps[0] <= history.bars.timestamps[-1]:
                raise ValueError(
                    f"the test period starts at {test.bars.timestamps[0]}, before the history "
                    f"ends ({history.bars.timestamps[-1]}): it would not be held out"
                )
            clock, test_clock = clock_of(history.bars), clock_of(test.bars)
            for key in ("bar_interval", "calendar"):
                if test_clock[key] != clock[key]:
                    raise ValueError(
                        f"the test period's {key} is {test_clock[key]!r}, the history's "
                        f"{clock[key]!r}: annualised results would not compare; resample the "
                        "files to one bar length, or set data.calendar for both"
                    )
            whole = {"test": (0, len(test.bars) - test.first_row)}
            self._check_sizes(whole, test)
            contract = fitted or _contract(out["train"].meta)
            out["test"] = self._assemble(test, whole, contract, clock)["test"]
        return attach_regimes(out, self.regime)

    def build_walk_forward(
        self,
        n_folds: int,
        val_bars: int,
        train_bars: int | None = None,
        test_bars: int = 0,
        expanding: bool = False,
    ) -> list[dict[str, MarketData]]:
        """Rolling (or expanding) folds over the history, each normalised on its own train
        split; see ``adan.data.splits.walk_forward_folds``."""
        history = self.prepare(self.source)
        n = len(history.bars) - history.first_row
        folds = walk_forward_folds(
            n, n_folds, train_bars, val_bars, test_bars, int(self.split["embargo"]), expanding
        )
        out = []
        for bounds in folds:
            self._check_sizes(bounds, history)
            out.append(attach_regimes(self._assemble(history, bounds, None), self.regime))
        return out

    def history_bounds(self, bars: Bars) -> dict[str, tuple[int, int]]:
        """The split ranges this pipeline cuts ``bars`` into, over rows kept after the warm-up
        (what ``build`` uses); the live loop keeps train and val of them fixed."""
        first = self._prepare(bars).first_row
        return self._bounds(len(bars) - first, bars.timestamps[first:])

    def build_live(
        self,
        bars: Bars,
        fitted: Mapping[str, Any],
        start: int,
        history: Mapping[str, tuple[int, int]] | None = None,
        prefix: Mapping[str, MarketData] | None = None,
    ) -> MarketData:
        """The bars traded live, ``bars[start:]``, as the model sees them, recomputed from the
        whole of ``bars`` (history and live bars) with the checkpoint's scalers (``fitted``).

        Every value is the one ``build`` gives the same bar of a split: features are causal
        and computed over the same history, normalised with the training scaler, and regimes
        come from one causal pass over ``history``'s train and val ranges (kept rows, as
        ``history_bounds`` returns them; the HMM is fitted on train) followed by the live
        bars. Nothing is cached: the last bar is new each time. ``start`` is a row of
        ``bars`` at or after the feature warm-up. ``prefix``: the train and val splits of
        another source to label regimes after (a separate test period, ``test_source``, whose
        regimes ``build`` labels after the history's splits), instead of ``history``.
        """
        prep = self._prepare(bars)
        first = prep.first_row
        if start < first:
            raise ValueError(
                f"the live bars start at row {start}, inside the features' warm-up of {first} "
                "bars: give the loop more history"
            )
        bounds = {
            name: rows
            for name, rows in (history or {}).items()
            if name in ("train", "val") and rows[1] <= start - first
        }
        bounds["live"] = (start - first, len(bars) - first)
        self._check_contract(fitted, bars)
        out = self._assemble(prep, bounds, fitted)
        if prefix:
            out = {**{k: v for k, v in prefix.items() if k in ("train", "val")}, **out}
        return attach_regimes(out, self.regime)["live"]

    def _bounds(self, n: int, timestamps: np.ndarray) -> dict[str, tuple[int, int]]:
        """Split ranges over the kept rows: by date when ``train_end`` is set, else fractions."""
        s, embargo = self.split, int(self.split["embargo"])
        held_out = self.test_source is not None
        if s.get("train_end") is not None:
            if not held_out:
                return split_by_date(
                    timestamps, s["train_end"], s.get("val_end"), s.get("test_end"), embargo
                )
            cut = np.searchsorted(timestamps, _utc(s["train_end"]))
            stop = (
                n if s.get("val_end") is None else np.searchsorted(timestamps, _utc(s["val_end"]))
            )
            return {"train": (0, int(cut)), "val": (int(cut) + embargo, int(stop))}
        if not held_out:
            return split_by_fraction(n, s["train"], s["val"], s["test"], embargo)
        share = s["train"] / (s["train"] + s["val"])
        n_train = int(share * (n - embargo))
        return {"train": (0, n_train), "val": (n_train + embargo, n)}

    def _check_sizes(self, bounds: Mapping[str, tuple[int, int]], prep: PreparedBars) -> None:
        for name, (start, stop) in bounds.items():
            if stop - start < self.min_split_bars:
                raise ValueError(
                    f"split {name!r} has {stop - start} bars, need at least {self.min_split_bars} "
                    f"({len(prep.bars)} bars, {prep.first_row} warm-up dropped, "
                    f"split {self.split})"
                )

    def _check_contract(self, fitted: Mapping[str, Any], bars: Bars) -> None:
        if list(fitted["feature_names"]) != list(self.features):
            raise ValueError(
                f"the checkpoint's features {list(fitted['feature_names'])} differ from the "
                f"configured data.features {list(self.features)}"
            )
        assets = fitted.get("assets")
        if assets is not None and list(assets) != list(bars.assets):
            raise ValueError(
                f"the checkpoint was trained on assets {list(assets)}, the data holds "
                f"{list(bars.assets)}"
            )
        version = fitted.get("features_version", FEATURE_CODE_VERSION)
        if version != FEATURE_CODE_VERSION:
            raise ValueError(
                f"the checkpoint's features were computed by feature code version {version}, "
                f"this code is version {FEATURE_CODE_VERSION}: the same names may mean other "
                "numbers; retrain, or evaluate with the code the checkpoint was trained with"
            )
        saved = {
            rule: (list(tf["feature_names"]), int(tf["window"]))
            for rule, tf in (fitted.get("timeframes") or {}).items()
        }
        configured = {tf.rule: (list(tf.features), tf.window) for tf in self.timeframes}
        if saved != configured:
            raise ValueError(
                f"the checkpoint's timeframes {saved} differ from the configured "
                f"data.timeframes {configured}"
            )

    def _assemble(
        self,
        prep: PreparedBars,
        bounds: Mapping[str, tuple[int, int]],
        fitted: Mapping[str, Any] | None,
        clock: Mapping[str, Any] | None = None,
    ) -> dict[str, MarketData]:
        """Normalise and cut ``prep`` into ``MarketData`` per named range of kept rows.

        Every split's meta carries the clock (``clock``, else ``prep``'s own): bar interval,
        calendar and bars per year belong to the data, not to a config."""
        bars, first = prep.bars, prep.first_row
        raw = prep.raw[first:]
        if fitted is not None:
            scaler = FeatureScaler.from_state_dict(fitted["scaler"])
        else:
            scaler = FeatureScaler(clip=self.clip).fit(raw[slice(*bounds["train"])])
        feats = scaler.transform(raw)
        meta: dict[str, Any] = {
            "scaler": scaler.state_dict(),
            "feature_names": list(self.features),
            "features_version": FEATURE_CODE_VERSION,
            **(clock or clock_of(bars)),
        }
        meta["bars_per_year"] = resolve_bars_per_year(self.bars_per_year, meta)
        timeframes: dict = {}
        if prep.higher:
            train_stop = first + bounds["train"][1] if "train" in bounds else first + 1
            timeframes, meta["timeframes"] = prep.higher.build(
                first, train_stop, self.clip, None if fitted is None else fitted.get("timeframes")
            )
        out = {}
        for name, (start, stop) in bounds.items():
            rows = slice(first + start, first + stop)  # rows of the original bars
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
                meta=dict(meta, split=name, bar_range=(rows.start, rows.stop), warmup=first),
                timeframes={k: tf.take(slice(start, stop)) for k, tf in timeframes.items()},
            )
        return out


def _contract(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The fitted part of a split's meta: what another period must be normalised with."""
    return {k: meta[k] for k in ("scaler", "feature_names", "timeframes") if k in meta}


def _utc(value: Any) -> np.datetime64:
    ts = pd.Timestamp(value)
    ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts
    return np.datetime64(ts.to_datetime64(), "ns")
