"""What a live bar must pass before it is traded, with the cleaner's rules (``adan.data.cleaning``).

Feeds deliver what real feeds do; each case is decided here, logged by the loop and counted:

- *duplicate* (the same bar time again) and *late / out of order* (a time at or before the last
  bar traded): dropped; a bar once traded is never replaced, so nothing is processed twice.
- *malformed* (NaN, infinite or non-positive price, negative volume; the cleaner's rules 4-5):
  dropped; its slot becomes a gap.
- *inconsistent OHLC* (high below open/close/low, or low above them; rule 11): high and low
  reset to the max and min of the four prices, the bar kept.
- *off the bar clock* (a time between two bar times): dropped.
- *gap* (bars missing before this one; rule 12 and alignment): each missing bar filled flat at
  the last close with zero volume and flagged ``filled``, as alignment fills history, up to
  ``max_fill_bars``. A longer gap raises ``LiveDataError``: the cleaner would split the
  history there, and a live agent cannot start over; the loop flattens the account (kill
  switch, until ``command=resume``) and then fills the gap, or stops, as
  ``resilience.escalation`` says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adan.errors import LiveDataError
from adan.ops.feeds.base import FeedBar


@dataclass(frozen=True)
class GateDecision:
    """What became of one delivered bar: ``admitted`` bars to trade in order (gap fills first,
    each with its ``filled`` flag), or ``rejected`` with the reason and a detail."""

    admitted: tuple[tuple[FeedBar, bool], ...] = ()
    rejected: str | None = None  # duplicate | late | malformed | off_clock
    detail: str = ""
    repaired: str | None = None  # ohlc_inconsistent when high/low were reset


class BarGate:
    """Checks each delivered bar against the last one traded (``last``: its time and close)."""

    def __init__(
        self,
        bar_ns: int,
        num_assets: int,
        max_fill_bars: int = 3,
        last_time: np.datetime64 | None = None,
        last_close: np.ndarray | None = None,
    ) -> None:
        if bar_ns <= 0:
            raise ValueError(f"bar length must be > 0 ns, got {bar_ns}")
        self.bar = np.timedelta64(int(bar_ns), "ns")
        self.num_assets = int(num_assets)
        self.max_fill_bars = int(max_fill_bars)
        self.last_time = None if last_time is None else np.datetime64(last_time, "ns")
        self.last_close = None if last_close is None else np.asarray(last_close, np.float64)
        self._seen: set[int] = set()  # times delivered once already (duplicates are not late)

    def check(self, bar: FeedBar, fill_any_gap: bool = False) -> GateDecision:
        """Decide on ``bar`` and, when it is admitted, advance the last bar traded.
        ``fill_any_gap``: fill a gap of any length (after the loop flattened the account)."""
        ts = np.datetime64(bar.timestamp, "ns")
        stamp = f"bar {np.datetime_as_string(ts, unit='s')}"
        key = int(ts.astype(np.int64))
        if self.last_time is not None and ts <= self.last_time:
            why = "duplicate" if key in self._seen or ts == self.last_time else "late"
            return GateDecision(rejected=why, detail=f"{stamp} is not after the last bar traded "
                                f"({np.datetime_as_string(self.last_time, unit='s')})")  # fmt: skip
        self._seen.add(key)
        prices = np.stack([bar.open, bar.high, bar.low, bar.close])
        if prices.shape[1] != self.num_assets or bar.volume.shape != (self.num_assets,):
            return GateDecision(rejected="malformed", detail=f"{stamp} has {prices.shape[1]} "
                                f"values per field, expected {self.num_assets}")  # fmt: skip
        if not (np.isfinite(prices).all() and np.isfinite(bar.volume).all()):
            return GateDecision(rejected="malformed", detail=f"{stamp} has a missing or "
                                "non-finite price or volume")  # fmt: skip
        if (prices <= 0).any() or (bar.volume < 0).any():
            return GateDecision(rejected="malformed", detail=f"{stamp} has a non-positive price "
                                "or a negative volume")  # fmt: skip
        if self.last_time is not None and (ts - self.last_time) % self.bar:
            return GateDecision(rejected="off_clock", detail=f"{stamp} is not a whole number of "
                                f"bars ({self.bar}) after the last bar")  # fmt: skip
        repaired = None
        high, low = prices.max(axis=0), prices.min(axis=0)
        if (high != bar.high).any() or (low != bar.low).any():
            repaired = "ohlc_inconsistent"
            bar = FeedBar(ts, bar.open, high, low, bar.close, bar.volume)
        fills: list[tuple[FeedBar, bool]] = []
        if self.last_time is not None:
            missing = int((ts - self.last_time) // self.bar) - 1
            if missing > self.max_fill_bars and not fill_any_gap:
                raise LiveDataError(
                    f"{stamp} comes {missing} bars after the last bar traded "
                    f"({np.datetime_as_string(self.last_time, unit='s')}), more than "
                    f"max_fill_bars={self.max_fill_bars}: the feed lost data. Restart once it "
                    "is back (the gap is filled up to feed.max_fill_bars), or raise that limit"
                )
            c = self.last_close
            zero = np.zeros(self.num_assets)
            for k in range(1, missing + 1):
                fills.append((FeedBar(self.last_time + k * self.bar, c, c, c, c, zero), True))
        fills.append((bar, False))
        self.last_time, self.last_close = ts, bar.close.copy()
        return GateDecision(admitted=tuple(fills), repaired=repaired)
