"""The market a live agent sees: its warm-up history plus every bar the feed has delivered, as
the same ``MarketData`` a backtest of those bars would use.

Each new bar recomputes the features over the whole history with the checkpoint's pipeline and
scalers (``MarketPipeline.build_live``): the features are causal, so every earlier row keeps
its value and the newest row is exactly what ``eval.py`` would have seen at that bar. That
costs about 6 ms per bar on 3,000 bars of two assets and 30 ms on 20,000 (2-core machine),
well inside an hourly bar; nothing approximates it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from adan.data.bars import Bars, MarketData
from adan.data.pipeline import MarketPipeline
from adan.ops.feeds.base import FIELDS, FeedBar

SPARE_BARS = 2  # rows the simulator wants past the last bar it steps to (never read)


def take_bars(bars: Bars, stop: int, start: int = 0) -> Bars:
    """Rows ``start`` .. ``stop`` of ``bars``; a slice that does not start at the first row
    drops the true regimes (what a feed replays has none)."""
    s = slice(start, stop)
    regimes = None if bars.regimes is None or start else bars.regimes[s]
    return replace(
        bars,
        timestamps=bars.timestamps[s],
        regimes=regimes,
        filled=None if bars.filled is None else bars.filled[s],
        **{k: getattr(bars, k)[s] for k in FIELDS},
    )


def bars_state(bars: Bars) -> dict[str, Any]:
    """``bars`` as plain arrays and values (to persist the warm-up history)."""
    return {
        "timestamps": bars.timestamps.astype("datetime64[ns]").view(np.int64),
        "assets": list(bars.assets),
        "calendar": bars.calendar,
        "bar_ns": bars.bar_ns,
        "bars_per_session": bars.bars_per_session,
        "filled": None if bars.filled is None else bars.filled,
        **{k: getattr(bars, k) for k in FIELDS},
    }


def bars_from_state(state: dict[str, Any]) -> Bars:
    """The inverse of ``bars_state``."""
    filled = state.get("filled")
    return Bars(
        timestamps=np.asarray(state["timestamps"], dtype=np.int64).view("datetime64[ns]"),
        assets=tuple(state["assets"]),
        filled=None if filled is None else np.asarray(filled, dtype=bool),
        calendar=state["calendar"],
        bar_ns=state["bar_ns"],
        bars_per_session=state["bars_per_session"],
        **{k: np.asarray(state[k], dtype=np.float64) for k in FIELDS},
    )


def with_spare_rows(data: MarketData, rows: int = SPARE_BARS) -> MarketData:
    """``data`` with its last bar repeated ``rows`` times, one bar length apart.

    The simulator insists on a spare bar past the last one it can step to (for random
    episode starts); the live loop only ever steps to the newest real bar, so the copies are
    never read and change nothing before them (every array is causal)."""
    n = len(data)
    idx = np.r_[np.arange(n), np.full(rows, n - 1)]
    step = data.timestamps[-1] - data.timestamps[-2] if n > 1 else np.timedelta64(1, "h")
    stamps = np.r_[data.timestamps, data.timestamps[-1] + step * np.arange(1, rows + 1)]

    def rep(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.ascontiguousarray(a[idx])

    return replace(
        data,
        timestamps=stamps,
        features=rep(data.features),
        regimes=rep(data.regimes),
        detected_regimes=rep(data.detected_regimes),
        timeframes={r: replace(tf, index=tf.index[idx]) for r, tf in data.timeframes.items()},
        **{k: rep(getattr(data, k)) for k in FIELDS},
    )


class LiveMarket:
    """History bars (``history``: what the agent's features warm up on) followed by live bars.

    ``start`` is the first row that is traded: the first live bar, or later when the history
    is shorter than the features' warm-up. ``splits``: the checkpoint data's train and val
    ranges within ``history`` (kept rows, see ``MarketPipeline.history_bounds``) when the
    history is the checkpoint's own data, for regimes labelled as in evaluation; None
    otherwise. ``prefix``: the checkpoint's train and val ``MarketData`` when the live bars
    replay its separate test period (``data.test_path``), labelled after them as there.
    """

    def __init__(
        self,
        pipeline: MarketPipeline,
        fitted: dict[str, Any],
        history: Bars,
        splits: dict[str, tuple[int, int]] | None = None,
        prefix: dict[str, MarketData] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.fitted = fitted
        self.splits = splits
        self.prefix = prefix
        self.assets = tuple(history.assets)
        self.history_bars = len(history)
        self._stamps = [history.timestamps.astype("datetime64[ns]")]
        self._values = {k: [np.asarray(getattr(history, k), dtype=np.float64)] for k in FIELDS}
        filled = history.filled
        self._filled = [np.zeros((len(history), len(self.assets)), bool) if filled is None
                        else filled]  # fmt: skip
        self._template = history
        self._bars: Bars | None = history
        warmup = pipeline._prepare(history).first_row if len(history) else 0
        self.start = max(len(history), warmup)

    def __len__(self) -> int:
        return sum(len(s) for s in self._stamps)

    @property
    def last_time(self) -> np.datetime64 | None:
        """The newest bar's open time (None before any bar)."""
        n = len(self)
        return None if n == 0 else self.bars().timestamps[n - 1]

    def append(self, bar: FeedBar, filled: bool = False) -> None:
        """Add one closed bar (``filled``: a gap filled flat at the last close)."""
        self._stamps.append(np.array([bar.timestamp], dtype="datetime64[ns]"))
        for k in FIELDS:
            self._values[k].append(getattr(bar, k)[None, :].astype(np.float64))
        self._filled.append(np.full((1, len(self.assets)), bool(filled)))
        self._bars = None

    def drop_last(self) -> None:
        """Forget the newest live bar (its bar failed before it was committed)."""
        if len(self) <= self.history_bars:
            raise ValueError("no live bar to drop")
        bars = self.bars()
        self._stamps = [bars.timestamps[:-1]]
        self._filled = [bars.filled[:-1]]
        self._values = {k: [v[0][:-1]] for k, v in self._values.items()}
        self._bars = None

    def bars(self) -> Bars:
        """Every bar so far, history first."""
        if self._bars is None:
            for parts in (self._stamps, self._filled, *self._values.values()):
                if len(parts) > 1:
                    parts[:] = [np.concatenate(parts)]
            self._bars = replace(
                self._template,
                timestamps=self._stamps[0],
                regimes=None,
                filled=self._filled[0],
                **{k: v[0] for k, v in self._values.items()},
            )
        return self._bars

    def traded_bars(self) -> int:
        """How many bars of the traded segment exist (0 while the history warms up)."""
        return max(0, len(self) - self.start)

    def data(self) -> MarketData:
        """The traded segment, bars ``start`` .. now, as the model sees it."""
        return self.pipeline.build_live(
            self.bars(), self.fitted, self.start, self.splits, self.prefix
        )
