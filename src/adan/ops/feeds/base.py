"""What every bar feed yields and promises.

A feed hands the live loop *closed* bars only, oldest first, one ``FeedBar`` per bar time with
a value per asset (in ``Feed.assets`` order). It may hand over what real feeds do: a bar
twice, a late bar, bars out of order, a gap, a malformed value. The live loop's ``BarGate``
(``adan.ops.bar_gate``) deals with those as the cleaner would and logs each, so a feed only
converts what it receives; it never repairs or drops bars itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from adan.data.bars import Bars

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class FeedBar:
    """One closed bar of every asset: ``timestamp`` is the bar's open time (naive UTC
    datetime64[ns], the convention of ``Bars``), each field a float64 array [A]."""

    timestamp: np.datetime64
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def of(cls, timestamp, **fields) -> FeedBar:
        """A bar from scalars or sequences (one value per asset)."""
        ts = np.datetime64(np.datetime64(timestamp, "ns"), "ns")
        values = {k: np.atleast_1d(np.asarray(fields[k], dtype=np.float64)) for k in FIELDS}
        return cls(ts, **values)

    def as_dict(self) -> dict:
        """Plain values for logs and state: ``{"time": iso, "open": [...], ...}``."""
        out: dict = {"time": str(np.datetime_as_string(self.timestamp, unit="s"))}
        out.update({k: getattr(self, k).tolist() for k in FIELDS})
        return out


@runtime_checkable
class Feed(Protocol):
    """A source of closed bars for the live loop."""

    assets: tuple[str, ...]

    def history(self, before: np.datetime64 | None, bars: int) -> Bars | None:
        """Up to ``bars`` closed bars before ``before`` (None: before now) to warm features
        up, or None when the feed has none to give (the checkpoint's own data is used)."""
        ...

    def poll(self) -> list[FeedBar]:
        """The closed bars that arrived since the last call, in arrival order (may be empty).
        Raises ``adan.errors.FeedError`` (retryable) when the source cannot be reached."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
