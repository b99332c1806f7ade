"""``adan.ops.json_logging``: JSON lines that parse, rotate, hold plain values and no secrets;
and ``train.py hydra/job_logging=json`` writing them for a real training run."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from adan.errors import LiveConfigError
from adan.ops.json_logging import (
    JsonFormatter,
    JsonLoggingConfig,
    configure_json_logging,
    log_event,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET_URL = "postgresql://u:pw-s3cr3t@h/db"


@pytest.fixture
def logger():
    """A logger of its own per test (under ``adan``), its handlers removed afterwards."""
    lg = logging.getLogger(f"adan.test_json_logging.{uuid.uuid4().hex[:8]}")
    lg.setLevel(logging.DEBUG)
    yield lg
    for h in list(lg.handlers):
        lg.removeHandler(h)
        h.close()


def lines(path: Path) -> list[dict]:
    """Every line of ``path`` parsed as strict JSON (NaN refused)."""

    def no_constants(name: str):
        raise AssertionError(f"non-standard JSON constant {name}")

    text = path.read_text(encoding="utf8")
    assert text.endswith("\n")
    return [json.loads(line, parse_constant=no_constants) for line in text.splitlines()]


def test_one_json_object_per_line_with_the_core_keys(tmp_path, logger):
    """ts (UTC, ms), level, logger, message, event ("log" for a plain call), fields on top."""
    path = tmp_path / "logs" / "trade.jsonl"  # parent directories created
    configure_json_logging(path, logger_name=logger.name)
    logger.info("plain %s", "message")
    log_event(logger, "fill", asset="BTC", units=0.5, price=43_000.5)
    first, second = lines(path)
    assert first["message"] == "plain message"
    assert first["event"] == "log"
    assert first["level"] == "INFO"
    assert first["logger"] == logger.name
    ts = dt.datetime.fromisoformat(first["ts"].replace("Z", "+00:00"))
    assert ts.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - ts) < dt.timedelta(minutes=1)
    assert len(first["ts"]) == len("2026-12-06T00:00:00.000Z")
    assert second["event"] == "fill"
    assert (second["asset"], second["units"], second["price"]) == ("BTC", 0.5, 43_000.5)
    assert second["message"] == "fill asset=BTC units=0.5 price=43000.5"
    assert "exc" not in second


def test_numpy_datetimes_paths_and_nan_become_plain_json(tmp_path, logger):
    path = tmp_path / "t.jsonl"
    configure_json_logging(path, logger_name=logger.name)
    when = dt.datetime(2026, 12, 6, 1, 2, 3, tzinfo=dt.UTC)
    log_event(
        logger,
        "decision",
        weights=np.array([0.25, np.nan, -0.5], dtype=np.float32),
        equity=np.float64(10_001.5),
        step=np.int64(7),
        flat=np.bool_(False),
        drawdown=float("nan"),
        peak=float("inf"),
        bar_time=when,
        day=dt.date(2026, 12, 6),
        ckpt=Path("/runs/a/last.ckpt"),
        nested={"a": [np.float32(1.5), {"b": np.nan}], "t": (1, 2)},
    )
    (rec,) = lines(path)
    assert rec["weights"] == [0.25, None, -0.5]
    assert rec["equity"] == 10_001.5
    assert rec["step"] == 7 and isinstance(rec["step"], int)
    assert rec["flat"] is False
    assert rec["drawdown"] is None and rec["peak"] is None
    assert rec["bar_time"] == "2026-12-06T01:02:03+00:00"
    assert rec["day"] == "2026-12-06"
    assert rec["ckpt"] == "/runs/a/last.ckpt"
    assert rec["nested"] == {"a": [1.5, {"b": None}], "t": [1, 2]}


def test_secrets_are_masked_in_fields_messages_and_the_console(tmp_path, logger):
    """A storage URL's password and credential-named fields never reach a log."""
    console = io.StringIO()
    console_handler = logging.StreamHandler(console)
    console_handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(console_handler)
    path = tmp_path / "t.jsonl"
    configure_json_logging(path, logger_name=logger.name)

    log_event(
        logger,
        "startup",
        storage=SECRET_URL,
        password="hunter2",
        smtp_password="hunter3",
        alerts={"webhook_url": "https://hooks.example/T0/B0/xyzzy", "api_key": "k-123"},
        token=None,
        tokens=42,  # a count, not a credential
    )
    logger.warning("connecting to %s failed", SECRET_URL)
    logger.info("dsn host=h password=pw-s3cr3t dbname=db")
    text = path.read_text()
    console_startup = console.getvalue().splitlines()[0]
    for secret in ("pw-s3cr3t", "hunter2", "hunter3", "xyzzy", "k-123"):
        assert secret not in text
        assert secret not in console_startup  # log_event masks the console message too
    startup, warning, dsn = lines(path)
    assert startup["storage"] == "postgresql://u:***@h/db"
    assert startup["password"] == "***" and startup["smtp_password"] == "***"
    assert startup["alerts"] == {"webhook_url": "***", "api_key": "***"}
    assert startup["token"] is None
    assert startup["tokens"] == 42
    assert warning["message"] == "connecting to postgresql://u:***@h/db failed"
    assert "password=***" in dsn["message"]
    # the console handler that was there stays, untouched
    assert console_handler in logger.handlers
    assert "WARNING connecting to" in console.getvalue()


