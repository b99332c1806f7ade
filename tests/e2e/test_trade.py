"""`python trade.py` on a checkpoint written by `python train.py`: the replay of its test split
trades exactly as `eval.py`'s backtest, a `kill -9` at a random bar loses nothing, and a
state file is refused by a checkpoint or feed it does not belong to."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import ROOT, run_train

SMALL = ("debug=fast", "data.source.n_bars=3000")  # a 439-bar test split, ~7 s of training


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    run_train(out, *SMALL)
    return out


def trade_cmd(run_dir, state, *overrides):
    return [sys.executable, str(ROOT / "trade.py"), f"hydra.run.dir={run_dir}",
            f"persistence.path={state}", "health.port=0", *overrides]  # fmt: skip


def run_trade(run_dir, state, *overrides, check=True):
    proc = subprocess.run(
        trade_cmd(run_dir, state, *overrides), cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    if check and proc.returncode != 0:
        pytest.fail(f"trade.py exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def table(state, name):
    with sqlite3.connect(state) as db:
        return pd.read_sql_query(f"SELECT * FROM {name} ORDER BY rowid", db)


@pytest.fixture(scope="module")
def replayed(trained, tmp_path_factory):
    """One uninterrupted replay of the checkpoint's test split."""
    root = tmp_path_factory.mktemp("trade")
    proc = run_trade(root / "run", root / "state.sqlite", f"ckpt_path={trained}")
    return root, proc


def test_replay_of_the_test_split_trades_exactly_as_the_backtest(trained, replayed, tmp_path):
    root, _ = replayed
    proc = subprocess.run(
        [sys.executable, str(ROOT / "eval.py"), f"hydra.run.dir={tmp_path / 'eval'}",
         f"ckpt_path={trained}", "baselines=[buy_and_hold]", "n_boot=50"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    backtest = pd.read_csv(tmp_path / "eval" / "agent_bars.csv")
    live = table(root / "state.sqlite", "equity")
    # row 0 of the backtest is its first decision bar (all cash); each later row a bar traded.
    # The backtest keeps the split's last bar spare; the live loop trades it too.
    steps = backtest.iloc[1:].reset_index(drop=True)
    assert len(steps) > 400 and len(live) == len(steps) + 1
    paired = live.iloc[: len(steps)]
    assert list(paired["time"]) == list(steps["time"])
    assert (paired["equity"].to_numpy() == steps["equity"].to_numpy()).all()  # bit for bit
    assert (paired["cost"].to_numpy() == steps["cost"].to_numpy()).all()
    assert (paired["turnover"].to_numpy() == steps["turnover"].to_numpy()).all()
    weights = np.array([json.loads(w) for w in paired["weights"]])
    expected = steps[[c for c in steps.columns if c.startswith("weight_")]].to_numpy()
    np.testing.assert_allclose(weights, expected, rtol=1e-12, atol=1e-15)
    assert steps["cost"].sum() > 0  # it traded, with costs
    summary = json.loads((root / "run" / "trade_summary.json").read_text())
    assert summary["bars"] == len(table(root / "state.sqlite", "bars"))
    assert summary["equity"] == live["equity"].iloc[-1]
    events = [json.loads(line) for line in (root / "run" / "trade.jsonl").read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"bar", "decision", "order", "fill"} <= kinds


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


def test_a_state_file_refuses_another_checkpoint_or_feed(trained, replayed, tmp_path):
    root, _ = replayed
    state = tmp_path / "state.sqlite"
    state.write_bytes((root / "state.sqlite").read_bytes())
    other = trained / "checkpoints" / "best-iter0001.ckpt"
    proc = run_trade(tmp_path / "a", state, f"ckpt_path={other}", check=False)
    assert proc.returncode != 0
    assert "runs model #1" in proc.stderr and "command=switch_model" in proc.stderr
    proc = run_trade(tmp_path / "b", state, f"ckpt_path={trained}", "feed.split=val", check=False)
    assert proc.returncode != 0
    assert "belongs to another setup" in proc.stderr and "'split': 'test'" in proc.stderr
