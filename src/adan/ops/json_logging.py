"""Structured logs: one JSON object per line, beside the human console log.

``trade.py`` reports every bar, decision, order, fill, alert and error through
:func:`log_event`; :func:`configure_json_logging` adds a size-rotated ``.jsonl`` file to the
``adan`` logger without touching its console handlers, and ``train.py hydra/job_logging=json``
(``conf/hydra/job_logging/json.yaml``) writes the same lines for a training run. Each line::

    {"ts": "2026-12-06T00:52:59.887Z", "level": "INFO", "logger": "adan.trade",
     "message": "fill asset=BTC units=0.5", "event": "fill", "asset": "BTC", "units": 0.5}

Values are made plain JSON (numpy scalars and arrays, datetimes, paths; NaN and infinities
become ``null``), and nothing that looks like a secret is written: URLs have their password
masked (:func:`adan.config.secrets.mask_password`) and the values of keys named like a
password, secret, token, API key or webhook URL become ``***``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import logging
import logging.handlers
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from adan.config.secrets import mask_password, masked
from adan.errors import LiveConfigError

MASK = "***"

# a key whose value is a credential: password, smtp_password, api_key, client_secret, ...
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_.\-])(?:password|passwd|pwd|secret|secrets|token|api_?key|access_?key|"
    r"private_?key|credentials?|webhook_?url|dsn)(?:$|[_.\-])"
)
# a URL inside a longer text (a log message, a traceback): its password is masked on its own
_URL_IN_TEXT = re.compile(r"[A-Za-z][\w+.-]*\\?://[^\s'\"<>]+")

# the keys every line has; a field of the same name is written as ``fields.<name>``
_CORE = ("ts", "level", "logger", "message", "event", "exc", "stack")


def is_secret_key(key: Any) -> bool:
    """Whether a field or setting named ``key`` holds a credential (its value is masked)."""
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def mask_text(text: str) -> str:
    """``text`` with the password of every URL in it masked (also a URL inside a message)."""
    text = masked(text)  # the whole string a URL (user:password@ or ?password=)
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: mask_password(m.group(0)), text)
    return mask_password(text) if "password=" in text.lower() else text


def to_jsonable(value: Any, key: Any = None) -> Any:
    """``value`` as plain JSON (dicts, lists, str, int, float, bool, None), secrets masked.

    numpy scalars and arrays -> numbers and lists; datetimes -> ISO 8601; paths -> str;
    NaN and +-inf -> None; anything else unknown -> ``str(value)``. ``key`` is the name the
    value goes under: a credential's name masks the whole value."""
    if is_secret_key(key) and value is not None and not (isinstance(value, str) and not value):
        return MASK
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, int):
        return int(value)  # int subclasses (IntEnum, numpy's on some platforms) -> int
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bytes | bytearray):
        return mask_text(bytes(value).decode("utf8", errors="replace"))
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays/scalars, tensors
        try:
            return to_jsonable(value.tolist())
        except Exception:  # a foreign object: fall back to its text
            pass
    if hasattr(value, "item") and callable(value.item):
        try:
            return to_jsonable(value.item())
        except Exception:
            pass
    if hasattr(value, "isoformat") and callable(value.isoformat):  # pandas/numpy datetimes
        try:
            return str(value.isoformat())
        except Exception:
            pass
    return mask_text(str(value))


def dumps(value: Any) -> str:
    """``value`` as one line of strict JSON (no NaN), after :func:`to_jsonable`."""
    return json.dumps(to_jsonable(value), ensure_ascii=False, allow_nan=False)


