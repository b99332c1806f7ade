"""What a CSV path really holds and how its text is written, sniffed from the file's head.

Why: files arrive gzip-compressed under a ``.csv`` name, as a zip or Parquet file renamed
``.csv``, or written the European way (``1.234,56``, ``;``-delimited) or with quoted thousands
(``"1,234.56"``). The first 64 KiB tell which: compression and binary content by their first
bytes, the delimiter and header line by how the lines split, the decimal mark by how the
numbers are written. The loader then streams the rest of the file with those settings, and a
file that is not text is refused with what it looks like, not with advice about encodings.

Numbers written with a decimal comma or thousands separators are read as text and converted
here with one pattern per decimal mark (``parse_numbers``): a field that does not match it is
reported like any other text in a number column, never half-parsed.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adan.data.report import DataError

HEAD_BYTES = 1 << 16
# (first bytes, what the file is, what to do); gzip is not here: it is read, not refused
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (
        b"PK\x03\x04",
        "a zip archive",
        "unzip it and point data.path at the CSV inside (an .xlsx workbook is a zip as well: "
        "save it as CSV)",
    ),
    (b"PK\x05\x06", "an empty zip archive", "unzip it and point data.path at the CSV inside"),
    (b"PAR1", "a Parquet file", "name it .parquet or set data.format=parquet"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "point data.path at the CSV file"),
    (b"\xff\xd8\xff", "a JPEG image", "point data.path at the CSV file"),
    (b"GIF8", "a GIF image", "point data.path at the CSV file"),
    (b"%PDF", "a PDF document", "point data.path at the CSV file"),
    (b"BZh", "bzip2-compressed data", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "xz-compressed data", "decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", "decompress it first (unzstd)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive", "extract the CSV from it first"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "a legacy Office document (.xls)",
        "save it as CSV first",
    ),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV first"),
    (b"ARROW1", "an Arrow/Feather file", "convert it to Parquet or CSV first"),
    (b"\x93NUMPY", "a NumPy array file", "write the bars as CSV or Parquet first"),
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\x0b\x0c\x1a\x1b")  # control bytes that text may hold


def is_gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


def _wide_encoding(encoding: str) -> bool:
    try:
        name = codecs.lookup(encoding).name
    except LookupError as err:
        raise DataError(f"data.encoding={encoding!r} is not a known text encoding") from err
    return name.startswith(("utf-16", "utf-32"))


def utf16_text(head: bytes) -> bool:
    """UTF-16 text: a byte-order mark, or ASCII with a NUL in every other byte."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    sample = head[:8192]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    return len(sample) >= 64 and min(even, odd) == 0 and max(even, odd) > 0.9 * (len(sample) // 2)


def binary_kind(head: bytes) -> tuple[str, str] | None:
    """(what the bytes look like, what to do) if ``head`` is not text, else None.

    Known signatures first (zip, Parquet, images, other compressions); then bytes that text
    never holds: a NUL, or many control characters. UTF-16 text is not binary (see
    ``utf16_text``)."""
    for magic, what, todo in _SIGNATURES:
        if head.startswith(magic):
            if magic == b"BZh" and not head[3:4].isdigit():
                continue
            return what, todo
    if not head or utf16_text(head):
        return None
    sample = head[:8192]
    odd = [i for i, b in enumerate(sample) if b < 0x20 and b not in _TEXT_CONTROLS]
    if odd and (sample[odd[0]] == 0 or len(odd) > 0.05 * len(sample)):
        at = sample.find(b"\x00") if b"\x00" in sample else odd[0]
        return f"binary data (byte {at} is {sample[at]:#04x}, which text never holds)", (
            "point data.path at a text CSV file, or at a Parquet file with data.format=parquet"
        )
    return None


def describe(head: bytes) -> str:
    """A few words on what ``head`` looks like: gzip, a known binary format, or text."""
    if is_gzip(head):
        return "gzip-compressed data"
    kind = binary_kind(head)
    return kind[0] if kind else "text"


