"""Validate and clean the raw rows of one asset: each rule finds its defect, reports it, repairs it.

The rules run in this order, each on what the previous ones left:

0. ``malformed_row`` (reported while reading): a CSV line with the wrong number of fields;
   skipped. ``empty_row``: a blank line or a row with every field empty; dropped.
1. ``unparseable_timestamp``: the row cannot be placed in time; dropped.
2. ``mixed_epoch_units``: epochs in seconds and milliseconds in one column; each row converted
   by its magnitude (see ``adan.data.timestamps``).
3. ``non_numeric_value``: text in a price or volume field; read as missing (rule 4).
4. ``missing_or_nonfinite``: NaN, NULL, empty or infinite price or volume; the bar is dropped
   and becomes a gap (filled and flagged by alignment).
5. ``non_positive_price`` / ``negative_volume``: the bar is dropped, as in 4.
6. ``unsorted_rows``: rows not in time order (e.g. newest first); sorted.
7. ``duplicate_timestamp``: the first row in file order is kept (``keep_duplicate: last``
   keeps the last, for append-style dumps whose later row is the completed bar).
8. ``stale_bars``: runs of ``stale_bars`` or more flat, zero-volume bars repeating the last
   close (an exchange outage written as bars); dropped, so they become flagged gaps.
9. ``level_shift``: prices that jump by ``level_shift_factor`` or more between two bars and
   stay there (a redenomination, an unadjusted split); the history is split there, as at a
   gap longer than ``max_fill_bars`` (see ``_level_shifts`` for why nothing is rescaled).
10. ``outlier_price``: a price field far from its neighbours: robust z-score
    |log(x / m)| / s > ``outlier_z``, where m is the median close of the ``outlier_neighbours``
    bars on each side and s the local scale (from the median absolute 1-bar log return and
    the median bar range around the bar; see ``_local_scale``); an
    open or close must also break continuity with the previous close / next open, and a wick
    is judged against its own bar's body (details in ``_repair_outliers``). This uses bars
    after t: it is an offline repair of history, never part of a feature. It runs on each side
    of a level shift separately, so the shift is never read as a bad print.
11. ``ohlc_inconsistent``: high below open/close/low or low above them; high and low are
    reset to the max and min of the four prices.
12. ``gap``: missing bars on the bar clock while the market is open; reported here, filled or
    split by alignment. Missing bars while the market is closed (an FX weekend, an equity
    night; ``adan.data.calendar``) are calendar closures: not a defect, only counted.

In ``strict`` mode the first defect raises ``DataError`` with the file row instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adan.data.calendar import Calendar, fit_calendar
from adan.data.loading import RawTable
from adan.data.report import CleaningReport, DataError
from adan.data.timestamps import NAT, parse_timestamps

PRICES = ("open", "high", "low", "close")


@dataclass
class CleaningPolicy:
    """How defects are handled; see the module docstring for each rule."""

    mode: str = "repair"  # repair: fix and report | strict: refuse the first defect
    max_fill_bars: int = 24  # longer gaps split the history (the longest segment is kept)
    # runs of this many or more flat zero-volume bars at the last close (outages); 0: off
    stale_bars: int = 3
    level_shift_factor: float = 3.0  # a lasting jump by this factor splits the history; 0: off
    outlier_z: float = 25.0  # robust z-score against the neighbours that marks an outlier; 0: off
    outlier_neighbours: int = 2  # bars on each side whose median close an outlier is judged by
    # bars per block of the local price scale (outliers), and bars either side a level shift
    # must last
    outlier_window: int = 24
    dayfirst: bool = False  # read ambiguous text dates day first (31/01/2024)
    timezone: str = "UTC"  # zone of naive timestamps (e.g. Europe/Paris); converted to UTC
    # strftime format of the timestamps, e.g. "%Y-%m-%d %H:%M"; null: ISO 8601, else inferred
    timestamp_format: str | None = None
    bar: str | None = None  # bar length ("1h"); None infers it (median spacing)
    keep_duplicate: str = "first"  # first | last row of a repeated timestamp, in file order

    def __post_init__(self) -> None:
        key = "data.cleaning."
        if self.mode not in ("repair", "strict"):
            raise DataError(f"{key}mode must be 'repair' or 'strict', got {self.mode!r}")
        if self.keep_duplicate not in ("first", "last"):
            raise DataError(
                f"{key}keep_duplicate must be 'first' or 'last', got {self.keep_duplicate!r}"
            )
        for name in ("max_fill_bars", "stale_bars", "outlier_neighbours", "outlier_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DataError(f"{key}{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.outlier_z, int | float) or self.outlier_z < 0:
            raise DataError(f"{key}outlier_z must be >= 0 (0 disables), got {self.outlier_z!r}")
        factor = self.level_shift_factor
        if (
            not isinstance(factor, int | float)
            or isinstance(factor, bool)
            or not (factor == 0 or factor > 1)
        ):
            raise DataError(
                f"{key}level_shift_factor must be > 1 (e.g. 3: a lasting jump to 3x or 1/3) "
                f"or 0 (off), got {factor!r}"
            )
        if self.bar is not None:
            try:
                ok = pd.Timedelta(self.bar) > pd.Timedelta(0)
            except ValueError:
                ok = False
            if not ok:
                raise DataError(f"{key}bar must be a positive duration like 1h, got {self.bar!r}")
        try:
            pd.Timestamp("2024-01-01").tz_localize(self.timezone)
        except Exception as err:  # pytz / zoneinfo raise several kinds
            raise DataError(f"{key}timezone {self.timezone!r} is not a known time zone") from err


@dataclass
class AssetSeries:
    """One asset's clean bars: sorted, unique timestamps (UTC ns), float64 OHLCV, and the file
    row each bar came from.

    ``calendar`` says when its market is closed; ``closure[i]`` whether the missing bars after
    bar i are a calendar closure (not a gap). ``breaks``: timestamps of the first bar after
    each level shift, where alignment splits the history."""

    asset: str
    file: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    rows: np.ndarray
    bar_ns: int
    calendar: Calendar | None = None
    closure: np.ndarray | None = None
    breaks: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ts)

    def fit_calendar(self, setting: str = "auto") -> None:
        """Judge (or re-judge, after files are joined) the calendar and its closures."""
        self.calendar = fit_calendar(self.ts, self.bar_ns, setting)
        self.closure, _ = self.calendar.judge(self.ts)


class _Flags:
    """Reports a rule's rows (positions into the current ``rows``, or a mask of them) to the
    report, as file rows; ``rows`` follows the positions as the stages drop and reorder them."""

    def __init__(self, report: CleaningReport, file: str, asset: str, rows: np.ndarray) -> None:
        self.report, self.file, self.asset, self.rows = report, file, asset, rows

    def __call__(self, rule: str, where: np.ndarray, action: str, detail: str = "") -> None:
        where = np.flatnonzero(where) if where.dtype == bool else where
        self.report.defect(rule, self.file, self.asset, self.rows[where], action, detail)


def clean_asset(
    table: RawTable,
    asset: str,
    policy: CleaningPolicy,
    report: CleaningReport,
    index: np.ndarray | None = None,
    calendar: str = "auto",
) -> AssetSeries:
    """Apply every rule to the rows ``index`` of ``table`` (all rows when None); ``calendar``
    (``data.calendar``: auto, 24x7, fx, equity) decides which missing bars are closures.

    Rules 1-7 only compute masks and an order over the rows; the columns are gathered once,
    into their final (sorted, de-duplicated) order, so a large file is not copied per rule.
    """
    idx = np.arange(len(table)) if index is None else np.asarray(index)
    file = str(table.path)
    src = {k: getattr(table, k) for k in (*PRICES, "volume")}
    if index is not None:  # one asset of a long file: its rows, once
        src = {k: v[idx] for k, v in src.items()}
    # file row of every position below; re-cut with the positions
    flag = _Flags(report, file, asset, table.rows(idx))

    raw_ts = table.timestamp[idx] if index is not None else table.timestamp
    ts, keep = _timestamps(table, raw_ts, src, policy, flag)  # rules 0-2
    keep &= _valid_values(table, idx, src, keep, flag)  # rules 3-5
    pos = np.flatnonzero(keep)  # positions still in play, in file order
    del keep
    if len(pos) == 0:
        found = "; ".join(
            f"{d.rule} x{d.count} ({d.detail or d.action})"
            for d in report.defects
            if d.file == file and d.asset == asset
        )
        raise DataError(f"{file}: no usable rows for asset {asset!r}: {found or 'no rows'}")
    ts, pos = _in_time_order(ts[pos], pos, src, policy, flag)  # rules 6-7
    values = {k: v[pos] for k, v in src.items()}  # the one gather of the columns
    flag.rows = flag.rows[pos]
    del src, pos
    return _repaired_series(asset, file, ts, values, policy, flag, calendar)  # rules 8-12


def _timestamps(
    table: RawTable,
    raw_ts: np.ndarray,
    src: dict[str, np.ndarray],
    policy: CleaningPolicy,
    flag: _Flags,
) -> tuple[np.ndarray, np.ndarray]:
    """(ns timestamps, rows to keep): empty rows and unparseable timestamps dropped, mixed
    epoch units reported."""
    parsed = parse_timestamps(raw_ts, policy.dayfirst, policy.timezone, policy.timestamp_format)
    ts = parsed.ns
    bad_ts = ts == NAT
    empty = bad_ts & pd.isna(raw_ts)
    for v in src.values():
        empty &= np.isnan(v)
    if empty.any():
        flag("empty_row", empty, "row dropped", "blank lines or rows with every field empty")
        bad_ts &= ~empty
    if bad_ts.any():
        first = raw_ts[np.flatnonzero(bad_ts)[0]]
        flag(
            "unparseable_timestamp",
            bad_ts,
            "row dropped",
            f"timestamp {first!r} in column {table.columns['timestamp']!r} is not a date or "
            "epoch; set data.cleaning.timestamp_format or dayfirst if the format is odd",
        )
    epoch_units = {u: r for u, r in parsed.units.items() if u in ("s", "ms", "us", "ns")}
    if len(epoch_units) > 1:
        major = max(epoch_units, key=lambda u: len(epoch_units[u]))
        minority = np.sort(np.concatenate([r for u, r in epoch_units.items() if u != major]))
        counts = ", ".join(f"{len(r)} in {u}" for u, r in epoch_units.items())
        flag(
            "mixed_epoch_units",
            minority,
            "each row converted by its magnitude",
            f"epoch column {table.columns['timestamp']!r} mixes units: {counts}",
        )
    return ts, ~(bad_ts | empty)


def _valid_values(
    table: RawTable,
    idx: np.ndarray,
    src: dict[str, np.ndarray],
    keep: np.ndarray,
    flag: _Flags,
) -> np.ndarray:
    """Rows whose prices and volume are numbers, finite, prices > 0 and volume >= 0; the
    others are reported (among ``keep``) and become gaps."""
    rows = flag.rows
    for col, bad in table.unparsed.items():
        local = np.flatnonzero(np.isin(idx, bad))
        if len(local):
            flag(
                "non_numeric_value",
                local,
                "read as missing",
                f"column {table.columns[col]!r} holds text, e.g. at row {rows[local[0]]}",
            )
    nonfinite = np.zeros(len(idx), dtype=bool)
    bad_cols = []
    for k, v in src.items():
        bad = ~np.isfinite(v)
        if (bad & keep).any():
            bad_cols.append(table.columns[k])
        nonfinite |= bad
    if (nonfinite & keep).any():
        flag(
            "missing_or_nonfinite",
            nonfinite & keep,
            "bar dropped; the gap is filled and flagged",
            f"NaN, NULL, empty or infinite values in {bad_cols}",
        )
    valid = ~nonfinite
    with np.errstate(invalid="ignore"):
        nonpos = np.zeros(len(idx), dtype=bool)
        for k in PRICES:
            nonpos |= src[k] <= 0
        negvol = src["volume"] < 0
    if (nonpos & keep & valid).any():
        flag(
            "non_positive_price",
            nonpos & keep & valid,
            "bar dropped; the gap is filled and flagged",
        )
    valid &= ~nonpos
    if (negvol & keep & valid).any():
        flag("negative_volume", negvol & keep & valid, "bar dropped; the gap is filled and flagged")
    return valid & ~negvol


def _in_time_order(
    ts: np.ndarray,
    pos: np.ndarray,
    src: dict[str, np.ndarray],
    policy: CleaningPolicy,
    flag: _Flags,
) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, positions) sorted by time (stable) with repeated timestamps dropped,
    keeping ``policy.keep_duplicate``'s row."""
    out_of_order = np.flatnonzero(np.diff(ts) < 0) + 1
    if len(out_of_order):
        newest_first = len(out_of_order) > 0.9 * (len(ts) - 1)
        flag(
            "unsorted_rows",
            pos[out_of_order],
            "rows sorted by timestamp",
            "rows are newest first" if newest_first else f"{len(out_of_order)} rows out of order",
        )
        order = np.argsort(ts, kind="stable")  # stable: duplicates keep their file order
        ts, pos = ts[order], pos[order]
        del order

    same = ts[1:] == ts[:-1]
    if policy.keep_duplicate == "first":
        dup = np.concatenate([[False], same])
    else:  # the last row of each timestamp stays: rows followed by a twin are dropped
        dup = np.concatenate([same, [False]])
    if dup.any():
        kept = np.flatnonzero(~dup)
        group = np.cumsum(np.concatenate([[True], ~same])) - 1  # timestamp group of each row
        kept_of = pos[kept[group]]  # the kept row of each row's timestamp
        rel = max(
            float(np.max(np.abs(src[k][pos[dup]] / src[k][kept_of[dup]] - 1.0), initial=0.0))
            for k in PRICES
        )
        flag(
            "duplicate_timestamp",
            pos[dup],
            f"{policy.keep_duplicate} row in file order kept",
            f"{int(dup.sum())} repeated timestamps; largest price difference to the kept row "
            f"{rel:.2%}",
        )
        ts, pos = ts[~dup], pos[~dup]
    return ts, pos


