"""W&B never stalls or aborts training: the real ``train.py`` against servers that cannot be
reached, and the factory's mode and timeout rules. Nothing here touches the internet: the
"server" is a closed or a silent port on 127.0.0.1 and the API key is fake."""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from adan.errors import ConfigError
from adan.ops.wandb_logger import resolve_mode, wandb_logger
from tests.e2e.conftest import run_multirun, run_train
from tests.e2e.wandb_records import offline_run

FAKE_KEY = "0123456789abcdef" * 2 + "01234567"  # 40 characters, like a real key
INIT_TIMEOUT = 3  # seconds
FALLBACK = "W&B could not start an online run"
# The code before this fix blocked 60 s in wandb.init and then aborted (69 s in all, exit 1).
BOUND = INIT_TIMEOUT + 57  # under 69 s, with room for a loaded 2-core CI machine
# From the run's last log line to the process exit: wandb.finish of an offline run and the
# interpreter's exit take a second or two; wandb's own telemetry probing a server that does not
# answer took 10-20 s more.
EXIT_LAG = 8
TRAIN = ("debug=fast", "logger=wandb", "~callbacks.progress_bar")
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[([\w.]+)\]\[(\w+)\] - (.*)$")


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; counts the connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.connections:
            conn.close()
        self.sock.close()


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """Environment for a train.py subprocess: wandb's files and config inside tmp_path, and no
    W&B setting of the developer's own leaking in."""
    for var in ("WANDB_MODE", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_ERROR_REPORTING"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "wandb-config").mkdir()

    def make(port: int, key: str = FAKE_KEY, **extra: str) -> dict[str, str]:
        return {
            "WANDB_BASE_URL": f"http://127.0.0.1:{port}",
            "WANDB_API_KEY": key,
            "WANDB_DIR": str(tmp_path),
            "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
            "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
            "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
            "NETRC": str(tmp_path / "netrc"),
            **extra,
        }

    return make


def _run(out: Path, *overrides: str, env: dict, timeout: float = 240):
    """run_train, plus the wall time and the moment the process had exited."""
    t0 = time.perf_counter()
    proc = run_train(out, *overrides, env=env, timeout=timeout)
    return proc, time.perf_counter() - t0, datetime.now()


def _log_lines(text: str) -> list[tuple[datetime, str, str, str]]:
    lines = []
    for line in text.splitlines():
        if m := _STAMP.match(line):
            stamp, logger, level, msg = m.groups()
            lines.append((datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f"), logger, level, msg))
    return lines


def _offline_run(run_dir: Path) -> bytes:
    """The one offline run under ``run_dir/wandb``; its records' bytes."""
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    files = list(runs[0].glob("*.wandb"))
    assert len(files) == 1, files
    return files[0].read_bytes()


def _check_fell_back(proc, out: Path, exited: datetime, where: str) -> str:
    """Exit 0 with the summary, one warning naming the cause and `wandb sync <dir>`, an offline
    run holding the metrics, and no wait on the network at exit. Returns the warning."""
    text = proc.stdout + proc.stderr
    assert text.count(FALLBACK) == 1, text[-3000:]
    lines = _log_lines(text)
    (warning,) = [msg for _, lg, level, msg in lines if FALLBACK in msg]
    assert where in warning and f"init_timeout={INIT_TIMEOUT}s" in warning
    (sync_dir,) = re.findall(r"`wandb sync (\S+)`", warning)
    assert Path(sync_dir).parent == out / "wandb" and Path(sync_dir).name.startswith("offline-run")
    assert (out / "summary.json").exists()
    records = _offline_run(out)
    # same project, name and tags as an online run; the final metrics made it in
    for expected in (b"adan", out.name.encode(), b"wbtag", b"summary/val/agent/sharpe"):
        assert expected in records, expected
    # the fallback came within the timeout (plus start-up), not after wandb's own 90 s
    started = next(t for t, lg, _, _ in lines if lg == "adan.tasks.fit")
    warned = next(t for t, _, _, msg in lines if FALLBACK in msg)
    assert (warned - started).total_seconds() < INIT_TIMEOUT + 15
    last = lines[-1][0]
    assert (exited - last).total_seconds() < EXIT_LAG, (exited, last)
    return warning


def test_unreachable_server_falls_back_to_offline_within_the_timeout(tmp_path, wandb_env):
    """API key set, server refuses connections: before, 60 s blocked then exit 1; now offline."""
    out = tmp_path / "closedport"
    proc, elapsed, exited = _run(
        out,
        *TRAIN,
        "tags=[wbtag]",
        f"logger.wandb.init_timeout={INIT_TIMEOUT}",
        env=wandb_env(_closed_port()),
    )
    assert elapsed < BOUND, f"{elapsed:.1f} s"
    warning = _check_fell_back(proc, out, exited, "connection refused")
    assert "CommError" in warning


@pytest.mark.slow
def test_silent_server_falls_back_and_exit_does_not_wait_on_it(tmp_path, wandb_env):
    """A server that accepts and never answers (a stalled proxy, a black hole): init gives up
    after init_timeout, and nothing at exit (wandb's SDK telemetry) waits on it."""
    out = tmp_path / "silent"
    with SilentServer() as server:
        proc, elapsed, exited = _run(
            out,
            *TRAIN,
            "tags=[wbtag]",
            f"logger.wandb.init_timeout={INIT_TIMEOUT}",
            env=wandb_env(server.port),
        )
    assert server.connections  # it did try online
    assert elapsed < BOUND, f"{elapsed:.1f} s"
    _check_fell_back(proc, out, exited, "deadline exceeded")


@pytest.mark.slow
def test_unreachable_server_in_a_multirun_each_job_falls_back_to_its_own_run(tmp_path, wandb_env):
    sweep = tmp_path / "sweep"
    proc = run_multirun(
        sweep,
        *TRAIN,
        "seed=1,2",
        f"logger.wandb.init_timeout={INIT_TIMEOUT}",
        env=wandb_env(_closed_port()),
        timeout=300,
    )
    assert (proc.stdout + proc.stderr).count(FALLBACK) == 2
    for job in ("0", "1"):
        records = _offline_run(sweep / job)
        assert f"{sweep.name}-job{job}".encode() in records  # name; group is the sweep
        assert (sweep / job / "summary.json").exists()


@pytest.mark.slow
def test_wandb_mode_offline_with_a_key_never_connects(tmp_path, wandb_env):
    """WANDB_MODE=offline wins over an API key: no connection at all, not even at exit."""
    out = tmp_path / "offline"
    with SilentServer() as server:
        proc, elapsed, exited = _run(out, *TRAIN, env=wandb_env(server.port, WANDB_MODE="offline"))
        time.sleep(0.5)  # let a late connection be accepted before counting
        assert server.connections == []
    text = proc.stdout + proc.stderr
    assert FALLBACK not in text
    assert (out / "summary.json").exists()
    assert b"summary/val/agent/sharpe" in _offline_run(out)
    assert not list((out / "wandb").glob("run-*"))  # no online attempt left a run behind
    assert (exited - _log_lines(text)[-1][0]).total_seconds() < EXIT_LAG


@pytest.mark.slow
def test_explicit_offline_mode_with_a_key_never_connects(tmp_path, wandb_env):
    """logger.wandb.mode=offline (no WANDB_MODE): wandb's process-wide settings stay online,
    yet nothing connects, not even wandb's SDK telemetry at exit."""
    out = tmp_path / "offline"
    with SilentServer() as server:
        proc, _, exited = _run(out, *TRAIN, "logger.wandb.mode=offline", env=wandb_env(server.port))
        time.sleep(0.5)
        assert server.connections == []
    assert FALLBACK not in proc.stdout + proc.stderr
    assert b"summary/val/agent/sharpe" in _offline_run(out)
    assert (exited - _log_lines(proc.stdout + proc.stderr)[-1][0]).total_seconds() < EXIT_LAG


@pytest.mark.slow
def test_wandb_mode_disabled_trains_and_writes_no_run(tmp_path, wandb_env):
    out = tmp_path / "disabled"
    with SilentServer() as server:
        proc, _, _ = _run(out, *TRAIN, env=wandb_env(server.port, WANDB_MODE="disabled"))
        assert server.connections == []
    assert FALLBACK not in proc.stdout + proc.stderr
    assert (out / "summary.json").exists()
    assert not list(out.rglob("*.wandb"))
    assert not list(out.glob("wandb/*run-*"))


# The factory itself, in-process: which mode a run gets, and the timeout checks. These never
# start a run (every case is decided or rejected before wandb.init).


@pytest.mark.parametrize(
    ("explicit", "env_mode", "key", "expected"),
    [
        (None, None, None, "offline"),  # no key: offline, as always
        (None, None, FAKE_KEY, "online"),
        (None, "offline", FAKE_KEY, "offline"),  # WANDB_MODE is honoured with a key
        (None, "dryrun", FAKE_KEY, "offline"),  # wandb's old name for offline
        (None, "DISABLED", None, "disabled"),
        (None, "online", None, "online"),
        (None, "", FAKE_KEY, "online"),  # empty is unset
        ("offline", "online", FAKE_KEY, "offline"),  # the explicit key wins
        ("online", "disabled", None, "online"),
        ("disabled", None, FAKE_KEY, "disabled"),
    ],
)
def test_mode_resolution(monkeypatch, explicit, env_mode, key, expected):
    for var, value in (("WANDB_MODE", env_mode), ("WANDB_API_KEY", key)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    assert resolve_mode(explicit) == expected


def test_bad_modes_name_where_they_came_from(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(ConfigError, match="WANDB_MODE .*'sometimes'"):
        resolve_mode(None)
    with pytest.raises(ConfigError, match="logger.wandb.mode .*'shared'"):
        resolve_mode("shared")


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "15", True, None])
def test_init_timeout_must_be_positive_seconds(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(ConfigError, match=r"logger\.wandb\.init_timeout must be .*> 0"):
        wandb_logger(save_dir=str(tmp_path), init_timeout=bad)


def test_finish_timeout_may_be_zero_but_not_negative(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(ConfigError, match=r"logger\.wandb\.finish_timeout must be .*>= 0"):
        wandb_logger(save_dir=str(tmp_path), finish_timeout=-1)


@pytest.mark.slow
def test_wandb_offline_without_api_key_one_run_per_multirun_job(tmp_path):
    sweep = tmp_path / "sweep"
    env = {"WANDB_API_KEY": "", "WANDB_DIR": str(tmp_path)}
    run_multirun(
        sweep, "logger=wandb", "debug=fast", "seed=1,2", "~callbacks.progress_bar", env=env
    )
    for job in ("0", "1"):
        runs = list((sweep / job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, (job, runs)  # each job its own run, none reused
        run = offline_run(sweep / job)  # grouped by the sweep (no study: not an Optuna sweep)
        assert (run.run.run_group, run.run.display_name) == (sweep.name, f"{sweep.name}-job{job}")
        assert "trial_params" not in run.config
