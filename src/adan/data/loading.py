"""Read OHLCV files (CSV or Parquet) into plain arrays, streaming, with columns found by alias.

Why streaming: a user's file may be larger than memory allows twice over. The rows are counted
first (a fast byte scan for CSV, the footer for Parquet), the output arrays are allocated once,
and record batches from pyarrow are copied into them, so peak memory is the final arrays plus
a few small blocks, never a DataFrame of everything. The blocks are small on purpose: pyarrow's
streaming CSV reader decodes some 30 blocks ahead of the consumer, and Parquet pre-buffers
whole row groups unless told not to (``experiments/bench_data.py`` measures both).

Columns are matched case-insensitively after normalising spaces and dashes to underscores
(``Volume BTC`` -> ``volume_btc``), against the aliases in ``COLUMN_ALIASES``; a ``columns``
mapping {canonical name: file column} overrides them. Timestamps are parsed by
``adan.data.timestamps``; nothing here judges the values (that is ``cleaning``'s job).

What a CSV file is and how it is written (compression, delimiter, header line, decimal mark,
thousands separator) is sniffed from its head by ``adan.data.dialect`` and kept in
``RawTable.dialect``, which the cleaning report lists per file.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import adan.data.dialect as dl
from adan.data.report import DataError

log = logging.getLogger(__name__)

REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    # earlier aliases win when a file has several (Binance dumps carry both `unix` and `date`)
    "timestamp": (
        "timestamp",
        "unix",
        "open_time",
        "opentime",
        "time",
        "date",
        "datetime",
        "date_time",
        "ts",
    ),
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price"),
    "volume": ("volume", "vol", "v", "base_volume", "volume_base"),
    "symbol": ("symbol", "ticker", "asset", "pair", "instrument"),
}
# `Volume USDT`-style columns are quote volume; `Volume BTC` is the base volume we want.
QUOTE_CURRENCIES = ("usdt", "usd", "busd", "usdc", "tusd", "eur", "quote")
# pyarrow's CSV reader keeps ~30 blocks in flight (read and decoded ahead of the consumer):
# 16 MiB blocks cost ~1 GB on a large file, 512 KiB blocks ~40 MB, and read as fast.
CSV_BLOCK_BYTES = 1 << 19
PARQUET_BATCH_ROWS = 1 << 16
PARQUET_BUFFER_BYTES = 1 << 20  # column chunks streamed through a buffer, not read whole


def normalise_name(name: str) -> str:
    """``" Volume BTC"`` -> ``"volume_btc"``: lower case, spaces and dashes to underscores."""
    return "_".join(str(name).strip().lower().replace("-", " ").split())


def expand_paths(path: str | Sequence[str], root: str | Path | None = None) -> list[Path]:
    """One path, a glob, or a list of either -> existing files, sorted within each glob.

    Relative paths are tried as given, then under ``root`` (the project root when run by Hydra,
    whose working directory is the run directory).
    """
    items = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not items:
        raise DataError("data.path is empty: give a file, a glob or a list of files")
    out: list[Path] = []
    for item in items:
        item = os.path.expanduser(str(item))
        candidates = [item]
        if root is not None and not os.path.isabs(item):
            candidates.append(str(Path(root) / item))
        for cand in candidates:
            matches = sorted(glob.glob(cand)) if glob.has_magic(cand) else [cand]
            matches = [m for m in matches if os.path.isfile(m)]
            if matches:
                out.extend(Path(m) for m in matches)
                break
        else:
            raise DataError(
                f"data.path: no file matches {item!r} (looked in {os.getcwd()}"
                + (f" and {root}" if root is not None else "")
                + "); check the path or the glob"
            )
    return out


def file_format(path: Path, fmt: str = "auto") -> str:
    """``csv`` or ``parquet``, from ``fmt`` or the file name."""
    if fmt != "auto":
        if fmt not in ("csv", "parquet"):
            raise DataError(f"data.format must be auto, csv or parquet, got {fmt!r}")
        return fmt
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".txt", ".tsv", ".gz")):  # .gz: gzip-compressed text
        return "csv"
    raise DataError(f"{path}: cannot tell the format from the name; set data.format=csv or parquet")


def resolve_columns(
    path: Path, names: Sequence[str], overrides: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Map canonical names (timestamp, open, ..., optional symbol) to the file's columns.

    Returns (mapping, ignored columns). Raises ``DataError`` naming the file, the missing
    column, the columns the file has, and how to map them.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(COLUMN_ALIASES))
    if unknown:
        raise DataError(
            f"data.columns has unknown key {unknown[0]!r}; keys: {sorted(COLUMN_ALIASES)}"
        )
    by_norm: dict[str, str] = {}
    for n in names:
        by_norm.setdefault(normalise_name(n), n)
    mapping: dict[str, str] = {}
    for canon, col in overrides.items():
        if col not in names and normalise_name(col) not in by_norm:
            raise DataError(
                f"{path}: data.columns.{canon}={col!r} is not a column of the file; "
                f"its columns are {list(names)}"
            )
        mapping[canon] = col if col in names else by_norm[normalise_name(col)]
    for canon, aliases in COLUMN_ALIASES.items():
        if canon in mapping:
            continue
        hit = next((by_norm[a] for a in aliases if a in by_norm), None)
        if hit is None and canon == "volume":
            hit = next(
                (
                    orig
                    for norm, orig in by_norm.items()
                    if norm.startswith("volume_") and not norm.endswith(QUOTE_CURRENCIES)
                ),
                None,
            )
        if hit is not None:
            mapping[canon] = hit
    # a date column and a separate time-of-day column (MetaTrader-style exports): join them
    chosen = normalise_name(mapping.get("timestamp", ""))
    pair = "date" in by_norm and "time" in by_norm
    if "timestamp" not in overrides and chosen in ("date", "time") and pair:
        mapping["timestamp"], mapping["time"] = by_norm["date"], by_norm["time"]
    missing = [c for c in REQUIRED if c not in mapping]
    if missing:
        raise DataError(
            f"{path}: missing required column {missing[0]!r} (needed: {list(REQUIRED)}); the "
            f"file has {list(names)}. Map it in the data config (columns: {{{missing[0]}: "
            f"<column name>}}) or on the command line: +data.columns.{missing[0]}=<column name>"
        )
    used = set(mapping.values())
    return mapping, [n for n in names if n not in used]


@dataclass
class RawTable:
    """The columns of one file, uncleaned: what the loader read, nothing judged yet.

    ``timestamp`` is float64 epochs when the column is numeric, else an object array of
    strings. Prices and volume are float64 with NaN where a field was empty, NULL or not a
    number. ``first_row`` converts array index i to the file row ``first_row + i``.
    """

    path: Path
    columns: dict[str, str]
    ignored: list[str]
    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    symbol: np.ndarray | None = None  # object array of strings, long files only
    first_row: int = 2  # CSV: the line after the header
    unparsed: dict[str, np.ndarray] = field(default_factory=dict)  # column -> bad row indices
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, text), skipped
    # CSV: delimiter, skip (lines before the header), encoding, decimal, thousands, compression
    dialect: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.open)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """File rows (lines, for CSV) of array indices ``idx``, counting skipped lines."""
        idx = np.asarray(idx, dtype=np.int64)
        if not self.malformed:
            return idx + self.first_row
        lines = np.array(sorted(line for line, _ in self.malformed), dtype=np.int64)
        at = lines - self.first_row - np.arange(len(lines))  # array index each skip precedes
        return idx + self.first_row + np.searchsorted(at, idx, side="right")


_NUMERIC = ("open", "high", "low", "close", "volume")
# timestamps: integer epochs stay exact; float epochs; anything else as text
_TS_DTYPES = {"int": np.int64, "float": np.float64, "text": object}
_TS_ARROW = {"int": pa.int64(), "float": pa.float64(), "text": pa.string()}


def _ts_kind(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind) or pa.types.is_timestamp(kind):
        return "int"
    return "float" if pa.types.is_floating(kind) else "text"


def read_table(
    path: Path,
    fmt: str = "auto",
    columns: Mapping[str, str] | None = None,
    encoding: str = "utf8",
    decimal: str | None = "auto",
) -> RawTable:
    """Read one CSV or Parquet file's OHLCV (+ timestamp, optional symbol) columns.

    CSV: gzip compression (by content, whatever the name), the delimiter, any lines before the
    header and the decimal mark (``decimal``: auto, point or comma) are detected; a file that
    is not text is refused; rows with the wrong number of fields are skipped and listed in
    ``RawTable.malformed``."""
    kind = file_format(path, fmt)
    mark = dl.decimal_mark(decimal)
    try:
        if os.path.getsize(path) == 0:
            raise DataError(f"{path}: the file is empty; expected a header and OHLCV rows")
        if kind == "parquet":
            table = _read_parquet(path, columns)
        else:
            table = _read_csv(path, columns, encoding, mark)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as err:
        hint = ""
        if kind == "csv":
            with open(path, "rb") as fh:
                if dl.is_gzip(fh.read(2)):
                    hint = "; the gzip data may be truncated or corrupt: download the file again"
        raise DataError(f"{path}: cannot be read as {kind}: {err}{hint}") from err
    # pyarrow's allocator keeps freed blocks for reuse; hand them back before cleaning runs
    pa.default_memory_pool().release_unused()
    return table


def _count_csv_rows(path: Path, compression: str | None) -> int:
    """Newlines in the file (an upper bound on data rows + header), by a fast byte scan."""
    if compression is not None:
        return 0  # unknown: the arrays grow as batches arrive
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


class _Columns:
    """Output arrays allocated once and filled batch by batch (grown only if under-counted)."""

    def __init__(self, capacity: int, ts_kind: str, with_symbol: bool) -> None:
        cap = max(capacity, 1)
        self.n = 0
        self.ts = np.empty(cap, dtype=_TS_DTYPES[ts_kind])
        self.num = {k: np.empty(cap, dtype=np.float64) for k in _NUMERIC}
        self.symbol = np.empty(cap, dtype=object) if with_symbol else None

    def _grow(self, need: int) -> None:
        cap = max(need, 2 * len(self.ts))
        self.ts = np.resize(self.ts, cap)
        self.num = {k: np.resize(v, cap) for k, v in self.num.items()}
        if self.symbol is not None:
            self.symbol = np.resize(self.symbol, cap)

    def add(self, ts: np.ndarray, num: dict[str, np.ndarray], symbol: np.ndarray | None) -> None:
        k = len(ts)
        if self.n + k > len(self.ts):
            self._grow(self.n + k)
        s = slice(self.n, self.n + k)
        self.ts[s] = ts
        for name, arr in num.items():
            self.num[name][s] = arr
        if self.symbol is not None and symbol is not None:
            self.symbol[s] = symbol
        self.n += k

    def table(self, path: Path, mapping: dict, ignored: list[str], first_row: int) -> RawTable:
        n = self.n
        if n == 0:
            raise DataError(f"{path}: no data rows after the header")
        return RawTable(
            path=path,
            columns=mapping,
            ignored=ignored,
            timestamp=self.ts[:n],
            symbol=None if self.symbol is None else self.symbol[:n],
            first_row=first_row,
            **{k: v[:n] for k, v in self.num.items()},
        )


def _to_float(col: pa.ChunkedArray | pa.Array, decimal: str = ".") -> tuple[np.ndarray, np.ndarray]:
    """A column as float64 (NaN for null or text), and the indices that were text, not null.

    Text columns are numbers written with ``decimal`` and perhaps thousands separators (see
    ``adan.data.dialect.parse_numbers``), or text that is not a number."""
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64), np.empty(0, int)
    return dl.parse_numbers(col, decimal)


def _batch_arrays(
    batch: pa.RecordBatch,
    mapping: dict[str, str],
    ts_kind: str,
    offset: int,
    bad: dict,
    decimal: str = ".",
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None]:
    cols = {name: batch.column(batch.schema.get_field_index(col)) for name, col in mapping.items()}
    num = {}
    for name in _NUMERIC:
        num[name], text = _to_float(cols[name], decimal)
        if len(text):
            bad.setdefault(name, []).append(text + offset)
    ts_col = cols["timestamp"]
    if "time" in cols:  # date + time of day, as one string
        ts_col = pa.compute.binary_join_element_wise(
            ts_col.cast(pa.string()), cols["time"].cast(pa.string()), " "
        )
    if ts_kind == "text":
        ts = np.asarray(ts_col.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    else:
        ts = np.asarray(ts_col.to_numpy(zero_copy_only=False), dtype=_TS_DTYPES[ts_kind])
    sym = None
    if "symbol" in cols:
        sym = np.asarray(cols["symbol"].cast(pa.string()).to_numpy(zero_copy_only=False), object)
    return ts, num, sym


def _sniff_csv(path: Path, encoding: str) -> tuple[list[str], dict[str, Any]]:
    """The head's lines and the dialect sniffed from them: compression (gzip by its first
    bytes, whatever the name), delimiter and lines before the header (see
    ``adan.data.dialect.sniff_layout``). A file that is not text is refused here."""
    head, compression = dl.read_head(path)
    dl.refuse_binary(path, head, encoding, "after gzip decompression, " if compression else "")
    if len(head) == dl.HEAD_BYTES:
        head = head[: head.rfind(b"\n") + 1] or head  # whole lines only
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not {encoding} text (byte {err.start} of the "
            f"{'decompressed ' if compression else ''}file); set data.encoding, "
            "e.g. data.encoding=latin-1"
        ) from err
    except LookupError as err:
        raise DataError(f"data.encoding={encoding!r} is not a known text encoding") from err
    lines = dl.split_lines(text.lstrip("\ufeff"))
    if not any(ln.strip() for ln in lines[:50]):
        raise DataError(f"{path}: the file is empty; expected a header and OHLCV rows")
    delimiter, skip = dl.sniff_layout(lines)
    if compression and not path.name.lower().endswith(".gz"):
        log.info("%s: gzip-compressed (by its first bytes); read decompressed", path)
    dialect = {"delimiter": delimiter, "skip": skip, "encoding": encoding}
    return lines, dict(dialect, compression=compression)


def _read_csv(
    path: Path,
    overrides: Mapping[str, str] | None,
    encoding: str = "utf8",
    decimal: str | None = None,
) -> RawTable:
    lines, dialect = _sniff_csv(path, encoding)
    read = pacsv.ReadOptions(
        block_size=CSV_BLOCK_BYTES, skip_rows=dialect["skip"], encoding=encoding
    )
    parse = pacsv.ParseOptions(
        delimiter=dialect["delimiter"], invalid_row_handler=lambda row: "skip"
    )
    try:
        with dl.open_stream(path, dialect["compression"]) as stream:
            probe = pacsv.open_csv(stream, read_options=read, parse_options=parse)
            schema = probe.schema
            probe.close()  # it reads ahead in the background: free its blocks before streaming
    except pa.ArrowInvalid as err:
        if "Empty CSV file" in str(err):
            raise DataError(f"{path}: the file is empty; expected a header and OHLCV rows") from err
        raise
    names = schema.names
    mapping, ignored = resolve_columns(path, names, overrides)
    numbers = [names.index(mapping[k]) for k in _NUMERIC]
    mark, thousands = dl.sniff_decimal(
        path, lines, dialect["skip"] + 1, dialect["delimiter"], numbers, decimal
    )
    dialect.update(decimal=mark, thousands=thousands)
    ts_kind = "text" if "time" in mapping else _ts_kind(schema.field(mapping["timestamp"]).type)
    # Numbers are read as numbers when the first block says they are; a later block with text
    # in them makes pyarrow fail, and the file is then read again as text (the timestamps
    # too, as strings: the parser reads epochs stored as text, and numbers are converted by
    # the dialect, thousands separators and all). Numbers with thousands separators in the
    # head are read as text from the start; a decimal comma alone pyarrow reads as numbers.
    plain = thousands is None
    types = {mapping[k]: pa.float64() if plain else pa.string() for k in _NUMERIC}
    types[mapping["timestamp"]] = _TS_ARROW[ts_kind]
    for extra in ("symbol", "time"):
        if extra in mapping:
            types[mapping[extra]] = pa.string()
    try:
        return _stream_csv(path, mapping, ignored, types, ts_kind, dialect)
    except pa.ArrowInvalid:
        text_types = {c: pa.string() for c in types}
        return _stream_csv(path, mapping, ignored, text_types, "text", dialect)


def _stream_csv(
    path: Path,
    mapping: dict[str, str],
    ignored: list[str],
    types: dict[str, pa.DataType],
    ts_kind: str,
    dialect: dict[str, Any],
    use_threads: bool = True,
) -> RawTable:
    malformed: list[tuple[int | None, str]] = []

    def skip_row(row: Any) -> str:  # a row with the wrong number of fields
        malformed.append((row.number, row.text))
        return "skip"

    convert = pacsv.ConvertOptions(
        column_types=types,
        include_columns=list(dict.fromkeys(mapping.values())),
        strings_can_be_null=True,
        decimal_point=dialect["decimal"],
    )
    out = _Columns(_count_csv_rows(path, dialect["compression"]), ts_kind, "symbol" in mapping)
    bad: dict[str, list] = {}
    with dl.open_stream(path, dialect["compression"]) as stream:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                block_size=CSV_BLOCK_BYTES,
                skip_rows=dialect["skip"],
                encoding=dialect["encoding"],
                use_threads=use_threads,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect["delimiter"],
                ignore_empty_lines=False,  # a blank line stays a row, so row numbers stay lines
                invalid_row_handler=skip_row,
            ),
            convert_options=convert,
        )
        try:
            for batch in reader:
                if _ts_kind(batch.schema.field(mapping["timestamp"]).type) != ts_kind:
                    # numbers in the first block, text later: parse the whole column as text
                    raise pa.ArrowInvalid("timestamp column changes type")
                out.add(*_batch_arrays(batch, mapping, ts_kind, out.n, bad, dialect["decimal"]))
        finally:
            # Stop its background read-ahead before the stream closes: a reader left running
            # after an error (the caller then reads the file again as text) could read from
            # the next stream opened on the same file descriptor, and that read would miss
            # the header.
            reader.close()
    if any(line is None for line, _ in malformed) and use_threads:
        # pyarrow knows the line of a bad row only when parsing on one thread
        return _stream_csv(path, mapping, ignored, types, ts_kind, dialect, use_threads=False)
    table = out.table(path, mapping, ignored, first_row=dialect["skip"] + 2)
    table.unparsed = {k: np.concatenate(v) for k, v in bad.items()}
    table.malformed = [(int(line), text) for line, text in malformed]
    table.dialect = dict(dialect)
    return table


def _read_parquet(path: Path, overrides: Mapping[str, str] | None) -> RawTable:
    with open(path, "rb") as fh:
        head = fh.read(dl.HEAD_BYTES)
    if not head.startswith(b"PAR1"):
        raise DataError(
            f"{path}: not a Parquet file: it looks like {dl.describe(head)}; set "
            "data.format=csv for delimited text (gzip-compressed or not), or point data.path "
            "at the Parquet file"
        )
    # no pre-buffering and a read buffer: pages stream in, never a whole row group at once
    pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
    names = pf.schema_arrow.names
    mapping, ignored = resolve_columns(path, names, overrides)
    ts_field = pf.schema_arrow.field(mapping["timestamp"])
    # A timestamp-typed column becomes int64 ns epochs (UTC, whatever its zone), which the
    # parser's per-row unit detection reads as nanoseconds.
    scale = None
    if pa.types.is_timestamp(ts_field.type):
        scale = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[ts_field.type.unit]
    ts_kind = "text" if "time" in mapping else _ts_kind(ts_field.type)
    out = _Columns(pf.metadata.num_rows, ts_kind, "symbol" in mapping)
    bad: dict[str, list] = {}
    batches = pf.iter_batches(
        batch_size=PARQUET_BATCH_ROWS,
        columns=list(dict.fromkeys(mapping.values())),
        use_threads=False,  # decoding threads each hold a batch; not faster on few cores
    )
    for batch in batches:
        if scale is not None:
            idx = batch.schema.get_field_index(mapping["timestamp"])
            ns = batch.column(idx).cast(pa.int64()).to_numpy(zero_copy_only=False)
            col = pa.array(np.asarray(ns, dtype=np.int64) * scale)
            batch = batch.set_column(idx, mapping["timestamp"], col)
        out.add(*_batch_arrays(batch, mapping, ts_kind, out.n, bad))
    table = out.table(path, mapping, ignored, first_row=1)
    table.unparsed = {k: np.concatenate(v) for k, v in bad.items()}
    return table