def _repaired_series(
    asset: str,
    file: str,
    ts: np.ndarray,
    values: dict[str, np.ndarray],
    policy: CleaningPolicy,
    flag: _Flags,
    calendar: str,
) -> AssetSeries:
    """Rules 8-12 on the gathered, sorted bars: stale bars dropped, level shifts split,
    outliers and OHLC repaired, gaps reported on the calendar; the series."""
    bar_ns = _bar_length(ts, policy, file, asset)
    stale = _stale_bars(values, policy.stale_bars)
    if stale.any():
        flag(
            "stale_bars",
            stale,
            "bars dropped; the gap is filled and flagged",
            f"runs of >= {policy.stale_bars} flat zero-volume bars repeating the last close "
            "(an outage written as bars)",
        )
        ts, flag.rows = ts[~stale], flag.rows[~stale]
        values = {k: v[~stale] for k, v in values.items()}

    shifts = _level_shifts(values, policy)
    if len(shifts):
        prev, new = values["close"][shifts - 1], values["open"][shifts]
        factor = np.maximum(prev / new, new / prev)
        flag(
            "level_shift",
            shifts,
            "history split at the shift, as at a gap longer than max_fill_bars; the longest "
            "segment is kept",
            f"prices jump by a factor of {factor[0]:.4g} between two bars and stay there "
            f"(close {prev[0]:g} -> open {new[0]:g} at {pd.Timestamp(ts[shifts[0]])}): a "
            "redenomination or an unadjusted split; set data.cleaning.level_shift_factor=0 if "
            "it is a real move",
        )
    bounds = np.concatenate([[0], shifts, [len(ts)]])
    _repair_outliers(values, policy, flag, bounds)
    _repair_ohlc(values, flag)

    rows = flag.rows
    series = AssetSeries(asset, file, ts, **values, rows=rows, bar_ns=bar_ns, breaks=ts[shifts])
    series.fit_calendar(calendar)
    _, missing = series.calendar.judge(ts)
    gaps = np.flatnonzero(missing)
    if len(gaps):
        worst = int(np.argmax(missing))
        flag(
            "gap",
            gaps + 1,
            f"gaps up to {policy.max_fill_bars} bars filled and flagged; longer ones split",
            f"{int(missing.sum())} missing bars in {len(gaps)} gap(s); longest "
            f"{int(missing[worst])} bars after {pd.Timestamp(ts[worst])}" + _closure_note(series),
        )
    misaligned = np.flatnonzero((ts - ts[0]) % bar_ns != 0)
    if len(misaligned):
        raise DataError(
            f"{file}: row {rows[misaligned[0]]}: timestamp {pd.Timestamp(ts[misaligned[0]])} is "
            f"not on the {pd.Timedelta(bar_ns)} bar clock that starts at {pd.Timestamp(ts[0])}; "
            "resample the file to one bar length first, or set data.cleaning.bar"
        )
    return series


