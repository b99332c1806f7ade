"""What cleaning found and did, one entry per rule and file, written as JSON to the run directory.

Why: real OHLCV files are dirty. Every repair is a line in this report (rule, file, the rows it
touched, what was done), so a researcher can see exactly how their data was changed; in
``strict`` mode the first defect is refused instead, with a ``DataError`` naming the file, the
row and the problem.

Rows are file line numbers (1-based, the header is line 1) for CSV, and 1-based row numbers
for Parquet, so ``sed -n <row>p file.csv`` shows the offending line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adan.files import atomic_write_text

MAX_LISTED_ROWS = 20  # rows listed per defect; the count is always complete


class DataError(ValueError):
    """Input data that cannot be used as it is; the message names the file, row and problem."""


@dataclass
class Defect:
    """One rule that fired on one file (or on the aligned assets when ``file`` is empty)."""

    rule: str
    file: str
    asset: str
    count: int
    action: str
    rows: list[int] = field(default_factory=list)  # the first MAX_LISTED_ROWS rows
    detail: str = ""


class CleaningReport:
    """Collects defects while data is loaded and cleaned.

    ``mode`` is ``"repair"`` (fix and record) or ``"strict"`` (raise on the first defect).
    """

    MODES = ("repair", "strict")

    def __init__(self, mode: str = "repair") -> None:
        if mode not in self.MODES:
            raise DataError(f"data.cleaning.mode must be 'repair' or 'strict', got {mode!r}")
        self.mode = mode
        self.defects: list[Defect] = []
        self.files: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}

    def defect(
        self,
        rule: str,
        file: str,
        asset: str,
        rows: np.ndarray | list[int],
        action: str,
        detail: str = "",
        count: int | None = None,
    ) -> None:
        """Record that ``rule`` fired on ``rows`` and what repair mode did about it.

        ``count`` overrides the number of rows for a defect that is not about file rows (bars
        dropped on the common clock). In strict mode this raises a ``DataError`` instead.
        """
        rows = [int(r) for r in np.asarray(rows, dtype=np.int64).ravel()]
        if not rows and not count:
            return
        if self.mode == "strict":
            where = f"row {rows[0]}" if rows else "whole file"
            raise DataError(
                f"{file or asset}: {where}: {rule}: {detail or action} "
                f"({count or len(rows)} row(s) in all). Fix the file, or set "
                "data.cleaning.mode=repair to repair it and list every fix in the "
                "cleaning report."
            )
        n = len(rows) if count is None else int(count)
        self.defects.append(Defect(rule, file, asset, n, action, rows[:MAX_LISTED_ROWS], detail))

    def note_file(self, **info: Any) -> None:
        """What was read from one file: path, asset, rows, the columns used and ignored."""
        self.files.append(info)

    def count(self, rule: str) -> int:
        """Total rows flagged by ``rule`` over all files."""
        return sum(d.count for d in self.defects if d.rule == rule)

    @property
    def rules(self) -> list[str]:
        return sorted({d.rule for d in self.defects})

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "files": self.files,
            "defects": [asdict(d) for d in self.defects],
            "summary": dict(self.summary, rules_fired=self.rules, defects=len(self.defects)),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleaningReport:
        """The inverse of ``to_dict``."""
        report = cls(data["mode"])
        report.files = list(data["files"])
        report.defects = [Defect(**d) for d in data["defects"]]
        report.summary = {
            k: v for k, v in data["summary"].items() if k not in ("rules_fired", "defects")
        }
        return report

    def write(self, path: str | Path) -> Path:
        """Write the report as JSON (atomically: a partial report is never left behind)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str))

    def describe(self) -> str:
        """A short multi-line text for the log: one line per defect, then how files were read
        when it was not plain CSV (gzip, decimal comma, thousands) and the calendar."""
        if not self.defects:
            lines = ["cleaning: no defects found"]
        else:
            lines = [f"cleaning ({self.mode}): {len(self.defects)} defect(s)"]
        for d in self.defects:
            where = f"{Path(d.file).name}" if d.file else d.asset
            lines.append(f"  {where}: {d.rule} x{d.count} -> {d.action}")
        for info in self.files:
            dialect = info.get("dialect") or {}
            how = []
            if dialect.get("compression"):
                how.append(f"{dialect['compression']}-compressed")
            if dialect.get("decimal") == ",":
                how.append("decimal comma")
            if dialect.get("thousands"):
                how.append(f"thousands separator {dialect['thousands']!r}")
            if how:
                lines.append(f"  {Path(info['path']).name}: read as {', '.join(how)}")
        calendar = self.summary.get("calendar")
        if calendar:
            assets = calendar["assets"]
            closures = sum(a["closures"] for a in assets.values())
            reasons = "; ".join(f"{k}: {a['reason']}" for k, a in list(assets.items())[:3])
            more = f"; {len(assets) - 3} more in the report" if len(assets) > 3 else ""
            line = f"  calendar {calendar['calendar']} ({reasons}{more})"
            if closures:
                line += f"; {closures} market closure(s), not gaps"
            lines.append(line)
        return "\n".join(lines)
