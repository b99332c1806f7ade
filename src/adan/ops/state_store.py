"""The live loop's persisted state: one SQLite file, one transaction per bar.

After every bar, one transaction writes the bar, the order it decided (the *working order*),
the fills of the previous working order, the equity row, the alerts and the whole account
state (book, desk, behaviour engine, risk, alert history, model version, last bar). A
``kill -9`` lands before or after that commit, never inside it, so a restart resumes at the
next unprocessed bar with no bar processed twice and no order lost or duplicated. WAL journal,
``synchronous=FULL``.

Arrays are stored as JSON with base64 payloads (``encode``/``decode``): nothing read back can
run code, unlike a pickle.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY CHECK (id = 1), bar_seq INTEGER,
    bar_time TEXT, payload TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY CHECK (id = 1), payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bars (seq INTEGER PRIMARY KEY, time TEXT NOT NULL UNIQUE,
    filled INTEGER NOT NULL, open TEXT, high TEXT, low TEXT, close TEXT, volume TEXT);
CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, decided_seq INTEGER NOT NULL,
    decided_time TEXT NOT NULL, action TEXT NOT NULL, model INTEGER, status TEXT NOT NULL,
    filled_seq INTEGER, filled_time TEXT);
CREATE TABLE IF NOT EXISTS fills (id INTEGER PRIMARY KEY, order_id INTEGER, seq INTEGER NOT NULL,
    time TEXT NOT NULL, asset TEXT NOT NULL, kind TEXT NOT NULL, units REAL NOT NULL,
    price REAL NOT NULL);
CREATE TABLE IF NOT EXISTS equity (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, equity REAL,
    cash REAL, drawdown REAL, cost REAL, turnover REAL, weights TEXT, holdings TEXT);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, time TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (id INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT
    NULL, activated_seq INTEGER, activated_time TEXT, reason TEXT);
CREATE TABLE IF NOT EXISTS commands (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT
    NULL, queued REAL NOT NULL, applied_seq INTEGER, result TEXT);
"""


def encode(value: Any) -> Any:
    """``value`` (nested dicts, lists, NumPy arrays and scalars) as JSON-able plain values."""
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        return {"__nd__": base64.b64encode(arr.tobytes()).decode(), "dtype": arr.dtype.str,
                "shape": list(arr.shape)}  # fmt: skip
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value: Any) -> Any:
    """The inverse of ``encode`` (arrays come back writeable)."""
    if isinstance(value, dict):
        if "__nd__" in value:
            raw = base64.b64decode(value["__nd__"])
            return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(encode(value), allow_nan=True)


def loads(text: str) -> Any:
    return decode(json.loads(text))