def _closure_note(series: AssetSeries) -> str:
    n = 0 if series.closure is None else int(series.closure.sum())
    if not n:
        return ""
    return f" (not counting {n} {series.calendar.name} calendar closure(s))"


def _bar_length(ts: np.ndarray, policy: CleaningPolicy, file: str, asset: str) -> int:
    if policy.bar is not None:
        return int(pd.Timedelta(policy.bar).value)
    if len(ts) < 2:
        raise DataError(
            f"{file}: asset {asset!r} has a single bar, so its bar length cannot be inferred; "
            "set data.cleaning.bar (e.g. 1h) or drop it from the file"
        )
    return int(np.median(np.diff(ts)))


def _stale_bars(values: dict[str, np.ndarray], min_run: int) -> np.ndarray:
    """Bars inside runs of >= ``min_run`` flat zero-volume bars at the previous close."""
    n = len(values["close"])
    if min_run == 0 or n < 2:
        return np.zeros(n, dtype=bool)
    o, h, lo, c, v = (values[k] for k in (*PRICES, "volume"))
    prev_close = np.concatenate([[np.nan], c[:-1]])
    flat = (v == 0) & (o == h) & (h == lo) & (lo == c) & (c == prev_close)
    # run lengths of consecutive flat bars
    starts = np.flatnonzero(np.diff(np.concatenate([[0], flat.astype(np.int8)])) == 1)
    ends = np.flatnonzero(np.diff(np.concatenate([flat.astype(np.int8), [0]])) == -1) + 1
    out = np.zeros(n, dtype=bool)
    for s, e in zip(starts, ends, strict=True):  # loops over runs, not bars
        if e - s >= min_run:
            out[s:e] = True
    return out


