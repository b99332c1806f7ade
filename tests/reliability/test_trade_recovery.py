"""`kill -9` of a running `python trade.py` at a random bar, then a restart: it ends where an
uninterrupted run ends, with no bar twice and no order lost or duplicated (slow: two replays
of the test split as real subprocesses)."""

import os
import random
import signal
import sqlite3
import subprocess
import time

import pandas as pd
import pytest

from tests.e2e.conftest import ROOT
from tests.trade_runs import replay_split, run_trade, table, trade_cmd, train_small

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_small(tmp_path_factory)


@pytest.fixture(scope="module")
def replayed(trained, tmp_path_factory):
    return replay_split(trained, tmp_path_factory)


def test_kill_9_at_a_random_bar_then_restart_ends_where_an_uninterrupted_run_ends(
    trained, replayed, tmp_path
):
    reference, _ = replayed
    kill_at = random.Random().randint(40, 380)  # a bar index; printed by any failure below
    state = tmp_path / "state.sqlite"
    proc = subprocess.Popen(
        trade_cmd(tmp_path / "first", state, f"ckpt_path={trained}"),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    reached = -1
    while reached < kill_at and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
        if state.exists():
            try:
                with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1) as db:
                    row = db.execute("SELECT bar_seq FROM account").fetchone()
                reached = -1 if row is None or row[0] is None else row[0]
            except sqlite3.OperationalError:
                pass  # tables not created yet
    assert proc.poll() is None, f"trade.py ended before bar {kill_at}: {proc.stderr.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    bars_before = len(table(state, "bars"))
    assert bars_before >= kill_at, (kill_at, bars_before)

    second = run_trade(tmp_path / "second", state, f"ckpt_path={trained}")
    assert "resuming" in second.stdout and "after bar" in second.stdout
    ref = reference / "state.sqlite"
    for name, cols in (
        ("bars", ["seq", "time", "close"]),
        ("orders", ["decided_seq", "decided_time", "action", "status", "filled_seq"]),
        ("fills", ["seq", "asset", "kind", "units", "price"]),
        ("equity", ["seq", "time", "equity", "cash", "cost", "weights"]),
    ):
        got, want = table(state, name)[cols], table(ref, name)[cols]
        pd.testing.assert_frame_equal(
            got, want, check_exact=True, obj=f"{name} (kill at {kill_at})"
        )
    assert table(state, "bars")["time"].is_unique