class StateStore:
    """The SQLite state file at ``path`` (created with its tables when new)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(_TABLES)
        if self.meta().get("schema_version") is None:
            self.set_meta({"schema_version": SCHEMA_VERSION})

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: the block's writes commit together, or none do."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:  # the block failed, or the commit did (disk full)
                self.conn.execute("ROLLBACK")
            raise

    # ----------------------------------------------------------------------- identity
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: dict[str, Any]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in values.items()],
        )

    # ------------------------------------------------------------------------- account
    def account(self) -> dict[str, Any] | None:
        """The state after the last bar processed (None for a new file)."""
        row = self.conn.execute("SELECT payload FROM account WHERE id = 1").fetchone()
        return None if row is None else loads(row[0])

    def save_account(self, db: sqlite3.Connection, seq: int, time_: str, state: dict) -> None:
        db.execute(
            "INSERT OR REPLACE INTO account (id, bar_seq, bar_time, payload, updated) "
            "VALUES (1, ?, ?, ?, ?)",
            (seq, time_, dumps(state), time.time()),
        )

    def history(self) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT payload FROM history WHERE id = 1").fetchone()
        return None if row is None else loads(row[0])

    def save_history(self, db: sqlite3.Connection, payload: dict) -> None:
        db.execute("INSERT INTO history (id, payload) VALUES (1, ?)", (dumps(payload),))

    # ------------------------------------------------------------------------ records
    def add_bar(self, db: sqlite3.Connection, seq: int, time_: str, bar: Any, filled: bool):
        db.execute(
            "INSERT INTO bars (seq, time, filled, open, high, low, close, volume) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, time_, int(filled), *(json.dumps(getattr(bar, k).tolist())
                                        for k in ("open", "high", "low", "close", "volume"))),
        )  # fmt: skip

    def live_bars(self) -> list[dict[str, Any]]:
        """Every live bar processed, in order."""
        rows = self.conn.execute(
            "SELECT seq, time, filled, open, high, low, close, volume FROM bars ORDER BY seq"
        ).fetchall()
        keys = ("seq", "time", "filled", "open", "high", "low", "close", "volume")
        out = []
        for row in rows:
            rec = dict(zip(keys, row, strict=True))
            for k in keys[3:]:
                rec[k] = json.loads(rec[k])
            out.append(rec)
        return out

    def add_event(self, db: sqlite3.Connection, time_: str, kind: str, payload: dict) -> None:
        db.execute(
            "INSERT INTO events (time, kind, payload) VALUES (?, ?, ?)",
            (time_, kind, dumps(payload)),
        )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT time, kind, payload FROM events"
        rows = self.conn.execute(sql + (" WHERE kind = ?" if kind else "") + " ORDER BY id",
                                 (kind,) if kind else ()).fetchall()  # fmt: skip
        return [{"time": t, "kind": k, **loads(p)} for t, k, p in rows]

    def table(self, name: str) -> list[dict[str, Any]]:
        """Every row of one of the record tables (orders, fills, equity, models, commands)."""
        if name not in ("orders", "fills", "equity", "models", "commands", "bars", "events"):
            raise ValueError(f"no table {name!r}")
        cur = self.conn.execute(f"SELECT * FROM {name} ORDER BY rowid")  # noqa: S608 (checked)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    # ----------------------------------------------------------------------- commands
    def queue_command(self, kind: str, payload: dict) -> int:
        """Queue a command for the service (applied at its next bar, or its next start)."""
        cur = self.conn.execute(
            "INSERT INTO commands (kind, payload, queued) VALUES (?, ?, ?)",
            (kind, json.dumps(payload), time.time()),
        )
        return int(cur.lastrowid)

    def pending_commands(self) -> list[tuple[int, str, dict]]:
        rows = self.conn.execute(
            "SELECT id, kind, payload FROM commands WHERE applied_seq IS NULL ORDER BY id"
        ).fetchall()
        return [(i, k, json.loads(p)) for i, k, p in rows]

    # ------------------------------------------------------------------------ backups
    def backup(self, target: str | Path) -> Path:
        """A consistent snapshot of the whole file at ``target`` (SQLite's online backup: safe
        while the service writes)."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.unlink(missing_ok=True)
        dest = sqlite3.connect(tmp)
        try:
            self.conn.backup(dest)
        finally:
            dest.close()
        tmp.replace(target)
        return target


def restore(backup: str | Path, path: str | Path) -> None:
    """Replace the state file ``path`` by the snapshot ``backup`` (the service must be
    stopped); the replaced file is kept beside it as ``<name>.before-restore``."""
    backup, path = Path(backup), Path(path)
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        src.execute("SELECT payload FROM account").fetchall()  # a real state snapshot
        tmp = path.with_name(path.name + ".restoring")
        tmp.unlink(missing_ok=True)
        dest = sqlite3.connect(tmp)
        try:
            src.backup(dest)
        finally:
            dest.close()
    except sqlite3.DatabaseError as err:
        raise ValueError(f"{backup} is not a trade.py state snapshot: {err}") from None
    finally:
        src.close()
    if path.exists():
        old = sqlite3.connect(path)  # fold its journal in, so the kept copy is whole
        try:
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            old.close()
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.replace(path.with_name(path.name + ".before-restore"))
    tmp.replace(path)