def test_exceptions_carry_their_traceback(tmp_path, logger):
    path = tmp_path / "t.jsonl"
    configure_json_logging(path, logger_name=logger.name)
    try:
        raise ConnectionError(f"cannot reach {SECRET_URL}")
    except ConnectionError:
        logger.exception("feed failed")
        log_event(logger, "error", logging.ERROR, exc_info=True, kind="FeedError")
    plain, event = lines(path)
    for rec in (plain, event):
        assert rec["exc"].startswith("Traceback (most recent call last)")
        assert "ConnectionError: cannot reach postgresql://u:***@h/db" in rec["exc"]
        assert rec["level"] == "ERROR"
    assert event["event"] == "error" and event["kind"] == "FeedError"
    assert "pw-s3cr3t" not in path.read_text()


def test_fields_do_not_overwrite_the_core_keys(tmp_path, logger):
    path = tmp_path / "t.jsonl"
    configure_json_logging(path, logger_name=logger.name)
    logger.info("hi", extra={"event": "x", "fields": {"message": "m", "level": 3, "ok": True}})
    (rec,) = lines(path)
    assert (rec["message"], rec["level"], rec["event"]) == ("hi", "INFO", "x")
    assert (rec["fields.message"], rec["fields.level"], rec["ok"]) == ("m", 3, True)


def test_rotation_keeps_backups_files_of_valid_lines(tmp_path, logger):
    """With a small max_bytes the file really rotates; every line of every file parses."""
    path = tmp_path / "t.jsonl"
    configure_json_logging(path, max_bytes=2_000, backups=3, logger_name=logger.name)
    for i in range(200):
        log_event(logger, "bar", i=i, equity=10_000.0 + i)
    files = sorted(tmp_path.glob("t.jsonl*"))
    assert [f.name for f in files] == ["t.jsonl", "t.jsonl.1", "t.jsonl.2", "t.jsonl.3"]
    seen = []
    for f in files:
        assert f.stat().st_size <= 2_000
        seen += [rec["i"] for rec in lines(f)]
    assert 199 in seen and 0 not in seen  # the newest kept, the oldest rotated away
    assert len(seen) == len(set(seen))


def test_configure_returns_a_removable_handler_and_is_idempotent(tmp_path, logger):
    path = tmp_path / "t.jsonl"
    h = configure_json_logging(path, level="WARNING", logger_name=logger.name)
    assert configure_json_logging(path, logger_name=logger.name) is h
    assert logger.handlers.count(h) == 1
    logger.info("below the handler's level")
    logger.warning("kept")
    logger.removeHandler(h)
    h.close()
    logger.error("after removal")
    assert [r["message"] for r in lines(path)] == ["kept"]


def test_configure_lowers_a_logger_level_that_would_hide_the_records(tmp_path, logger):
    logger.setLevel(logging.WARNING)
    configure_json_logging(tmp_path / "t.jsonl", level="INFO", logger_name=logger.name)
    assert logger.getEffectiveLevel() == logging.INFO
    logger.info("seen")
    assert lines(tmp_path / "t.jsonl")[0]["message"] == "seen"


