"""The discrete default on the synthetic market keeps exploring and does not end as
buy-and-hold (it did before the entropy floor: entropy 2.20 -> 0.11, long both assets on
every test bar). A whole default run: minutes, so slow (`make test-all`)."""

import json
import math
import subprocess
import sys

import pandas as pd
import pytest

from tests.e2e.conftest import ROOT, run_train


@pytest.mark.slow
def test_the_discrete_default_does_not_collapse_to_buy_and_hold(tmp_path):
    out = tmp_path / "run"
    run_train(out, "trading.action_mode=discrete", "callbacks.progress_bar=null", timeout=1800)
    entropy = pd.read_csv(out / "csv" / "metrics.csv")["train/entropy"].dropna()
    uniform = 2 * math.log(3)  # {short, flat, long} for each of 2 assets
    assert entropy.iloc[-1] > 0.25 * uniform  # the floor is 0.5; without it, 0.05
    ev = tmp_path / "eval"
    cmd = [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={out}", f"hydra.run.dir={ev}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((ev / "metrics.json").read_text())["metrics"]
    agent, hold = metrics["agent"], metrics["buy_and_hold"]
    assert agent["trades"] > 2  # buy-and-hold enters each asset once and never trades again
    assert agent["sharpe"] != pytest.approx(hold["sharpe"], abs=0.05)
