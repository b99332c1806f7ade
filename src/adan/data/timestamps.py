"""Timestamps of any common shape -> UTC nanoseconds since the epoch, row by row.

Handled: epoch seconds, milliseconds, microseconds and nanoseconds (the unit is detected per
row from the magnitude, because real dumps mix them), ISO strings, day-first strings by config,
strings with a zone offset (converted), naive strings (read in ``timezone``, default UTC).
Rows that cannot be parsed come back as ``NAT`` with their indices, for the cleaner to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NAT = np.iinfo(np.int64).min
# Epoch magnitude bounds that separate units for any date between 1973 and 2286.
_UNIT_BOUNDS = ((1e11, "s", 10**9), (1e14, "ms", 10**6), (1e17, "us", 10**3), (np.inf, "ns", 1))


@dataclass
class ParsedTimestamps:
    """``ns``: int64 UTC ns per row (``NAT`` where unparseable); ``units``: rows per epoch unit
    (numeric input) or per parsing pass (text); ``bad``: indices of unparseable rows."""

    ns: np.ndarray
    bad: np.ndarray
    units: dict[str, np.ndarray] = field(default_factory=dict)  # unit -> row indices


def parse_timestamps(
    values: np.ndarray, dayfirst: bool = False, timezone: str = "UTC", fmt: str | None = None
) -> ParsedTimestamps:
    """Parse a column of timestamps (numbers or strings) to UTC nanoseconds."""
    values = np.asarray(values)
    if values.dtype.kind in "fiu":
        return _parse_epochs(values.astype(np.float64))
    numeric = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    present = pd.notna(pd.Series(values, dtype=object)).to_numpy()
    if present.any() and np.isfinite(numeric[present]).all():  # epochs stored as text
        return _parse_epochs(numeric)
    return _parse_strings(values, dayfirst, timezone, fmt)


def _parse_epochs(x: np.ndarray) -> ParsedTimestamps:
    ns = np.full(len(x), NAT, dtype=np.int64)
    ok = np.isfinite(x) & (x > 0)
    units: dict[str, np.ndarray] = {}
    lower = 0.0
    for upper, unit, factor in _UNIT_BOUNDS:
        rows = np.flatnonzero(ok & (x >= lower) & (x < upper))
        lower = upper
        if len(rows):
            units[unit] = rows
            # integers up to 2**53 are exact in float64; round to the unit, then scale
            ns[rows] = np.round(x[rows]).astype(np.int64) * factor
    return ParsedTimestamps(ns=ns, bad=np.flatnonzero(~ok), units=units)


def _parse_strings(
    values: np.ndarray, dayfirst: bool, timezone: str, fmt: str | None
) -> ParsedTimestamps:
    s = pd.Series(values, dtype=object)
    units: dict[str, np.ndarray] = {}
    first_fmt = fmt or ("ISO8601" if not dayfirst else None)
    parsed = _to_utc(s, first_fmt, dayfirst, timezone)
    units[fmt or "iso8601"] = np.flatnonzero(parsed.notna().to_numpy())
    missing = parsed.isna().to_numpy() & s.notna().to_numpy()
    if missing.any() and fmt is None:  # a second, slower pass per element for the odd rows
        again = _to_utc(s[missing], "mixed", dayfirst, timezone)
        parsed[missing] = again
        units["mixed"] = np.flatnonzero(missing)[again.notna().to_numpy()]
    ns = np.full(len(s), NAT, dtype=np.int64)
    ok = parsed.notna().to_numpy()
    ns[ok] = parsed[ok].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return ParsedTimestamps(
        ns=ns, bad=np.flatnonzero(~ok), units={k: v for k, v in units.items() if len(v)}
    )


def _to_utc(s: pd.Series, fmt: str | None, dayfirst: bool, timezone: str) -> pd.Series:
    """Parse, read naive times in ``timezone``, convert to naive UTC; NaT where it fails."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            naive = pd.to_datetime(s, format=fmt, dayfirst=dayfirst, errors="coerce")
        except (ValueError, TypeError):  # mixed offsets: parse each value to UTC
            naive = None
        if naive is None or naive.dtype == object or getattr(naive.dt, "tz", None) is not None:
            aware = pd.to_datetime(s, format=fmt, dayfirst=dayfirst, errors="coerce", utc=True)
            return aware.dt.tz_localize(None).astype("datetime64[ns]")
    if timezone.upper() != "UTC":
        naive = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        naive = naive.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.astype("datetime64[ns]")