def refuse_binary(path: Path, head: bytes, encoding: str, inside: str = "") -> None:
    """Raise a ``DataError`` naming ``path`` and what it looks like if ``head`` is not text in
    ``encoding`` (UTF-16 text read as another encoding gets the encoding to set)."""
    if _wide_encoding(encoding):
        return
    kind = binary_kind(head)
    if kind is not None:
        what, todo = kind
        raise DataError(f"{path}: not a text/CSV file: {inside}it looks like {what}; {todo}")
    if utf16_text(head):
        raise DataError(
            f"{path}: UTF-16 text (a NUL in every other byte, or a UTF-16 byte-order mark), "
            f"not {encoding}; set data.encoding=utf-16"
        )


def read_head(path: Path) -> tuple[bytes, str | None]:
    """The first ``HEAD_BYTES`` of the file's text (decompressed) and its compression."""
    with open(path, "rb") as fh:
        raw = fh.read(HEAD_BYTES)
    if not is_gzip(raw):
        return raw, None
    try:
        with gzip.open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}: gzip-compressed (by its first bytes) but cannot be decompressed ({err}); "
            "the file may be truncated: download it again"
        ) from err
    return head, "gzip"


def open_stream(path: Path, compression: str | None) -> pa.NativeFile:
    """The file as a pyarrow input stream, decompressed by content, not by its name."""
    return pa.input_stream(str(path), compression=compression)


def split_lines(text: str) -> list[str]:
    """Lines as pyarrow counts them (``\\n``, ``\\r\\n`` or ``\\r``), so indices are lines."""
    return re.split(r"\r\n|\n|\r", text)


def _fields(line: str, delimiter: str) -> int:
    """Fields of one line, quotes honoured (``"1,234.56"`` is one field)."""
    return len(next(csv.reader([line], delimiter=delimiter), [""]))


def sniff_layout(lines: Sequence[str]) -> tuple[str, int]:
    """(delimiter, lines before the header) from the head's lines.

    The delimiter is the one of ``, ; tab |`` that splits the last 20 of the first 50 lines
    into the most fields consistently (quotes honoured); ties go to the one whose header comes
    first: in ``timestamp;open`` over ``1,5;2,5`` both split the rows in two, but only ``;``
    splits the header. Lines before the first line with that many fields (a title or URL line,
    as CryptoDataDownload files have) are skipped."""
    lines = list(lines[:50])
    filled = [ln for ln in lines if ln.strip()]
    best, fields, header = ",", 1, 0
    for delim in (",", ";", "\t", "|"):
        counts = [_fields(ln, delim) for ln in filled[-20:]]
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        first = next((i for i, ln in enumerate(lines) if _fields(ln, delim) == mode), 0)
        if (mode, -first) > (fields, -header):
            best, fields, header = delim, mode, first
    return best, header


# ---------------------------------------------------------------------------- decimals
DECIMAL_SETTINGS = {"auto": None, "point": ".", ".": ".", "comma": ",", ",": ","}
_NUMBER = {
    ".": r"^[+-]?(?:(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$",
    ",": r"^[+-]?(?:(?:\d+|\d{1,3}(?:[. \x{00a0}\x{202f}]\d{3})+)(?:,\d*)?|,\d+)(?:[eE][+-]?\d+)?$",
}
_SPECIAL = r"^[+-]?(?i:inf|infinity|nan)$"  # read, then judged by the cleaning rules
_TOKEN = re.compile(r"^[+-]?[\d.,]*\d[\d.,]*(?:[eE][+-]?\d+)?$")


def decimal_mark(setting: str | None) -> str | None:
    """``data.decimal`` -> ``"."``, ``","`` or None (auto); a ``DataError`` names the key."""
    key = "auto" if setting is None else str(setting).strip().lower()
    if key not in DECIMAL_SETTINGS:
        raise DataError(
            f"data.decimal must be auto, point or comma, got {setting!r} (point: 1234.56 or "
            '"1,234.56"; comma: 1234,56 or 1.234,56)'
        )
    return DECIMAL_SETTINGS[key]


