"""Long end-to-end runs kept out of the default suite's 10 minutes and run by `.ci/run`'s
slow stage: the shipped trading defaults trained and evaluated, and a multi-profile agent
trained, reported per profile and evaluated on one profile, and Lightning DDP over two CPU
processes."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from tests.e2e.conftest import ROOT, run_train
from tests.e2e.test_eval import run_eval

pytestmark = pytest.mark.slow
PROFILES = ("conservative", "moderate", "aggressive")


def test_a_short_run_with_the_shipped_trading_defaults_trains_and_evaluates(tmp_path):
    """debug=fast turns the no-trade band and the 4x training market off (a smoke run must
    trade); here they are back at their shipped values, as a user's run has them."""
    out = tmp_path / "run"
    shipped = ("trading.execution.rebalance_band=0.2", "trading.train_cost_multiplier=null")
    run_train(out, "debug=fast", *shipped)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["status"] == "completed" and "agent" in saved["val"]
    ev = tmp_path / "eval"
    proc = run_eval(ev, f"ckpt_path={out}", "n_boot=50", "random_runs=2")
    metrics = json.loads((ev / "metrics.json").read_text())
    assert {"agent", "momentum", "vol_target"} <= set(metrics["metrics"])
    assert "Does the agent beat the best simple rule" in proc.stdout


def test_multi_profile_run_trains_every_profile_and_logs_each(tmp_path):
    out = tmp_path / "run"
    run_train(out, "debug=fast", "trading=multi_profile", "env.num_envs=12")
    metrics = pd.read_csv(out / "csv" / "metrics.csv")
    for profile in PROFILES:
        for name in ("sharpe", "stop_exits", "risk_clips", "episodes"):
            col = f"trading/{profile}/{name}"
            assert col in metrics.columns and metrics[col].notna().any(), col
        assert metrics[f"val/{profile}/sharpe"].notna().any()
    for col in ("dbe/size", "dbe/exposure", "risk/clips_max_position", "execution/partial_fills"):
        assert col in metrics.columns and metrics[col].notna().any(), col
    summary = json.loads((out / "summary.json").read_text())
    assert {f"agent_{p}" for p in PROFILES} <= set(summary["val"])
    config = (out / ".hydra" / "config.yaml").read_text()
    assert "profiles:" in config and "kelly" in config

    proc = subprocess.run(
        [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={out}", "profile=aggressive",
         f"hydra.run.dir={tmp_path / 'eval'}", "baselines=[buy_and_hold]", "n_boot=50"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "evaluating 'aggressive'" in proc.stderr + proc.stdout


def test_ddp_on_two_cpu_processes(tmp_path):
    out = tmp_path / "run"
    proc = run_train(
        out, "trainer=ddp", "trainer.devices=2", "debug=fast", "~callbacks.progress_bar"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] == 4096  # 4 iterations x 512 steps x 2 processes
    assert proc.stdout.count("summary written") + proc.stderr.count("summary written") == 1