def _level_shifts(values: dict[str, np.ndarray], policy: CleaningPolicy) -> np.ndarray:
    """Rule 9: indices of bars that open a lasting new price level.

    A shift at bar t: the open jumps from the previous close by ``level_shift_factor`` or more,
    the close moves as far the same way (the whole bar is at the new level: the jump is
    between bars, not a crash within one), the jump is beyond ``outlier_z`` local scales (when
    that rule is on), and it lasts: the median close of the ``outlier_window`` bars from t is
    within a quarter of the jump of the new level, and that of the bars before t of the old.
    A bad print that reverts fails the last test and is left to the outlier rule.

    Why split rather than repair: before this rule the outlier rule read the jump as two bad
    prints and replaced the last close before it and the first open after it by the
    neighbours' median, an invented price halfway between the levels, and the -90 % bar
    return still reached the features. Rescaling one side instead would need to know which
    unit is right and would invent every price of that side; a split keeps only real bars,
    and alignment keeps the longest stretch, as it does at a long gap.
    """
    factor, n = policy.level_shift_factor, len(values["close"])
    if factor == 0 or n < 6:
        return np.empty(0, dtype=np.int64)
    logc, logo = np.log(values["close"]), np.log(values["open"])
    jump = np.log(factor)
    gap = logo[1:] - logc[:-1]
    step = logc[1:] - logc[:-1]
    cand = np.flatnonzero((np.abs(gap) >= jump) & (np.abs(step) >= jump) & (gap * step > 0)) + 1
    if not len(cand):
        return cand.astype(np.int64)
    if policy.outlier_z > 0:
        scale = _local_scale(logc, np.log(values["high"] / values["low"]), policy.outlier_window)
        cand = cand[np.abs(gap[cand - 1]) / scale[cand] > policy.outlier_z]
    window = max(policy.outlier_window, 3)
    keep = []
    for t in cand:  # candidates are few: a loop over them, not over bars
        before, after = logc[max(0, t - window) : t], logc[t : t + window]
        if len(before) < 3 or len(after) < 3:
            continue
        tol = abs(gap[t - 1]) / 4
        if abs(np.median(after) - logo[t]) < tol and abs(np.median(before) - logc[t - 1]) < tol:
            keep.append(t)
    return np.asarray(keep, dtype=np.int64)