def _evidence(token: str) -> str | None:
    """Which decimal mark a number token proves: ``"."``, ``","``, ``"?"`` (n,nnn or n.nnn,
    either way) or None (no separator)."""
    body = re.sub(r"[eE][+-]?\d+$", "", token.lstrip("+-"))
    dots, commas = body.count("."), body.count(",")
    if dots and commas:
        return "." if body.rfind(".") > body.rfind(",") else ","
    if not dots and not commas:
        return None
    sep = "." if dots else ","
    if dots + commas > 1:  # 1.234.567: the repeated one groups thousands
        return "," if sep == "." else "."
    whole, frac = body.split(sep)
    if len(frac) == 3 and 1 <= len(whole) <= 3 and not whole.startswith("0"):
        return "?"
    return sep


def sniff_decimal(
    path: Path,
    lines: Sequence[str],
    first_data: int,
    delimiter: str,
    columns: Sequence[int],
    forced: str | None = None,
) -> tuple[str, str | None]:
    """(decimal mark, thousands separator or None) from the number columns of the head.

    Each number proves a mark when it can be read only one way: ``1234,5``, ``1.234,56`` or
    ``1.234.567`` prove a decimal comma; ``1234.5``, ``1,234.56`` or ``1,234,567`` a decimal
    point. ``1,234`` and ``1.234`` prove nothing. Both proven: a ``DataError``. Neither: a point,
    unless some number is ``n,nnn`` (a decimal comma or a thousands comma, one cannot tell),
    which is a ``DataError`` asking for ``data.decimal``. A ``forced`` mark skips the judging;
    the thousands separator is then whichever other separator the numbers hold."""
    proof: dict[str, tuple[int, str]] = {}  # mark -> (line, token) of its first proof
    unsure: tuple[int, str] | None = None
    seps: set[str] = set()
    rows = csv.reader(lines[first_data:], delimiter=delimiter)
    for offset, fields in enumerate(rows):
        line = first_data + offset + 1
        for c in columns:
            token = fields[c].strip() if c < len(fields) else ""
            if not _TOKEN.match(token):
                continue
            seps.update(ch for ch in token if ch in ".,")
            mark = _evidence(token)
            if mark == "?" and "," in token and unsure is None:
                unsure = (line, token)
            elif mark in (".", ","):
                proof.setdefault(mark, (line, token))
    if forced is not None:
        mark = forced
    elif len(proof) == 2:
        (lp, tp), (lc, tc) = proof["."], proof[","]
        raise DataError(
            f"{path}: numbers are written with a decimal point (line {lp}: {tp!r}) and with a "
            f"decimal comma (line {lc}: {tc!r}); set data.decimal=point or data.decimal=comma"
        )
    elif proof:
        mark = next(iter(proof))
    elif unsure is not None:
        line, token = unsure
        raise DataError(
            f"{path}: cannot tell whether ',' in {token!r} (line {line}) is a decimal comma or "
            "a thousands separator; set data.decimal=comma (1,234 = 1.234) or "
            "data.decimal=point (1,234 = 1234)"
        )
    else:
        mark = "."
    other = "," if mark == "." else "."
    return mark, other if other in seps else None


def parse_numbers(col: pa.Array | pa.ChunkedArray, mark: str) -> tuple[np.ndarray, np.ndarray]:
    """Text numbers -> float64 (NaN for null or text), and the indices that were text.

    A field must match the number pattern of ``mark`` (optional sign, digits optionally grouped
    by the thousands separators of that mark, the mark, an exponent; or inf/nan), else it is
    text: ``1.5`` in a decimal-comma file is not silently read as 15."""
    s = pc.utf8_trim_whitespace(col.cast(pa.string()))
    ok = pc.or_(pc.match_substring_regex(s, _NUMBER[mark]), pc.match_substring_regex(s, _SPECIAL))
    if mark == ",":
        s = pc.replace_substring(
            pc.replace_substring_regex(s, r"[. \x{00a0}\x{202f}]", ""), ",", "."
        )
    else:
        s = pc.replace_substring(s, ",", "")
    out = pc.cast(pc.if_else(ok, s, pa.scalar(None, pa.string())), pa.float64())
    values = np.asarray(out.to_numpy(zero_copy_only=False), dtype=np.float64)
    text = pc.and_(pc.is_valid(col), pc.invert(pc.fill_null(ok, False)))
    return values, np.flatnonzero(np.asarray(text.to_numpy(zero_copy_only=False), dtype=bool))