def _utc_iso(created: float) -> str:
    t = _dt.datetime.fromtimestamp(created, tz=_dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object on one line (see the module docstring for the keys).

    ``logger.info("...", extra={"event": "fill", "fields": {"asset": "BTC"}})`` gives
    ``"event": "fill", "asset": "BTC"``; without them ``"event": "log"``. Usable from a
    ``logging.config.dictConfig`` (``"()": adan.ops.json_logging.JsonFormatter``)."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception as err:  # bad %-args must not lose the record
            message = f"{record.msg!r} % {record.args!r} ({type(err).__name__}: {err})"
        line: dict[str, Any] = {
            "ts": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text(message),
            "event": str(getattr(record, "event", None) or "log"),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                name = str(key)
                line[f"fields.{name}" if name in _CORE else name] = to_jsonable(value, name)
        elif fields is not None:
            line["fields"] = to_jsonable(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = mask_text(record.exc_text)
        if record.stack_info:
            line["stack"] = mask_text(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, allow_nan=False, default=str)


def _text(value: Any) -> str:
    """A field's value as the console message shows it (already masked)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)


def log_event(
    logger: logging.Logger | str,
    event: str,
    level: int = logging.INFO,
    *,
    exc_info: Any = None,
    **fields: Any,
) -> None:
    """Log one trading-loop event (``bar``, ``decision``, ``order``, ``fill``, ``alert``,
    ``error``, ...) with its ``fields``.

    The JSON line gets ``event`` and every field at top level; the console gets a readable
    ``"<event> key=value ..."`` message. Both are masked: a credential never reaches either."""
    if isinstance(logger, str):
        logger = logging.getLogger(logger)
    if not logger.isEnabledFor(level):
        return
    clean = {k: to_jsonable(v, k) for k, v in fields.items()}
    message = " ".join([event, *(f"{k}={_text(v)}" for k, v in clean.items())])
    logger.log(
        level,
        "%s",
        message,
        exc_info=exc_info,
        extra={"event": event, "fields": clean},
        stacklevel=2,
    )


def configure_json_logging(
    path: str | Path,
    max_bytes: int = 10_000_000,
    backups: int = 5,
    level: int | str = "INFO",
    logger_name: str = "adan",
) -> logging.Handler:
    """Add a size-rotated JSON-lines file at ``path`` (parent directories created) to the
    logger ``logger_name``; its other handlers (the console) stay as they are.

    Returns the handler, for ``logging.getLogger(logger_name).removeHandler(h); h.close()``.
    Calling it again for the same file returns the handler already there. If the logger's
    effective level is above ``level`` it is lowered to ``level``, or the file would miss the
    records it was asked for."""
    path = Path(path).expanduser().absolute()
    levelno = _level(level)
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
            return handler
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf8"
    )
    handler.setFormatter(JsonFormatter())
    handler.setLevel(levelno)
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > levelno:
        logger.setLevel(levelno)
    return handler


def _level(level: int | str) -> int:
    if isinstance(level, str):
        try:
            return logging.getLevelNamesMapping()[level.upper()]
        except KeyError:
            raise ValueError(f"unknown logging level {level!r}") from None
    return int(level)


def _require(ok: bool, key: str, rule: str, value: object) -> None:
    if not ok:
        raise LiveConfigError(f"{key} {rule}, got {value!r}")


def _known_keys(section: str, d: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(str(k) for k in d if k not in known)
    if unknown:
        raise LiveConfigError(
            f"{section}.{unknown[0]} is not a setting (known: {', '.join(known)})"
        )


def _as_mapping(section: str, d: Any) -> Mapping[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise LiveConfigError(f"{section} must be a mapping of settings, got {d!r}")
    return d


_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


@dataclass(frozen=True)
class JsonLoggingConfig:
    """The ``logging:`` block of a live run. ``path``: the ``.jsonl`` file (a relative path is
    relative to the run directory the caller gives :meth:`resolve`); rotated at ``max_bytes``
    keeping ``backups`` older files (``trade.jsonl.1`` ...)."""

    enabled: bool = True
    path: str = "trade.jsonl"
    max_bytes: int = 10_000_000
    backups: int = 5
    level: str = "INFO"

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> JsonLoggingConfig:
        """Validated settings from ``d`` (missing keys: the defaults); a bad or unknown key
        raises :class:`LiveConfigError` naming ``logging.<key>``."""
        d = _as_mapping("logging", d)
        _known_keys("logging", d, ("enabled", "path", "max_bytes", "backups", "level"))
        out = cls()
        enabled = d.get("enabled", out.enabled)
        _require(isinstance(enabled, bool), "logging.enabled", "must be true or false", enabled)
        path = d.get("path", out.path)
        _require(
            isinstance(path, str | PurePath) and str(path).strip() != "",
            "logging.path",
            "must be a file path",
            path,
        )
        max_bytes = d.get("max_bytes", out.max_bytes)
        _require(
            isinstance(max_bytes, int) and not isinstance(max_bytes, bool) and max_bytes > 0,
            "logging.max_bytes",
            "must be an integer > 0",
            max_bytes,
        )
        backups = d.get("backups", out.backups)
        _require(
            isinstance(backups, int) and not isinstance(backups, bool) and backups >= 0,
            "logging.backups",
            "must be an integer >= 0",
            backups,
        )
        level = d.get("level", out.level)
        _require(
            isinstance(level, str) and level.upper() in _LEVELS,
            "logging.level",
            f"must be one of {', '.join(_LEVELS)}",
            level,
        )
        return cls(
            enabled=enabled,
            path=str(path),
            max_bytes=max_bytes,
            backups=backups,
            level=level.upper(),
        )

    def resolve(self, run_dir: str | Path) -> Path:
        """``path``, relative ones taken relative to ``run_dir``."""
        path = Path(self.path).expanduser()
        return path if path.is_absolute() else Path(run_dir) / path

    def configure(self, run_dir: str | Path, logger_name: str = "adan") -> logging.Handler | None:
        """:func:`configure_json_logging` with these settings; ``None`` when not enabled."""
        if not self.enabled:
            return None
        return configure_json_logging(
            self.resolve(run_dir), self.max_bytes, self.backups, self.level, logger_name
        )
