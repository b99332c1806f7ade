"""OHLCV files -> one clean, aligned ``Bars``: read, clean per asset (in parallel), align.

``FileSource`` is the bar source behind ``data=csv``, ``data=parquet`` and
``data=binance_sample``: ``MarketPipeline`` calls ``generate()`` and never knows a file was
involved. One file per asset (the asset named by its symbol column, else by the file name), or
a long file with a symbol column holding several assets.

Alignment puts every asset on one bar clock from the date the last asset was listed to the
date the first one ends. A bar missing for an asset (a gap in its file, or a bar cleaning
dropped) is filled flat at the last close with zero volume and flagged in ``Bars.filled``, if
the gap is at most ``max_fill_bars`` long. Longer gaps split the history, and the longest
segment without one is kept; both are in the cleaning report. A level shift splits the history
the same way. Bars missing while an asset's market is closed (its calendar, see
``adan.data.calendar``) are not gaps: a slot closed for every asset is not on the clock at all,
and one that another asset trades is filled flat and flagged, without splitting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from adan.data.bars import Bars
from adan.data.calendar import check_setting, most_open, session_bars
from adan.data.cleaning import AssetSeries, CleaningPolicy, clean_asset
from adan.data.dialect import decimal_mark
from adan.data.loading import expand_paths, read_table
from adan.data.pipeline import MarketPipeline
from adan.data.report import CleaningReport, DataError
from adan.data.schema import FileMarketSchema

log = logging.getLogger(__name__)
# Part of the feature-cache key of file sources: bump it when loading, cleaning or alignment
# changes what a file turns into, so that old cache entries are not reused.
DATA_CODE_VERSION = 3


def load_assets(
    path: Path,
    fmt: str,
    columns: Mapping[str, str] | None,
    policy: CleaningPolicy,
    asset: str,
    encoding: str = "utf8",
    decimal: str = "auto",
    calendar: str = "auto",
) -> tuple[list[AssetSeries], CleaningReport]:
    """Read and clean one file: one asset, or one per symbol in a long file."""
    report = CleaningReport(policy.mode)
    table = read_table(path, fmt, columns, encoding, decimal)
    info: dict[str, Any] = dict(
        path=str(path), rows=len(table), columns=table.columns, ignored_columns=table.ignored
    )
    if table.dialect:
        info["dialect"] = table.dialect
    report.note_file(**info)
    if table.malformed:
        line, text = table.malformed[0]
        report.defect(
            "malformed_row",
            str(path),
            asset,
            [ln for ln, _ in table.malformed],
            "row skipped",
            f"wrong number of fields, e.g. line {line}: {text[:80]!r}",
        )
    if table.symbol is None:
        return [clean_asset(table, asset, policy, report, calendar=calendar)], report
    symbols = pd.Series(table.symbol, dtype=object)
    if symbols.isna().any():
        bad = np.flatnonzero(symbols.isna().to_numpy())
        report.defect(
            "missing_symbol", str(path), asset, table.rows(bad), "row dropped", "empty symbol"
        )
    groups = symbols.dropna().groupby(symbols.dropna(), sort=True).indices
    names = [_asset_name(str(g)) for g in groups]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raw = [str(g) for g in groups if _asset_name(str(g)) == clash[0]]
        raise DataError(
            f"{path}: symbols {raw} all become the asset name {clash[0]!r}; rename them in the "
            "file so that they differ in letters or digits"
        )
    if len(groups) == 1:  # a one-asset file that names its symbol (e.g. BTC/USDT): use the name
        ((name, idx),) = groups.items()
        return [clean_asset(table, _asset_name(str(name)), policy, report, idx, calendar)], report
    return [
        clean_asset(table, _asset_name(str(name)), policy, report, idx, calendar)
        for name, idx in groups.items()
    ], report


def _asset_name(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTCUSDT``: a name safe in metric keys and file names."""
    return re.sub(r"[^A-Za-z0-9_.]", "", symbol) or symbol


