"""Market calendars: when a market is closed, so that a closed market is not a data gap, and
how many bars a year holds, so that annualised figures follow the data's own clock.

- ``24x7`` never closes (crypto): every missing bar is a gap.
- ``fx`` closes at weekends (Friday ~21-22:00 to Sunday ~21-22:00 UTC) and trades around the
  clock on weekdays.
- ``equity`` trades in a daily session on weekdays: closed overnight, at weekends and on
  holidays.

Closures are judged from the data rather than from an exchange timetable (which would need
each exchange's hours, holidays and daylight-saving rules). A slot of the bar clock is
*closed* when the market (almost) never has a bar there: for ``fx``, the weekend slots from
Friday noon to Monday noon that hold a bar in under 10 % of the weeks, plus Friday 22:00 to
Sunday 21:00 UTC always; for ``equity``, the times of day that hold a bar on under 10 % of
the trading days (nights), plus Saturday and Sunday to 18:00 UTC. A run of missing bars
between two bars is a *closure* when it covers a closed slot and misses at most
``allowance`` bars of open slots (a holiday next to a weekend, a daylight-saving hour); on
daily equity bars, one or two missing weekdays are holidays too. Any other run is a gap, and
only its open slots count as missing bars. Holidays in the middle of an FX week are gaps.

``data.calendar: auto`` infers the calendar per asset (``fit_calendar``): bars on most
weekends -> ``24x7``; weekends closed over at least 3 weeks -> ``fx`` when a weekday is
traded around the clock, ``equity`` when only in a session; daily bars closed at weekends ->
``equity`` when at least 2 % of the weekdays are missing (exchange holidays), else ``fx``.
Anything unclear (fewer than 3 weekends, bars on some weekends only) -> ``24x7``, and the
reason says so.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from adan.data.report import DataError
from adan.errors import ConfigError

CALENDARS: tuple[str, ...] = ("24x7", "fx", "equity")
SETTINGS: tuple[str, ...] = ("auto", *CALENDARS)
_OPENNESS = {"24x7": 2, "fx": 1, "equity": 0}  # a clock shared by assets follows the most open

SECOND, MINUTE, HOUR = 10**9, 60 * 10**9, 3600 * 10**9
DAY = 24 * HOUR
WEEK = 7 * DAY
_MONDAY = 4 * DAY  # 1970-01-05 00:00 UTC, a Monday: slots of the week count from there
DAYS_PER_YEAR = {"24x7": 365, "fx": 260, "equity": 252}
EQUITY_SESSION = int(6.5 * HOUR)  # NYSE regular hours, when the data does not say
_RARE = 0.1  # a slot with a bar in under 10 % of its weeks (days) is closed
_MIN_WEEKENDS = 3
_HOLIDAY_RATE = 0.02  # daily bars: weekdays missing this often are exchange holidays


def check_setting(setting: str) -> str:
    """``data.calendar`` validated: auto, 24x7, fx or equity (a ``DataError`` names the key)."""
    value = str(setting).strip().lower()
    if value not in SETTINGS:
        raise DataError(f"data.calendar must be one of {list(SETTINGS)}, got {setting!r}")
    return value


def _seconds(bar: str | float | pd.Timedelta | _dt.timedelta) -> float:
    if isinstance(bar, str):
        try:
            return pd.Timedelta(bar).total_seconds()
        except ValueError as err:
            raise ValueError(f"bar {bar!r} is not a duration such as 1h, 15min or 1d") from err
    if isinstance(bar, pd.Timedelta | _dt.timedelta):
        return bar.total_seconds()
    return float(bar)


def bars_per_year(
    bar: str | float | pd.Timedelta | _dt.timedelta,
    calendar: str = "24x7",
    bars_per_session: float | None = None,
) -> float:
    """Bars in a year of ``bar``-long bars (a duration string such as ``"1h"``, a timedelta,
    or seconds) on ``calendar``.

    - ``24x7``: 365 days x bars per day (hourly: 8760);
    - ``fx``: 260 days (52 weeks of 5) x bars per day (hourly: 6240);
    - ``equity``: 252 sessions x ``bars_per_session`` (the data's median bars per trading
      day; when None, the bars a 6.5-hour NYSE session makes, rounded up: hourly 7, 15min
      26); daily bars: 252.

    Bars longer than a day span closed days as well, so they count 365 days on any calendar.
    """
    seconds = _seconds(bar)
    if not seconds > 0:
        raise ValueError(f"bar length must be positive, got {bar!r}")
    if calendar not in CALENDARS:
        raise ValueError(f"calendar must be one of {list(CALENDARS)}, got {calendar!r}")
    per_day = 86400.0 / seconds
    if seconds > 86400 or calendar == "24x7":
        return DAYS_PER_YEAR["24x7"] * per_day
    if calendar == "fx":
        return DAYS_PER_YEAR["fx"] * per_day
    if seconds == 86400:
        return float(DAYS_PER_YEAR["equity"])
    if bars_per_session is None:
        bars_per_session = math.ceil(EQUITY_SESSION / 1e9 / seconds - 1e-9)
    if not bars_per_session > 0:
        raise ValueError(f"bars_per_session must be positive, got {bars_per_session!r}")
    return DAYS_PER_YEAR["equity"] * float(bars_per_session)


def interval_string(bar_ns: int) -> str:
    """Bar length in ns -> a pandas-style alias: ``"1h"``, ``"15min"``, ``"1d"``, ``"36h"``."""
    bar_ns = int(bar_ns)
    for unit, size in (("d", DAY), ("h", HOUR), ("min", MINUTE), ("s", SECOND)):
        if bar_ns % size == 0:
            return f"{bar_ns // size}{unit}"
    for unit, size in (("ms", 10**6), ("us", 10**3)):
        if bar_ns % size == 0:
            return f"{bar_ns // size}{unit}"
    return f"{bar_ns}ns"


def most_open(names: list[str]) -> str:
    """The calendar a clock shared by assets on ``names`` follows: the most open one."""
    return max(names, key=_OPENNESS.__getitem__) if names else "24x7"


@dataclass(frozen=True)
class Calendar:
    """One asset's calendar on its bar clock: which slots of the week are closed, and how
    missing bars are judged (see the module docstring).

    ``closed``: bool per slot of the week (``WEEK // bar_ns`` slots from Monday 00:00 UTC),
    or None (never closed). ``allowance``: open-slot bars a closure may miss.
    ``holiday_bars``: daily bars, missing weekdays that are holidays without a closed slot.
    """

    name: str
    bar_ns: int
    reason: str
    setting: str = "auto"
    closed: np.ndarray | None = field(default=None, repr=False)
    allowance: int = 0
    holiday_bars: int = 0
    bars_per_session: float | None = None

    def slot(self, t: np.ndarray) -> np.ndarray:
        """Slot of the week of each timestamp (ns)."""
        return ((np.asarray(t, dtype=np.int64) - _MONDAY) % WEEK) // self.bar_ns

    def _closed_count(self, first: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Closed slots among ``n`` consecutive slots of the week from slot ``first``."""
        assert self.closed is not None
        p = len(self.closed)
        cum = np.concatenate([[0], np.cumsum(self.closed, dtype=np.int64)])
        full, rest = np.divmod(n, p)
        stop = first + rest
        part = np.where(
            stop <= p, cum[np.minimum(stop, p)] - cum[first], cum[p] - cum[first] + cum[stop - p]
        )
        return full * cum[p] + part

    def judge(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each bar, whether the run of missing bars after it is a closure, and how many
        missing bars of open market it counts as (0 after a closure or no run)."""
        ts = np.asarray(ts, dtype=np.int64)
        closure = np.zeros(len(ts), dtype=bool)
        missing = np.zeros(len(ts), dtype=np.int64)
        if len(ts) < 2:
            return closure, missing
        runs = np.flatnonzero(np.diff(ts) > self.bar_ns)
        n = (ts[runs + 1] - ts[runs]) // self.bar_ns - 1
        if self.closed is None:
            missing[runs] = n
            return closure, missing
        shut = self._closed_count((self.slot(ts[runs]) + 1) % len(self.closed), n)
        open_bars = n - shut
        is_closure = (shut > 0) & (open_bars <= self.allowance)
        is_closure |= (shut == 0) & (n <= self.holiday_bars)
        closure[runs] = is_closure
        missing[runs] = np.where(is_closure, 0, open_bars)
        return closure, missing

    def closed_slots(self, t: np.ndarray, ts: np.ndarray, closure: np.ndarray) -> np.ndarray:
        """Whether each missing slot ``t`` (ns, on the clock, within ``ts``'s span) is closed
        for this asset: a closed slot of the week, or inside a run judged a closure."""
        t = np.asarray(t, dtype=np.int64)
        out = np.zeros(len(t), dtype=bool)
        if self.closed is None or not len(t):
            return out
        out |= self.closed[self.slot(t)]
        before = np.searchsorted(ts, t, side="right") - 1
        inside = (before >= 0) & (before < len(ts) - 1)
        out[inside] |= closure[before[inside]]
        return out


def _weekly_profile(ts: np.ndarray, bar_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(bars present, slots on the clock) per slot of the week over ``ts``'s span."""
    p = WEEK // bar_ns
    slots = ((ts - _MONDAY) % WEEK) // bar_ns
    present = np.bincount(slots, minlength=p)
    n_grid = int((ts[-1] - ts[0]) // bar_ns) + 1
    full, rest = divmod(n_grid, p)
    occurs = np.full(p, full, dtype=np.int64)
    occurs[(slots[0] + np.arange(rest)) % p] += 1
    return present, occurs


def _time_of_week(p: int, bar_ns: int, ts0: int) -> np.ndarray:
    """Start of each slot of the week, in ns from Monday 00:00 UTC (with the clock's phase)."""
    phase = (ts0 - _MONDAY) % bar_ns
    return phase + bar_ns * np.arange(p, dtype=np.int64)


def _within(tow: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Slots whose start lies in [start, stop) hours of the week (Monday 00:00 = 0)."""
    return (tow >= start * HOUR) & (tow < stop * HOUR)


def _trading_days(ts: np.ndarray) -> np.ndarray:
    """The UTC days (as day numbers) that hold a bar, Monday to Friday only."""
    days = np.unique(ts // DAY)
    weekday = (days - _MONDAY // DAY) % 7
    return days[weekday < 5]


def _daily_presence(ts: np.ndarray, bar_ns: int) -> np.ndarray:
    """Per slot of the day: the share of trading days (Mon-Fri with a bar) holding a bar."""
    q = DAY // bar_ns
    days = _trading_days(ts)
    on_days = np.isin(ts // DAY, days)
    counts = np.bincount(((ts[on_days] % DAY) // bar_ns).astype(np.int64), minlength=q)
    return counts / max(len(days), 1)


def session_bars(ts: np.ndarray, bar_ns: int) -> float:
    """Median bars per trading day; the day is cut in the middle of the longest stretch of
    the day that never holds a bar (so a session crossing midnight UTC stays one day)."""
    ts = np.asarray(ts, dtype=np.int64)
    if bar_ns >= DAY or len(ts) == 0:
        return 1.0
    presence = _daily_presence(ts, bar_ns)
    empty = presence < _RARE
    shift = 0
    if empty.any() and not empty.all():
        q = len(empty)
        run, best, best_end = 0, 0, 0
        for i in range(2 * q):  # circular: the night may wrap around midnight
            run = run + 1 if empty[i % q] else 0
            if run > best:
                best, best_end = min(run, q), i
        shift = ((best_end - best // 2) % q) * bar_ns
    per_day = np.unique((ts - shift) // DAY, return_counts=True)[1]
    return float(np.median(per_day))


def fit_calendar(ts: np.ndarray, bar_ns: int, setting: str = "auto") -> Calendar:
    """The calendar of one asset's bars ``ts`` (sorted UTC ns on a ``bar_ns`` clock): the one
    ``setting`` names, or inferred when it is ``auto`` (see the module docstring)."""
    setting = check_setting(setting)
    ts = np.asarray(ts, dtype=np.int64)
    if setting == "24x7":
        return Calendar("24x7", bar_ns, "set by data.calendar", setting)
    if bar_ns > DAY or WEEK % bar_ns:
        name = "24x7" if setting == "auto" else setting
        why = "bars longer than a day" if bar_ns > DAY else "the bar length does not divide a week"
        return Calendar(name, bar_ns, f"{why}: no closures to judge", setting)
    if len(ts) < 2:
        name = "24x7" if setting == "auto" else setting
        return Calendar(name, bar_ns, "a single bar: no closures to judge", setting)
    present, occurs = _weekly_profile(ts, bar_ns)
    tow = _time_of_week(len(present), bar_ns, int(ts[0]))
    name, reason = setting, "set by data.calendar"
    if setting == "auto":
        name, reason = _infer(ts, bar_ns, present, occurs, tow)
    if name == "24x7":
        return Calendar("24x7", bar_ns, reason, setting)
    rare = present < _RARE * np.maximum(occurs, 1)
    intraday = bar_ns < DAY
    if name == "fx":
        closed = (rare & _within(tow, 4 * 24 + 12, 7 * 24 + 12)) | _within(
            tow, 4 * 24 + 22, 6 * 24 + 21
        )
        allowance = DAY // bar_ns + (2 if intraday else 0)
        return Calendar("fx", bar_ns, reason, setting, closed, int(allowance))
    night = np.zeros(len(tow), dtype=bool)
    if intraday:
        by_day = _daily_presence(ts, bar_ns)
        night = by_day[((tow % DAY) // bar_ns).astype(np.int64)] < _RARE
    closed = night | _within(tow, 5 * 24, 6 * 24 + 18)
    session = session_bars(ts, bar_ns)
    allowance = 2 * math.ceil(session) + (2 if intraday else 0)
    return Calendar(
        "equity", bar_ns, reason, setting, closed, int(allowance), 0 if intraday else 2, session
    )


def _infer(
    ts: np.ndarray, bar_ns: int, present: np.ndarray, occurs: np.ndarray, tow: np.ndarray
) -> tuple[str, str]:
    """(calendar, reason) judged from where in the week the bars lie."""
    bar = interval_string(bar_ns)
    core = _within(tow, 5 * 24, 6 * 24 + 12)  # Saturday to Sunday noon UTC: closed for fx too
    weekends = occurs[core].sum() / max(int(core.sum()), 1)
    if weekends < _MIN_WEEKENDS:
        return "24x7", (
            f"cannot tell: {bar} bars over fewer than {_MIN_WEEKENDS} weekends; assumed 24x7 "
            "(set data.calendar to fx or equity if the market closes)"
        )
    share = present[core].sum() / max(occurs[core].sum(), 1)
    if share >= 0.5:
        return "24x7", f"{bar} bars at weekends ({share:.0%} of Saturday bars present)"
    if share > 0.02:
        return "24x7", (
            f"cannot tell: bars on some weekends but not others ({share:.0%} of Saturday bars "
            "present); assumed 24x7 (set data.calendar to fx or equity if the market closes)"
        )
    n_weekends = int(round(weekends))
    if bar_ns < DAY:
        weekday = _within(tow, 24, 4 * 24)  # Tuesday to Thursday
        traded = float(np.mean(present[weekday] >= 0.5 * np.maximum(occurs[weekday], 1)))
        if traded >= 0.75:
            return "fx", (
                f"{bar} bars around the clock on weekdays ({traded:.0%} of the day), none on "
                f"{n_weekends} weekends"
            )
        hours = traded * 24
        return "equity", (
            f"{bar} bars only in a daily session (~{hours:.1f} h of the day), none on "
            f"{n_weekends} weekends"
        )
    days = present >= 0.5 * np.maximum(occurs, 1)
    days &= ~core
    missing = int((occurs[days] - present[days]).sum())
    total = int(occurs[days].sum())
    rate = missing / max(total, 1)
    if rate >= _HOLIDAY_RATE:
        return "equity", (
            f"daily bars closed at weekends; {missing} of {total} weekdays missing "
            f"({rate:.1%}): exchange holidays"
        )
    return "fx", (
        f"daily bars closed at weekends; {missing} of {total} weekdays missing ({rate:.1%}), "
        "too few for exchange holidays"
    )


def clock_meta(
    timestamps: np.ndarray,
    calendar: str = "24x7",
    bar_ns: int | None = None,
    bars_per_session: float | None = None,
) -> dict[str, Any]:
    """The bar clock of a market, as ``MarketData.meta`` carries it: ``bar_interval``
    (``"1h"``), ``bar_seconds``, ``calendar`` and ``bars_per_year`` (``bars_per_year``).

    ``bar_ns`` None: the median spacing of ``timestamps``. ``bars_per_session`` None on an
    equity calendar: the median bars per trading day of ``timestamps``."""
    ts = np.asarray(timestamps).astype("datetime64[ns]").view(np.int64)
    if bar_ns is None:
        if len(ts) < 2:
            raise ValueError("need at least 2 bars, or the bar length, to describe the clock")
        bar_ns = int(np.median(np.diff(ts)))
    if calendar == "equity" and bars_per_session is None and bar_ns < DAY:
        bars_per_session = session_bars(ts, bar_ns)
    seconds = bar_ns / SECOND
    return {
        "bar_interval": interval_string(bar_ns),
        "bar_seconds": int(seconds) if seconds == int(seconds) else seconds,
        "calendar": calendar,
        "bars_per_year": bars_per_year(seconds, calendar, bars_per_session),
    }


def resolve_bars_per_year(
    configured: float | None, meta: dict[str, Any], key: str = "data.bars_per_year"
) -> float:
    """The annualisation a task uses: the data's own ``meta["bars_per_year"]``, unless
    ``configured``; a configured value more than 10% away from the data's is refused (a daily
    equity file annualised as hourly bars would report a Sharpe ratio ~6x too large)."""
    derived = float(meta["bars_per_year"])
    if configured is None:
        return derived
    if not 0.9 < float(configured) / derived < 1.1:
        raise ConfigError(
            f"{key}={configured:g}, but the data's bars ({meta.get('bar_interval', '?')} apart, "
            f"{meta.get('calendar', '?')} calendar) make {derived:g} a year, so every Sharpe "
            f"ratio, volatility and CAGR would be misstated: leave {key} unset (null) to take "
            "it from the data, or set data.calendar if the calendar was misjudged"
        )
    return float(configured)
