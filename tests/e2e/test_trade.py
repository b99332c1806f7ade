"""`python trade.py` on a checkpoint written by `python train.py`: the replay of its test split
trades exactly as `eval.py`'s backtest, and a state file is refused by a checkpoint or feed it
does not belong to (the `kill -9` test: tests/reliability/test_trade_recovery.py)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import ROOT
from tests.trade_runs import replay_split, run_trade, table, train_small


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_small(tmp_path_factory)


@pytest.fixture(scope="module")
def replayed(trained, tmp_path_factory):
    return replay_split(trained, tmp_path_factory)


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
    assert (
        "belongs to another setup" in proc.stderr and "feed.split: 'test' -> 'val'" in proc.stderr
    )
