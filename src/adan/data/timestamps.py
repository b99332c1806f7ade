"""Timestamps of any common shape -> UTC nanoseconds since the epoch, row by row.

Handled:

- epoch seconds, milliseconds, microseconds and nanoseconds, the unit detected per row from
  the magnitude (real dumps mix them); values below 1e8 (before 1973) are not taken for
  epochs, except whole numbers YYYYMMDD, read as dates;
- ISO strings, and other formats inferred once for the whole column (never guessed per row,
  so 02/01 cannot mean February on one row and January on the next); day-first by config;
  when month-first fails on rows that parse day-first, the error says to set ``dayfirst``;
- strings with a zone offset (converted), naive strings (read in ``timezone``, default UTC);
- integer epochs stay integers (exact to the nanosecond).

Rows that cannot be parsed come back as ``NAT`` with their indices, for the cleaner to report.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from adan.data.report import DataError

NAT = np.iinfo(np.int64).min
# Epoch magnitude bounds that separate units for any date between 1973 and 2286.
_UNIT_BOUNDS = ((1e8, 1e11, "s", 10**9), (1e11, 1e14, "ms", 10**6), (1e14, 1e17, "us", 10**3))
_NS_BOUNDS = (1e17, 9.2e18)
_TIME_ONLY = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*$")


@dataclass
class ParsedTimestamps:
    """``ns``: int64 UTC ns per row (``NAT`` where unparseable); ``units``: row indices per
    epoch unit (numeric input) or per format (text); ``bad``: indices of unparseable rows."""

    ns: np.ndarray
    bad: np.ndarray
    units: dict[str, np.ndarray] = field(default_factory=dict)


def parse_timestamps(
    values: np.ndarray, dayfirst: bool = False, timezone: str = "UTC", fmt: str | None = None
) -> ParsedTimestamps:
    """Parse a column of timestamps (numbers or strings) to UTC nanoseconds."""
    values = np.asarray(values)
    if values.dtype.kind in "fiu":
        return _parse_numbers(values)
    s = pd.Series(values, dtype=object)
    numeric = pd.to_numeric(s, errors="coerce").to_numpy(float)
    present = s.notna().to_numpy()
    # epochs stored as text; a minority of other values are bad rows, not a reason to guess
    if present.any() and np.isfinite(numeric[present]).mean() > 0.5:
        return _parse_numbers(numeric)
    return _parse_strings(s, dayfirst, timezone, fmt)


def _parse_numbers(x: np.ndarray) -> ParsedTimestamps:
    exact = x if x.dtype.kind in "iu" else None
    xf = x.astype(np.float64)
    finite = np.isfinite(xf)
    whole = finite & (np.round(xf) == xf)
    if whole.any() and ((xf[whole] >= 1e7) & (xf[whole] < 1e8)).all() and whole.mean() > 0.5:
        return _parse_yyyymmdd(xf, whole)
    ns = np.full(len(x), NAT, dtype=np.int64)
    units: dict[str, np.ndarray] = {}
    for low, high, unit, factor in (*_UNIT_BOUNDS, (*_NS_BOUNDS, "ns", 1)):
        rows = np.flatnonzero(finite & (xf >= low) & (xf < high))
        if len(rows):
            units[unit] = rows
            whole_units = exact[rows] if exact is not None else np.round(xf[rows]).astype(np.int64)
            ns[rows] = whole_units.astype(np.int64) * factor
    return ParsedTimestamps(ns=ns, bad=np.flatnonzero(ns == NAT), units=units)


def _parse_yyyymmdd(x: np.ndarray, whole: np.ndarray) -> ParsedTimestamps:
    text = pd.Series(np.where(whole, x, 0).astype(np.int64).astype(str))
    parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    return _result(parsed.where(whole), {"yyyymmdd": np.flatnonzero(parsed.notna() & whole)})


def _parse_strings(
    s: pd.Series, dayfirst: bool, timezone: str, fmt: str | None
) -> ParsedTimestamps:
    s = s.where(~s.astype(str).str.match(_TIME_ONLY.pattern), None)  # a time without a date
    present = s.notna()
    if fmt is not None:
        parsed = _to_utc(s, fmt, dayfirst, timezone)
        return _result(parsed, {fmt: np.flatnonzero(parsed.notna())})
    parsed = _to_utc(s, "ISO8601", dayfirst, timezone)  # year first: dayfirst is moot
    units = {"iso8601": np.flatnonzero(parsed.notna())}
    rest = (parsed.isna() & present).to_numpy()
    if rest.any():  # one inferred format for all the other rows, never a guess per row
        first = str(s[rest].iloc[0])
        guessed = guess_datetime_format(first, dayfirst=dayfirst)
        if guessed is not None:
            again = _to_utc(s[rest], guessed, dayfirst, timezone)
            parsed[rest] = again
            units[guessed] = np.flatnonzero(rest)[again.notna().to_numpy()]
            failed = again.isna().to_numpy()
            if failed.any() and not dayfirst:
                _refuse_day_first(s[rest][failed], guessed, timezone)
    return _result(parsed, units)


def _refuse_day_first(failed: pd.Series, guessed: str, timezone: str) -> None:
    """Rows a month-first format could not read but a day-first one can: say so, do not guess."""
    other = guess_datetime_format(str(failed.iloc[0]), dayfirst=True)
    if other is None or other == guessed:
        return
    if _to_utc(failed, other, True, timezone).notna().all():
        raise DataError(
            f"timestamps look day-first: {failed.iloc[0]!r} does not fit {guessed!r} but fits "
            f"{other!r}; set data.cleaning.dayfirst=true (or data.cleaning.timestamp_format)"
        )


def _result(parsed: pd.Series, units: dict[str, np.ndarray]) -> ParsedTimestamps:
    ns = np.full(len(parsed), NAT, dtype=np.int64)
    ok = parsed.notna().to_numpy()
    ns[ok] = parsed[ok].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return ParsedTimestamps(
        ns=ns, bad=np.flatnonzero(~ok), units={k: v for k, v in units.items() if len(v)}
    )


def _to_utc(s: pd.Series, fmt: str | None, dayfirst: bool, timezone: str) -> pd.Series:
    """Parse, read naive times in ``timezone``, convert to naive UTC; NaT where it fails."""
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
