"""Helpers of the trade.py tests that run real subprocesses (tests/e2e, tests/reliability)."""

import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from tests.e2e.conftest import ROOT, run_train

SMALL = ("debug=fast", "data.source.n_bars=3000")  # a 439-bar test split, ~7 s of training


def train_small(tmp_path_factory):
    """A checkpoint of the small synthetic market (its run directory)."""
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


def replay_split(trained, tmp_path_factory):
    """One uninterrupted replay of the checkpoint's test split: (its folder, the process)."""
    root = tmp_path_factory.mktemp("trade")
    proc = run_trade(root / "run", root / "state.sqlite", f"ckpt_path={trained}")
    return root, proc


def table(state, name):
    with sqlite3.connect(state) as db:
        return pd.read_sql_query(f"SELECT * FROM {name} ORDER BY rowid", db)
