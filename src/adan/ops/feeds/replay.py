"""Replay recorded bars as a live feed: a file through the project's loader and cleaner, or a
split of the checkpoint's own data, as fast as the loop can take them or paced in time."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from adan.data.bars import Bars
from adan.ops.feeds.base import FIELDS, FeedBar


class ReplayFeed:
    """``bars`` delivered one closed bar per ``poll``, oldest first.

    ``speed``: 0 delivers as fast as they are asked for; ``s`` > 0 paces them at ``s`` bars per
    bar interval of wall time (1 = real time, 60 = an hour of hourly bars per minute).
    ``history``: the bars before them, when they continue a known history (the checkpoint's
    own data); None when the first bars must warm the features up themselves.
    """

    def __init__(
        self,
        bars: Bars,
        speed: float = 0.0,
        history: Bars | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError(f"feed.speed must be >= 0 (0: as fast as possible), got {speed}")
        self.bars = bars
        self.assets = tuple(bars.assets)
        self.speed = float(speed)
        self._history = history
        self._clock = clock
        self._next = 0
        self._due = None if speed == 0 else clock()
        step = np.diff(bars.timestamps[:2]).astype("timedelta64[ns]").astype(np.int64)
        self.bar_ns = bars.bar_ns or (int(step[0]) if len(step) else 3_600_000_000_000)

    @property
    def first_time(self) -> np.datetime64 | None:
        return self.bars.timestamps[0] if len(self.bars) else None

    @property
    def exhausted(self) -> bool:
        """True once every bar was delivered (a live feed never is)."""
        return self._next >= len(self.bars)

    def seek(self, after: np.datetime64) -> None:
        """Continue after the bar at ``after`` (a restart: bars already traded are skipped)."""
        self._next = int(np.searchsorted(self.bars.timestamps, np.datetime64(after, "ns"), "right"))

    def history(self, before: np.datetime64 | None, bars: int) -> Bars | None:
        return self._history

    def poll(self) -> list[FeedBar]:
        if self.exhausted:
            return []
        if self._due is not None:
            now = self._clock()
            if now < self._due:
                return []
            self._due = max(self._due, now - 1.0) + self.bar_ns / 1e9 / self.speed
        i = self._next
        self._next += 1
        b = self.bars
        return [
            FeedBar(b.timestamps[i], *(np.asarray(getattr(b, k)[i], np.float64) for k in FIELDS))
        ]

    def close(self) -> None:
        self._next = len(self.bars)