def _repair_outliers(
    values: dict[str, np.ndarray], policy: CleaningPolicy, flag, bounds: np.ndarray
) -> None:
    """Rule 10 on each stretch ``bounds[i]:bounds[i + 1]`` between level shifts, one report.

    Open and close: flagged when their robust z against the neighbours' median close exceeds
    ``outlier_z`` *and* they break continuity (the open jumps from the previous close, the
    close from the next open): a real spike is confirmed by the next bar opening there, a bad
    print is not. They are replaced by the neighbours' median close. High and low (wicks) are
    judged against the bar's own body, at twice the threshold since real wicks are long; a bad
    one is cut back to the body.
    """
    found, examples = [], []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        part = {k: v[start:stop] for k, v in values.items()}  # views: repairs write through
        bars, said = _outliers(part, policy)
        found.append(bars + start)
        examples += said
    bars = np.concatenate(found)
    if len(bars):
        flag(
            "outlier_price",
            bars,
            "bad open/close replaced by the neighbours' median close; bad wick cut to the body",
            f"robust z > {policy.outlier_z:g}: " + "; ".join(examples),
        )


def _outliers(values: dict[str, np.ndarray], policy: CleaningPolicy) -> tuple[np.ndarray, list]:
    """Repair one stretch in place; (bars repaired, examples for the report)."""
    n = len(values["close"])
    k, zmax = policy.outlier_neighbours, policy.outlier_z
    if zmax == 0 or k == 0 or n < 2 * k + 2:
        return np.empty(0, dtype=np.int64), []
    logc = np.log(values["close"])
    ref = _neighbour_median(logc, k)
    scale = _local_scale(logc, np.log(values["high"] / values["low"]), policy.outlier_window)

    def z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.abs(np.log(a) - b) / scale, nan=np.inf)

    logo = np.log(values["open"])
    prev_close = np.concatenate([[np.nan], logc[:-1]])
    next_open = np.concatenate([logo[1:], [np.nan]])
    hits = {
        "open": np.flatnonzero(
            (z(values["open"], ref) > zmax) & (z(values["open"], prev_close) > zmax)
        ),
        "close": np.flatnonzero(
            (z(values["close"], ref) > zmax) & (z(values["close"], next_open) > zmax)
        ),
    }
    examples = [
        f"{f} {values[f][b[0]]:g} vs neighbours {np.exp(ref[b[0]]):g}"
        for f, b in hits.items()
        if len(b)
    ]
    for f, b in hits.items():
        values[f][b] = np.exp(ref[b])
    body_hi = np.maximum(values["open"], values["close"])
    body_lo = np.minimum(values["open"], values["close"])
    with np.errstate(invalid="ignore"):
        hits["high"] = np.flatnonzero(np.log(values["high"] / body_hi) / scale > 2 * zmax)
        hits["low"] = np.flatnonzero(np.log(body_lo / values["low"]) / scale > 2 * zmax)
    examples += [
        f"{f} {values[f][b[0]]:g} vs body {(body_hi if f == 'high' else body_lo)[b[0]]:g}"
        for f, b in hits.items()
        if f in ("high", "low") and len(b)
    ]
    values["high"][hits["high"]] = body_hi[hits["high"]]
    values["low"][hits["low"]] = body_lo[hits["low"]]
    return np.unique(np.concatenate(list(hits.values()))), examples