def asset_from_path(path: Path) -> str:
    """``Binance_BTCUSDT_1h.csv`` -> ``Binance_BTCUSDT_1h`` (the stem; a symbol column wins)."""
    name = path.name
    for ext in (".csv.gz", ".txt.gz", ".tsv.gz", ".gz", ".parquet", ".csv", ".txt", ".tsv", ".pq"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def align_assets(
    series: Sequence[AssetSeries], policy: CleaningPolicy, report: CleaningReport
) -> Bars:
    """Put every asset on one bar clock; fill and flag short gaps, split at long ones and at
    level shifts; leave out the slots where every asset's market is closed."""
    series = merge_same_asset(series, report)
    names = [s.asset for s in series]
    bar = series[0].bar_ns
    for s in series[1:]:
        if s.bar_ns != bar:
            raise DataError(
                f"{s.file}: bars of {pd.Timedelta(s.bar_ns)}, but {series[0].file} has bars of "
                f"{pd.Timedelta(bar)}; resample the files to one bar length"
            )
    start = max(int(s.ts[0]) for s in series)
    stop = min(int(s.ts[-1]) for s in series)
    if start > stop:
        spans = ", ".join(
            f"{s.asset} {pd.Timestamp(s.ts[0])}..{pd.Timestamp(s.ts[-1])}" for s in series
        )
        raise DataError(f"the assets' periods do not overlap ({spans}); nothing to align")
    for s in series:  # every asset's bars on one grid, or a bar would land in another's slot
        off = (s.ts - start) % bar
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise DataError(
                f"{s.file}: row {s.rows[i]}: bar at {pd.Timestamp(s.ts[i])} is not on the "
                f"{pd.Timedelta(bar)} clock of the other assets, which starts at "
                f"{pd.Timestamp(start)}; resample or shift the files to common bar times"
            )
    grid = start + bar * np.arange((stop - start) // bar + 1, dtype=np.int64)
    n = len(grid)
    have = np.zeros((n, len(series)), dtype=bool)
    closed = np.zeros((n, len(series)), dtype=bool)  # missing while the asset's market is shut
    for j, s in enumerate(series):
        inside = (s.ts >= start) & (s.ts <= stop)
        have[((s.ts[inside] - start) // bar).astype(np.int64), j] = True
        missing = np.flatnonzero(~have[:, j])
        if s.calendar is not None and s.closure is not None:
            closed[missing, j] = s.calendar.closed_slots(grid[missing], s.ts, s.closure)
    on_clock = ~closed.all(axis=1)  # a slot every market is closed at is no bar at all
    clock = grid[on_clock]
    have, closed = have[on_clock], closed[on_clock]
    del grid
    t, a = len(clock), len(series)
    arrays = {k: np.empty((t, a)) for k in ("open", "high", "low", "close", "volume")}
    filled = np.zeros((t, a), dtype=bool)
    run_ok = np.ones(t, dtype=bool)  # False at bars inside a gap longer than max_fill_bars
    alignment: dict[str, Any] = {"bar": str(pd.Timedelta(bar)), "assets": {}}
    for j, s in enumerate(series):
        inside = (s.ts >= start) & (s.ts <= stop)
        pos = np.searchsorted(clock, s.ts[inside])
        for k in ("open", "high", "low", "close", "volume"):
            arrays[k][pos, j] = getattr(s, k)[inside]
        missing = ~have[:, j]
        # a missing slot repeats the asset's last close at or before it (from its whole
        # series, so a gap right at the common start is filled from the bar before it)
        before = np.searchsorted(s.ts, clock[missing], side="right") - 1
        for k in ("open", "high", "low", "close"):
            arrays[k][missing, j] = s.close[before]
        arrays["volume"][missing, j] = 0.0
        filled[:, j] = missing
        gap = missing & ~closed[:, j]  # closed slots another asset trades: filled, no split
        gap_len = _run_lengths(gap)
        run_ok &= gap_len <= policy.max_fill_bars
        alignment["assets"][s.asset] = {
            "file": s.file,
            "first": str(pd.Timestamp(s.ts[0])),
            "last": str(pd.Timestamp(s.ts[-1])),
            "bars_before_common_start": int((s.ts < start).sum()),
            "bars_after_common_end": int((s.ts > stop).sum()),
            "filled_bars": int(gap.sum()),
        }
        if closed[:, j].any():
            alignment["assets"][s.asset]["closed_bars_filled"] = int(closed[:, j].sum())
    if len({str(pd.Timestamp(s.ts[0])) for s in series}) > 1:
        alignment["note"] = (
            "assets start at different dates; the common clock starts when the last one is "
            f"listed, {pd.Timestamp(start)}"
        )
    breaks = np.unique(np.concatenate([s.breaks for s in series]))
    cuts = np.searchsorted(clock, breaks[(breaks > clock[0]) & (breaks <= clock[-1])])
    keep = _longest_true_run(run_ok, cuts)
    if keep.stop - keep.start < t:
        why = f"a gap over {policy.max_fill_bars} bars" + (" or a level shift" if len(cuts) else "")
        report.defect(
            "long_gap_segment_dropped",
            "",
            ",".join(names),
            [],
            f"kept the longest stretch without {why}: "
            f"{pd.Timestamp(clock[keep.start])} .. {pd.Timestamp(clock[keep.stop - 1])}",
            f"{t - (keep.stop - keep.start)} of {t} bars dropped; raise "
            "data.cleaning.max_fill_bars to fill longer gaps instead",
            count=t - (keep.stop - keep.start),
        )
    if keep.stop <= keep.start:
        raise DataError("every bar lies inside a gap longer than max_fill_bars; nothing left")
    calendar = _calendar_summary(series, bar)
    report.summary["alignment"] = alignment
    report.summary["calendar"] = calendar
    report.summary["bars"] = keep.stop - keep.start
    kept = clock[keep]
    session = None
    if calendar["calendar"] == "equity":
        session = session_bars(kept, bar)
    return Bars(
        timestamps=kept.astype("datetime64[ns]"),
        assets=tuple(names),
        filled=np.ascontiguousarray(filled[keep]),
        calendar=calendar["calendar"],
        bar_ns=int(bar),
        bars_per_session=session,
        **{k: np.ascontiguousarray(v[keep]) for k, v in arrays.items()},
    )


def _calendar_summary(series: Sequence[AssetSeries], bar: int) -> dict[str, Any]:
    """The report's ``calendar``: the clock's calendar and, per asset, its own and why."""
    per_asset: dict[str, Any] = {}
    for s in series:
        cal = s.calendar
        closure = s.closure if s.closure is not None else np.zeros(len(s.ts), dtype=bool)
        runs = (np.diff(s.ts) // bar - 1)[closure[:-1]] if len(s.ts) > 1 else np.empty(0)
        per_asset[s.asset] = {
            "calendar": cal.name if cal else "24x7",
            "reason": cal.reason if cal else "",
            "closures": int(closure.sum()),
            "closed_bars": int(runs.sum()),
        }
    names = [v["calendar"] for v in per_asset.values()]
    out: dict[str, Any] = {"calendar": most_open(names), "assets": per_asset}
    if len(set(names)) > 1:
        out["note"] = (
            f"assets on different calendars ({', '.join(sorted(set(names)))}): the clock follows "
            f"the most open, {out['calendar']}; an asset's bars missing while its own market is "
            "closed are filled flat and flagged, and never split the history"
        )
    return out


def merge_same_asset(series: Sequence[AssetSeries], report: CleaningReport) -> list[AssetSeries]:
    """Join the files of one asset (e.g. one file per year) into one series, in time order.

    Where files overlap, the bar of the file listed first is kept and the overlap reported.
    """
    by_asset: dict[str, list[AssetSeries]] = {}
    for s in series:
        by_asset.setdefault(s.asset, []).append(s)
    out = []
    for asset, parts in by_asset.items():
        if len(parts) == 1:
            out.append(parts[0])
            continue
        bar, origin = parts[0].bar_ns, int(parts[0].ts[0])
        for p in parts[1:]:
            if p.bar_ns != bar or (int(p.ts[0]) - origin) % bar:
                raise DataError(
                    f"{p.file}: bars of {pd.Timedelta(p.bar_ns)} from {pd.Timestamp(p.ts[0])} do "
                    f"not continue the {pd.Timedelta(bar)} bars of {parts[0].file} (same asset "
                    f"{asset!r}); resample the files to one bar clock"
                )
        cat = {
            k: np.concatenate([getattr(p, k) for p in parts])
            for k in ("ts", "open", "high", "low", "close", "volume", "rows")
        }
        source = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
        order = np.lexsort((source, cat["ts"]))  # by time, then by file order
        cat = {k: v[order] for k, v in cat.items()}
        source = source[order]
        dup = np.concatenate([[False], cat["ts"][1:] == cat["ts"][:-1]])
        for i, p in enumerate(parts):
            mine = dup & (source == i)
            if mine.any():
                report.defect(
                    "duplicate_timestamp",
                    p.file,
                    asset,
                    cat["rows"][mine],
                    "bar of the file listed first kept",
                    f"{int(mine.sum())} bars overlap another file of {asset}",
                )
        cat = {k: v[~dup] for k, v in cat.items()}
        files = " + ".join(p.file for p in parts)
        joined = AssetSeries(
            asset,
            files,
            bar_ns=parts[0].bar_ns,
            breaks=np.concatenate([p.breaks for p in parts]),
            **cat,
        )
        if parts[0].calendar is not None:  # judged again on the joined bars
            joined.fit_calendar(parts[0].calendar.setting)
        out.append(joined)
    return out


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each True element, the length of the run of Trues it belongs to (0 elsewhere)."""
    m = np.concatenate([[0], mask.astype(np.int8), [0]])
    starts = np.flatnonzero(np.diff(m) == 1)
    ends = np.flatnonzero(np.diff(m) == -1)
    out = np.zeros(len(mask), dtype=np.int64)
    lengths = ends - starts
    ids = np.cumsum(np.diff(m)[:-1] == 1) - 1  # run id at each position (valid where mask)
    out[mask] = lengths[ids[mask]]
    return out


def _longest_true_run(mask: np.ndarray, cuts: np.ndarray | None = None) -> slice:
    """The longest run of True in ``mask``; a run also ends before each index in ``cuts``."""
    m = np.concatenate([[0], mask.astype(np.int8), [0]])
    starts = np.flatnonzero(np.diff(m) == 1)
    ends = np.flatnonzero(np.diff(m) == -1)
    if cuts is not None and len(cuts):
        starts = np.unique(np.concatenate([starts, cuts[mask[cuts]]]))
        ends = np.unique(np.concatenate([ends, cuts[mask[cuts - 1]]]))
    if len(starts) == 0:
        return slice(0, 0)
    i = int(np.argmax(ends - starts))
    return slice(int(starts[i]), int(ends[i]))


class FileSource:
    """Bars from OHLCV files; see the module docstring.

    ``path``: a file, a glob, or a list; relative paths are also looked up under the project
    root. ``assets``: names for the files in order (default: the symbol column, else the file
    name). ``columns``: {canonical: file column} overrides. ``cleaning``: a ``CleaningPolicy``
    as a mapping. ``report_path``: where the JSON cleaning report is written (the run
    directory by default). ``n_jobs``: files read and cleaned in parallel threads (-1: all
    cores).
    ``encoding``: the text encoding of CSV files. ``decimal``: ``auto`` (sniffed), ``point`` or
    ``comma``. ``calendar``: ``auto`` (inferred per asset), ``24x7``, ``fx`` or ``equity``.
    """

    def __init__(
        self,
        path: str | Sequence[str],
        format: str = "auto",
        assets: Sequence[str] | None = None,
        columns: Mapping[str, str] | None = None,
        cleaning: Mapping[str, Any] | None = None,
        report_path: str | None = "cleaning_report.json",
        n_jobs: int = 1,
        root: str | None = None,
        encoding: str = "utf8",
        decimal: str = "auto",
        calendar: str = "auto",
    ) -> None:
        root = root if root is not None else os.environ.get("PROJECT_ROOT")
        self.paths = expand_paths(path if isinstance(path, str) else list(path), root)
        self.format = format
        self.assets = None if assets is None else [str(a) for a in assets]
        if self.assets is not None and len(self.assets) != len(self.paths):
            raise DataError(
                f"data.assets names {len(self.assets)} assets for {len(self.paths)} "
                f"files {[str(p) for p in self.paths]}"
            )
        self.columns = {str(k): str(v) for k, v in (columns or {}).items()}
        self.policy = CleaningPolicy(**dict(cleaning or {}))
        self.report_path = report_path
        self.n_jobs = int(n_jobs)
        self.encoding = str(encoding)
        decimal_mark(decimal)  # a bad value stops here, naming data.decimal
        self.decimal = str(decimal)
        self.calendar = check_setting(calendar)
        self.report: CleaningReport | None = None

    def __repr__(self) -> str:
        return f"FileSource({len(self.paths)} file(s), mode={self.policy.mode})"

    def fingerprint(self) -> dict[str, Any]:
        """What the bars depend on: each file's content digest and every loading setting.

        The feature cache keys on this, so an edited file or setting misses the cache."""
        digests = []
        for p in self.paths:
            with open(p, "rb") as fh:
                digests.append(hashlib.file_digest(fh, "blake2b").hexdigest())
        return {
            "files": digests,
            "paths": [str(p) for p in self.paths],  # asset names come from file names
            "encoding": self.encoding,
            "decimal": self.decimal,
            "calendar": self.calendar,
            "format": self.format,
            "assets": self.assets,
            "columns": self.columns,
            "cleaning": dataclasses.asdict(self.policy),
            "data_code": DATA_CODE_VERSION,
        }

    def restore_report(self, report: dict[str, Any]) -> None:
        """Write a report kept from an earlier run of the same input (a feature-cache hit)."""
        self.report = CleaningReport.from_dict(report)
        if self.report_path:
            path = self.report.write(self.report_path)
            log.info("%s\ncleaning report (cached): %s", self.report.describe(), path.resolve())

    def generate(self) -> Bars:
        """Read, clean and align every file; write the cleaning report; return the bars."""
        names = self.assets or [asset_from_path(p) for p in self.paths]
        settings = (self.encoding, self.decimal, self.calendar)
        jobs = [
            delayed(load_assets)(p, self.format, self.columns, self.policy, n, *settings)
            for p, n in zip(self.paths, names, strict=True)
        ]
        n_jobs = min(self.n_jobs if self.n_jobs > 0 else os.cpu_count() or 1, len(jobs))
        # threads: pyarrow parses and numpy cleans with the GIL released, and nothing has to
        # be pickled back (loky processes measured slower on 2 cores)
        results = Parallel(n_jobs=n_jobs, prefer="threads")(jobs)
        report = CleaningReport(self.policy.mode)
        series: list[AssetSeries] = []
        for found, part in results:
            report.files.extend(part.files)
            report.defects.extend(part.defects)
            series.extend(found)
        if self.assets is not None:  # names from the config win over symbol columns
            if len(series) != len(self.assets):
                raise DataError(
                    f"data.assets names {len(self.assets)} assets, but the files hold "
                    f"{len(series)} ({[s.asset for s in series]}); drop data.assets"
                )
            for s, name in zip(series, self.assets, strict=True):
                s.asset = name
        bars = align_assets(series, self.policy, report)
        self.report = report
        if self.report_path:
            path = report.write(self.report_path)
            log.info("%s\ncleaning report: %s", report.describe(), path.resolve())
        return bars


class FileMarket(MarketPipeline):
    """``MarketPipeline`` over OHLCV files, configured flat (``data.path``, ``data.cleaning``).

    ``test_path`` (optional) holds a separate held-out period, e.g. a later year that does not
    touch the history: it becomes the whole test split, with its own feature warm-up and the
    scaler fitted on the training split; the history in ``path`` is then split into train and
    val only. Each source writes its cleaning report (``report_path``, and the same name with
    ``_test`` for the test period).
    """

    def __init__(
        self,
        path: str | Sequence[str],
        test_path: str | Sequence[str] | None = FileMarketSchema.test_path,
        format: str = FileMarketSchema.format,
        assets: Sequence[str] | None = FileMarketSchema.assets,
        test_assets: Sequence[str] | None = FileMarketSchema.test_assets,
        columns: Mapping[str, str] | None = None,
        cleaning: Mapping[str, Any] | None = None,
        report_path: str | None = FileMarketSchema.report_path,
        n_jobs: int = FileMarketSchema.n_jobs,
        encoding: str = FileMarketSchema.encoding,
        decimal: str = FileMarketSchema.decimal,
        calendar: str = FileMarketSchema.calendar,
        **pipeline: Any,
    ) -> None:
        common = dict(
            format=format,
            columns=columns,
            cleaning=cleaning,
            n_jobs=n_jobs,
            encoding=encoding,
            decimal=decimal,
            calendar=calendar,
        )
        source = FileSource(path, assets=assets, report_path=report_path, **common)
        test_source = None
        if test_path is not None:
            test_report = None
            if report_path:
                p = Path(report_path)
                test_report = str(p.with_name(f"{p.stem}_test{p.suffix}"))
            test_source = FileSource(
                test_path, assets=test_assets or assets, report_path=test_report, **common
            )
        super().__init__(source=source, test_source=test_source, n_jobs=n_jobs, **pipeline)
