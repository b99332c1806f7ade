"""`python train.py seeds=[...]` and `python eval.py` on its directory: one experiment over
several agent seeds, on one market, reported as every seed and mean ± sd."""

import json
import subprocess
import sys

import numpy as np
import pytest

from adan.evaluation.checkpoint import read_checkpoint
from tests.e2e.conftest import ROOT, run_train

pytestmark = pytest.mark.slow  # two trainings and their evaluation: .ci/run's slow stage
FAST = ("debug=fast", "agent.total_timesteps=1024", "env.num_envs=8")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds") / "exp"
    proc = run_train(out, *FAST, "seeds=[3,5]", timeout=600)
    return out, proc


def test_each_seed_is_a_run_of_its_own_on_one_market(experiment):
    out, proc = experiment
    runs = json.loads((out / "seeds.json").read_text())["runs"]
    assert set(runs) == {"3", "5"}
    ckpts = {s: read_checkpoint(out / f"seed_{s}" / "checkpoints" / "last.ckpt") for s in runs}
    cfgs = {s: ck["adan_config"] for s, ck in ckpts.items()}
    assert cfgs["3"]["seed"] == 3 and cfgs["5"]["seed"] == 5
    # the market is the experiment's (seed 42's), not each agent seed's
    assert cfgs["3"]["data"]["source"]["seed"] == cfgs["5"]["data"]["source"]["seed"] == 42
    assert ckpts["3"]["adan_data"] == ckpts["5"]["adan_data"]
    a, b = (ckpts[s]["state_dict"] for s in ("3", "5"))
    assert any(not np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)  # two agents
    assert "2 seeds [3, 5]" in proc.stdout


def test_the_summary_is_every_seed_and_their_mean_and_sd(experiment):
    out, _ = experiment
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["seeds"] == [3, 5]
    for s in ("3", "5"):
        own = json.loads((out / f"seed_{s}" / "summary.json").read_text())
        assert summary["per_seed"][s] == own
    sharpe = [summary["per_seed"][s]["val"]["agent"]["sharpe"] for s in ("3", "5")]
    assert summary["mean"]["val"]["agent"]["sharpe"] == pytest.approx(np.mean(sharpe))
    assert summary["sd"]["val"]["agent"]["sharpe"] == pytest.approx(np.std(sharpe, ddof=1))
    # buy-and-hold is the same market for both seeds: no spread
    assert summary["sd"]["val"]["buy_and_hold"]["sharpe"] == 0.0
    assert summary["objective"]["val/sharpe"] == pytest.approx(np.mean(sharpe))


def test_eval_scores_every_seed_and_the_mean(experiment, tmp_path):
    out, _ = experiment
    ev = tmp_path / "eval"
    cmd = [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={out}", f"hydra.run.dir={ev}",
           "n_boot=100", "random_runs=2"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["seeds"] == [3, 5] and metrics["split"] == "test"
    for s in ("3", "5"):
        own = json.loads((ev / f"seed_{s}" / "metrics.json").read_text())
        assert metrics["agent"][s] == own["metrics"]["agent"]
        assert metrics["versus_best_rule"][s] == own["meta"]["versus_best_rule"]
    sharpe = [metrics["agent"][s]["sharpe"] for s in ("3", "5")]
    assert metrics["mean"]["agent"]["sharpe"] == pytest.approx(np.mean(sharpe))
    beats = sum(metrics["versus_best_rule"][s]["low"] > 0 for s in ("3", "5"))
    assert metrics["beats_best_rule"] == {"seeds": beats, "of": 2}
    report = (ev / "report.md").read_text()
    assert "mean ± sd" in report and "(seed_3/report.md)" in report
    assert f"on **{beats} of 2 seeds**" in report


def test_bad_seeds_are_refused_naming_the_key(tmp_path):
    proc = run_train(tmp_path / "a", *FAST, "seeds=[1,1]", check=False)
    assert proc.returncode != 0 and "seeds repeats a seed" in proc.stderr
    proc = run_train(tmp_path / "b", *FAST, "seeds=[1]", "ckpt_path=" + str(tmp_path), check=False)
    assert proc.returncode != 0 and "not a multi-seed experiment" in proc.stderr
