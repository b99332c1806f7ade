"""``adan.ops.hot_reload``: a watched settings file applied when good, refused (once, loudly,
old settings kept) when bad; edits in place and atomic renames both seen."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace

import pytest

from adan.errors import LiveConfigError
from adan.files import atomic_write_text
from adan.ops.hot_reload import SettingsWatcher

LOGGER = "adan.test_hot_reload"


@dataclass(frozen=True)
class Risk:
    max_leverage: float = 1.0
    max_position: float = 0.5


def validate(d: dict) -> Risk:
    """What trade.py's validator does: every key known, every value in range, key named."""
    out = Risk()
    for key, value in d.items():
        if key not in ("max_leverage", "max_position"):
            raise LiveConfigError(f"risk.{key} is not a live setting")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise LiveConfigError(f"risk.{key} must be a number, got {value!r}")
        if key == "max_leverage" and not 0 < value <= 3:
            raise LiveConfigError(f"risk.max_leverage must be in (0, 3], got {value!r}")
        out = replace(out, **{key: float(value)})
    return out


@pytest.fixture
def applied() -> list[Risk]:
    return []


@pytest.fixture
def settings(tmp_path):
    return tmp_path / "live.yaml"


@pytest.fixture
def watcher(settings, applied, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    w = SettingsWatcher(settings, validate, applied.append, logging.getLogger(LOGGER))
    yield w
    w.stop()


def age(path, seconds: float) -> None:
    """Backdate ``path``'s mtime, as if it were last written ``seconds`` ago."""
    then = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(then, then))


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_valid_change_is_applied_once(watcher, settings, applied):
    settings.write_text("max_leverage: 2\n")
    assert watcher.check() is True
    assert applied == [Risk(max_leverage=2.0)]
    assert watcher.current == Risk(max_leverage=2.0)
    assert watcher.check() is False  # nothing changed: a stat, nothing applied
    assert len(applied) == 1
    ok = watcher.history[-1]
    assert ok[1] is True and ok[2] == "applied" and abs(ok[0] - time.time()) < 60


