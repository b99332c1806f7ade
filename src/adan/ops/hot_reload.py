"""Live-tunable settings: a YAML file the trading loop re-reads when it changes.

:class:`SettingsWatcher` is asked once per bar (:meth:`SettingsWatcher.check`) whether the
file changed; a stat is all a quiet bar costs. A changed file is read, validated by the
caller's function and, if good, handed to ``on_change``. A bad one (YAML that does not parse,
a value the validator refuses) is logged once, naming the file and the problem, and the
settings in force stay; the same bad content is not reported again on every bar, only a new
edit is looked at. Edits in place and atomic ones (write a temporary file, rename it over) are
both seen.

A missing file means "no overrides" (nothing applied, no error) unless ``required=True``. A
file removed after it was applied leaves the settings in force as they are (a warning says
so): a trading process does not fall back to other limits because a file disappeared for a
moment. To return to the defaults, empty the file: an empty file is validated as ``{}``, once
it is 2 s old. A file seen empty sooner after its last change is taken as being rewritten in
place (``echo ... > file`` truncates, then writes) and looked at again on the next check, so
a shell redirect never lets the defaults apply between its two steps.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from adan.ops.json_logging import to_jsonable

T = TypeVar("T")

HISTORY_LIMIT = 200  # entries kept in ``history``

_MISSING = ("missing",)
_RACY_NS = 2_000_000_000  # a file modified this recently is hashed again on the next check


class SettingsWatcher(Generic[T]):
    """Watch ``path`` (YAML holding a mapping) and apply each good version of it.

    ``validate(mapping) -> T`` raises on a bad value (its message names the key, e.g.
    ``LiveConfigError("risk.max_leverage must be <= 3, got 5")``); ``on_change(value)`` applies
    it. ``current``: the last value applied (``None`` before any); ``history``: ``(unix time,
    ok, message)`` per version looked at. :meth:`check` may be called from the trading loop,
    or from a thread of its own (:meth:`start`); calls are serialised."""

    def __init__(
        self,
        path: str | Path,
        validate: Callable[[dict], T],
        on_change: Callable[[T], None],
        logger: logging.Logger | None = None,
        *,
        required: bool = False,
    ) -> None:
        self.path = Path(path)
        self.validate = validate
        self.on_change = on_change
        self.log = logger or logging.getLogger(__name__)
        self.required = required
        self.current: T | None = None
        self.history: list[tuple[float, bool, str]] = []
        self._signature: tuple | None = None  # (inode, size, mtime_ns) last looked at
        self._digest: str | None = None  # sha256 of the content last looked at (good or bad)
        self._settled = False  # the file's mtime was old enough when read to trust it
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ checking

    def check(self) -> bool:
        """Apply the file if it changed since the last look and is valid; True when applied.

        A parse or validation error is logged once per bad version, and the settings in force
        stay. Never raises for the file's content (``on_change`` raising counts as a refusal)."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return self._missing()
            except OSError as err:
                return self._bad(("stat-error", str(err)), None, f"cannot be read ({err})")
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
            if signature == self._signature and self._settled:
                return False
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:  # renamed away between stat and read: look next time
                return False
            except OSError as err:
                return self._bad(signature, None, f"cannot be read ({err})")
            try:
                after = os.stat(self.path)
            except OSError:
                return False
            if (after.st_ino, after.st_size, after.st_mtime_ns) != signature:
                return False  # written to while read: the next check reads the finished file
            # a file modified within the timestamps' granularity of this read could change
            # again without its mtime moving: hash it on each check until it is older
            fresh = time.time_ns() - st.st_mtime_ns <= _RACY_NS
            if not data and fresh:
                # most likely truncated by a rewrite in place (`echo ... > file`) whose write
                # has not landed: the defaults must not trade for a bar in between
                self._settled = False
                return False
            self._signature, self._settled = signature, not fresh
            digest = hashlib.sha256(data).hexdigest()
            if digest == self._digest:
                return False  # touched, or rewritten with the same content: seen already
            self._digest = digest
            return self._load(data)

    def _load(self, data: bytes) -> bool:
        try:
            mapping = yaml.safe_load(data.decode("utf8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            return self._refuse(f"is not valid YAML: {_one_line(err)}")
        if mapping is None:
            mapping = {}  # an empty file: no overrides
        if not isinstance(mapping, dict):
            return self._refuse(
                f"must hold a mapping of settings (key: value), got {type(mapping).__name__}"
            )
        try:
            value = self.validate(mapping)
        except Exception as err:
            return self._refuse(f"{type(err).__name__}: {err}")
        try:
            self.on_change(value)
        except Exception as err:
            self.log.error(
                "settings file %s: applying it failed, keeping the previous settings",
                self.path,
                exc_info=True,
                extra=self._extra("settings_rejected", f"{type(err).__name__}: {err}"),
            )
            self._record(False, f"applying failed: {type(err).__name__}: {err}")
            return False
        self.current = value
        self._record(True, "applied")
        self.log.info(
            "settings file %s applied: %s",
            self.path,
            ", ".join(f"{k}={v!r}" for k, v in to_jsonable(mapping).items()) or "no overrides",
            extra=self._extra("settings_applied", None),
        )
        return True

    def _refuse(self, problem: str) -> bool:
        self.log.error(
            "settings file %s rejected, keeping the previous settings: %s",
            self.path,
            problem,
            extra=self._extra("settings_rejected", problem),
        )
        self._record(False, problem)
        return False

    def _bad(self, signature: tuple, digest: str | None, problem: str) -> bool:
        """An unreadable file: reported once per state, like bad content."""
        if signature == self._signature:
            return False
        self._signature, self._digest, self._settled = signature, digest, True
        return self._refuse(problem)

    def _missing(self) -> bool:
        if self._signature == _MISSING:
            return False
        first = self._signature is None
        self._signature, self._digest, self._settled = _MISSING, None, True
        if self.required:
            return self._refuse("is missing (required)")
        if not first:
            self.log.warning(
                "settings file %s was removed: the settings in force stay (empty the file "
                "to return to the defaults)",
                self.path,
                extra=self._extra("settings_missing", None),
            )
            self._record(False, "removed: settings in force kept")
        return False

    def _record(self, ok: bool, message: str) -> None:
        self.history.append((time.time(), ok, message))
        del self.history[:-HISTORY_LIMIT]

    def _extra(self, event: str, error: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"file": str(self.path)}
        if error is not None:
            fields["error"] = error
        return {"event": event, "fields": fields}

    # ------------------------------------------------------------------ polling thread

    def start(self, poll_s: float = 1.0) -> SettingsWatcher[T]:
        """Check every ``poll_s`` seconds from a daemon thread (``on_change`` then runs
        there) until :meth:`stop`; checks once at once."""
        if poll_s <= 0:
            raise ValueError(f"poll_s must be > 0, got {poll_s!r}")
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._poll, args=(poll_s,), name="adan-settings-watcher", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the polling thread, if any (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _poll(self, poll_s: float) -> None:
        while True:
            try:
                self.check()
            except Exception:
                self.log.exception("settings file %s: check failed", self.path)
            if self._stop.wait(poll_s):
                return


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())