def test_formatter_from_dict_config_arguments():
    """dictConfig builds it with ``()`` and may pass format/datefmt: accepted."""
    fmt = JsonFormatter(fmt="%(message)s", datefmt="%H")
    record = logging.LogRecord("adan.x", logging.INFO, __file__, 1, "a %d", (1,), None)
    assert json.loads(fmt.format(record))["message"] == "a 1"


def test_json_logging_config_defaults_and_errors(tmp_path):
    cfg = JsonLoggingConfig.from_mapping({})
    assert cfg == JsonLoggingConfig(True, "trade.jsonl", 10_000_000, 5, "INFO")
    assert cfg.resolve(tmp_path) == tmp_path / "trade.jsonl"
    assert JsonLoggingConfig.from_mapping({"level": "debug"}).level == "DEBUG"
    assert JsonLoggingConfig.from_mapping({"path": "/var/x.jsonl"}).resolve(tmp_path) == Path(
        "/var/x.jsonl"
    )
    assert JsonLoggingConfig.from_mapping({"enabled": False}).configure(tmp_path) is None
    bad = [
        ({"max_bytes": 0}, "logging.max_bytes"),
        ({"max_bytes": 1.5}, "logging.max_bytes"),
        ({"backups": -1}, "logging.backups"),
        ({"backups": True}, "logging.backups"),
        ({"level": "LOUD"}, "logging.level"),
        ({"level": 20}, "logging.level"),
        ({"enabled": 1}, "logging.enabled"),
        ({"path": ""}, "logging.path"),
        ({"max_byte": 5}, "logging.max_byte"),
    ]
    for d, key in bad:
        with pytest.raises(LiveConfigError, match=key.replace(".", r"\.")):
            JsonLoggingConfig.from_mapping(d)
    with pytest.raises(LiveConfigError, match="logging must be a mapping"):
        JsonLoggingConfig.from_mapping(["path"])  # type: ignore[arg-type]


def test_train_py_writes_json_lines_with_the_json_job_logging(tmp_path):
    """``python train.py hydra/job_logging=json``: <task>.jsonl (rotating) beside the console
    and the text log, which stay as they were. A real short run (debug=fast, ~15 s)."""
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        f"hydra.run.dir={run_dir}",
        "debug=fast",
        "hydra/job_logging=json",
        "hydra.job_logging.handlers.json.maxBytes=300",  # rotate even a short run's log
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-5000:]

    files = sorted(run_dir.glob("debug.jsonl*"))  # debug=fast sets task_name: debug
    assert len(files) >= 2, [f.name for f in files]  # rotated at 300 bytes
    records = [rec for f in files for rec in lines(f)]
    assert all({"ts", "level", "logger", "message", "event"} <= set(r) for r in records)
    messages = [r["message"] for r in records if r["logger"] == "adan.tasks.fit"]
    assert any(m.startswith("summary written to") for m in messages)
    # the console and the text log are as without the option
    assert "[adan.tasks.fit][INFO] - summary written to" in proc.stdout
    assert "[adan.tasks.fit][INFO] - summary written to" in (run_dir / "debug.log").read_text()


def test_values_of_every_common_kind_become_plain_json():
    """Dates, durations, paths, enums, bytes, NumPy values and unknown objects all log."""
    import enum

    from adan.ops.json_logging import dumps

    class Side(enum.Enum):
        LONG = "long"

    class Odd:
        def __str__(self):
            return "odd postgresql://u:pw-x1@h/db"

    value = {
        "when": dt.datetime(2024, 1, 2, 3, 4, 5),
        "day": dt.date(2024, 1, 2),
        "span": dt.timedelta(minutes=90),
        "path": Path("/tmp/x"),
        "side": Side.LONG,
        "raw": b"bytes",
        "arr": np.arange(3),
        "scalar": np.float32(1.5),
        "stamp": np.datetime64("2024-01-02T03:04"),
        "set": {1},
        "odd": Odd(),
    }
    back = json.loads(dumps(value))
    assert back["when"] == "2024-01-02T03:04:05" and back["day"] == "2024-01-02"
    assert back["span"] == 5400.0 and back["path"] == "/tmp/x" and back["side"] == "long"
    assert back["raw"] == "bytes" and back["arr"] == [0, 1, 2] and back["scalar"] == 1.5
    assert back["stamp"].startswith("2024-01-02") and back["set"] == [1]
    assert "pw-x1" not in back["odd"]  # a URL password in any text is masked