_BLOCK = 1 << 20  # rows per block of the neighbour median (bounds its temporary memory)


def _neighbour_median(x: np.ndarray, k: int) -> np.ndarray:
    """Median of x[t-k..t-1, t+1..t+k] for every t (edges repeat the first / last value)."""
    padded = np.pad(x, k, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1)
    others = [i for i in range(2 * k + 1) if i != k]
    out = np.empty(len(x))
    for start in range(0, len(x), _BLOCK):
        out[start : start + _BLOCK] = np.median(windows[start : start + _BLOCK, others], axis=1)
    return out


def _local_scale(logc: np.ndarray, log_range: np.ndarray, window: int) -> np.ndarray:
    """Robust local scale of prices: the larger of 1.4826 x the median absolute 1-bar log
    return and half the median bar range log(high / low), each taken in blocks of ``window``
    bars and, per bar, as the median over its block and the two beside it (a ~3 x ``window``
    neighbourhood); floored at a tenth of the file's median. The range term keeps markets
    whose close rarely moves (a stablecoin at 1.0000) from reading every wick as an outlier."""
    window = max(int(window), 2)
    absret = np.abs(np.diff(logc, prepend=logc[0]))
    scale = np.maximum(
        1.4826 * _block_median(absret, window), 0.5 * _block_median(log_range, window)
    )
    floor = 0.1 * float(np.median(scale))
    return np.fmax(scale, max(floor, 1e-6))


def _block_median(x: np.ndarray, window: int) -> np.ndarray:
    """Per element: the median of its ``window``-block's median and its two neighbours'."""
    n_blocks = -(-len(x) // window)
    padded = np.full(n_blocks * window, np.nan)
    padded[: len(x)] = x
    block = np.pad(np.nanmedian(padded.reshape(n_blocks, window), axis=1), 1, mode="edge")
    smooth = np.median(np.stack([block[:-2], block[1:-1], block[2:]]), axis=0)
    return np.repeat(smooth, window)[: len(x)]


def _repair_ohlc(values: dict[str, np.ndarray], flag) -> None:
    """Rule 11: high >= max(open, close, low) and low <= min(open, close, high)."""
    o, h, lo, c = (values[k] for k in PRICES)
    top = np.maximum.reduce([o, h, lo, c])
    bottom = np.minimum.reduce([o, h, lo, c])
    bad = (h < top) | (lo > bottom)
    if bad.any():
        flag(
            "ohlc_inconsistent",
            bad,
            "high and low reset to the max and min of the bar's prices",
            "high below open/close/low, or low above them",
        )
        values["high"], values["low"] = top, bottom