def test_an_edit_in_place_of_the_same_size_is_seen_at_once(watcher, settings, applied):
    """Two edits within the file system's timestamp granularity (same size, maybe the same
    mtime) are still told apart: a recently modified file is hashed again."""
    settings.write_text("max_leverage: 2\n")
    assert watcher.check()
    before = settings.stat()
    settings.write_text("max_leverage: 3\n")  # same size, same inode ...
    os.utime(settings, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... and the same mtime
    assert watcher.check()
    assert watcher.current == Risk(max_leverage=3.0)
    os.utime(settings)  # touched, same content: not applied again
    assert watcher.check() is False
    assert len(applied) == 2


def test_bad_yaml_is_refused_once_and_the_old_settings_stay(watcher, settings, applied, caplog):
    settings.write_text("max_leverage: 2\n")
    assert watcher.check()
    settings.write_text("max_leverage: [2,\n")
    assert watcher.check() is False
    assert watcher.current == Risk(max_leverage=2.0)
    (err,) = errors(caplog)
    assert str(settings) in err and "not valid YAML" in err and "keeping the previous" in err
    for _ in range(5):  # the loop checks every bar: the same bad file is not re-reported
        assert watcher.check() is False
    os.utime(settings, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, still bad
    assert watcher.check() is False
    assert len(errors(caplog)) == 1
    assert watcher.history[-1][1] is False

    settings.write_text("max_leverage: 2.5\n")  # fixed
    assert watcher.check() is True
    assert watcher.current == Risk(max_leverage=2.5)
    assert applied == [Risk(max_leverage=2.0), Risk(max_leverage=2.5)]


def test_a_value_the_validator_refuses_is_logged_with_its_key(watcher, settings, applied, caplog):
    settings.write_text("max_leverage: 2\nmax_position: 0.3\n")
    assert watcher.check()
    settings.write_text("max_leverage: 5\nmax_position: 0.3\n")
    assert watcher.check() is False
    (err,) = errors(caplog)
    assert "risk.max_leverage must be in (0, 3], got 5" in err
    assert str(settings) in err
    assert watcher.current == Risk(2.0, 0.3)
    for _ in range(5):
        watcher.check()
    assert len(errors(caplog)) == 1
    record = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert record.event == "settings_rejected"  # structured for the JSON log
    assert record.fields["file"] == str(settings)
    assert "risk.max_leverage" in record.fields["error"]

    settings.write_text("max_leverage: 1.5\nmax_position: 0.3\n")
    assert watcher.check()
    assert applied[-1] == Risk(1.5, 0.3)


def test_a_new_bad_version_is_reported_again(watcher, settings, caplog):
    """Only the same bad content is quiet; a different mistake is a new report."""
    settings.write_text("max_leverage: 5\n")
    watcher.check()
    settings.write_text("max_leverage: 9\n")
    watcher.check()
    assert len(errors(caplog)) == 2
    assert "got 9" in errors(caplog)[1]


def test_an_atomic_rename_is_seen(watcher, settings, applied, tmp_path):
    """write temp + rename, even with the same size and mtime as the file it replaces."""
    settings.write_text("max_leverage: 2\n")
    assert watcher.check()
    old = settings.stat()
    tmp = tmp_path / ".live.yaml.tmp"
    tmp.write_text("max_leverage: 3\n")
    os.utime(tmp, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(tmp, settings)
    assert watcher.check()
    assert watcher.current == Risk(max_leverage=3.0)
    atomic_write_text(settings, "max_leverage: 1\nmax_position: 0.2\n")  # adan.files' way
    assert watcher.check()
    assert applied[-1] == Risk(1.0, 0.2)


def test_a_missing_file_is_no_overrides(watcher, applied, caplog):
    assert watcher.check() is False
    assert watcher.current is None and applied == []
    assert errors(caplog) == [] and watcher.history == []


def test_a_required_missing_file_is_an_error_reported_once(settings, applied, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    w = SettingsWatcher(
        settings, validate, applied.append, logging.getLogger(LOGGER), required=True
    )
    assert w.check() is False
    assert w.check() is False
    (err,) = errors(caplog)
    assert str(settings) in err and "missing" in err
    settings.write_text("max_position: 0.1\n")
    assert w.check() and w.current == Risk(max_position=0.1)


def test_a_removed_file_keeps_the_settings_in_force(watcher, settings, applied, caplog):
    """A file gone for a moment must not swap a trading process's limits; an empty file is
    the way back to the defaults."""
    settings.write_text("max_leverage: 2\n")
    assert watcher.check()
    settings.unlink()
    assert watcher.check() is False
    assert watcher.check() is False
    assert watcher.current == Risk(max_leverage=2.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "removed" in warnings[0].getMessage()
    settings.write_text("")
    age(settings, 3)
    assert watcher.check()
    assert watcher.current == Risk()


def test_a_file_truncated_for_a_rewrite_in_place_is_not_taken_for_an_empty_one(
    watcher, settings, applied
):
    """`echo ... > file` truncates, then writes: a check between the two must not apply the
    defaults for a bar. An empty file applies once it has stayed empty for 2 s."""
    settings.write_text("max_leverage: 2\n")
    assert watcher.check()
    with settings.open("w"):  # the truncation ...
        assert watcher.check() is False
        assert watcher.check() is False
    assert watcher.current == Risk(max_leverage=2.0)
    settings.write_text("max_leverage: 3\n")  # ... and the write
    assert watcher.check()
    assert applied == [Risk(max_leverage=2.0), Risk(max_leverage=3.0)]
    settings.write_text("")  # emptied on purpose: seen as such once it is old enough
    assert watcher.check() is False
    age(settings, 3)
    assert watcher.check()
    assert applied[-1] == Risk()


def test_a_file_that_is_not_a_mapping_is_refused(watcher, settings, caplog):
    settings.write_text("- max_leverage\n- 2\n")
    assert watcher.check() is False
    assert "must hold a mapping" in errors(caplog)[0]
    assert watcher.current is None


def test_on_change_failing_keeps_the_old_settings(settings, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    seen: list[Risk] = []

    def apply(risk: Risk) -> None:
        if risk.max_leverage > 2:
            raise RuntimeError("broker refused the new limit")
        seen.append(risk)

    w = SettingsWatcher(settings, validate, apply, logging.getLogger(LOGGER))
    settings.write_text("max_leverage: 2\n")
    assert w.check()
    settings.write_text("max_leverage: 3\n")
    assert w.check() is False
    assert w.current == Risk(max_leverage=2.0)
    assert "applying it failed" in errors(caplog)[0]


def test_the_polling_thread_applies_changes(watcher, settings, applied):
    """start(poll_s) checks from a daemon thread until stop()."""
    watcher.start(poll_s=0.02)
    settings.write_text("max_leverage: 2\n")
    deadline = time.monotonic() + 10
    while not applied and time.monotonic() < deadline:
        time.sleep(0.01)
    assert applied == [Risk(max_leverage=2.0)]
    watcher.stop()
    settings.write_text("max_leverage: 3\n")
    time.sleep(0.1)
    assert applied == [Risk(max_leverage=2.0)]  # stopped: no more checks
    with pytest.raises(ValueError, match="poll_s"):
        watcher.start(poll_s=0)
