"""`python train.py trading=<profile>` end to end: each profile trains, the multi-profile run
reports metrics per profile, and `eval.py` backtests one profile of a multi-profile agent."""

import json

import pandas as pd
import pytest

from tests.e2e.conftest import ROOT, run_train

PROFILES = ("conservative", "moderate", "aggressive")


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

    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={out}", "profile=aggressive",
         f"hydra.run.dir={tmp_path / 'eval'}", "baselines=[buy_and_hold]", "n_boot=50"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "evaluating 'aggressive'" in proc.stderr + proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_trains(tmp_path, profile):
    out = tmp_path / "run"
    run_train(out, "debug=fast", f"trading={profile}")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val"]["agent"]["bars"] > 0
