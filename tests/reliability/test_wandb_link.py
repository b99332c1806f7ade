"""What a sweep trial's W&B run shows, read back from its offline files: the study's group,
the trial's parameters, metrics against env steps, best values, checkpoints as artifacts, and
an eval run that joins the group and names the training run. Offline only: no API key, every
W&B directory inside tmp_path."""

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT, run_train
from tests.e2e.wandb_records import offline_env, offline_run

# one train and one eval run (about a minute on 2 cores): the slow stage of .ci/run
pytestmark = pytest.mark.slow

FAST = ("debug=fast", "~callbacks.progress_bar")


def run_eval(out_dir, *overrides, env):
    cmd = [sys.executable, str(ROOT / "eval.py"), f"hydra.run.dir={out_dir}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        pytest.fail(f"eval.py exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def test_wandb_sweep_trial_run_and_the_eval_that_links_to_it(tmp_path):
    env = offline_env(tmp_path)
    out = tmp_path / "trial"
    trial = ("++optuna_trial.study=st", "++optuna_trial.number=3",
             f"++optuna_trial.storage=sqlite:///{tmp_path / 'study.db'}")  # fmt: skip
    run_train(out, *FAST, "logger=wandb", *trial, "agent.learning_rate=0.0002", env=env)
    run = offline_run(out)

    # one group per study, one run per trial
    assert (run.run.run_group, run.run.display_name) == ("st", "st-trial3")
    assert run.run.job_type == "train"
    assert run.config["optuna_trial"]["study"] == "st" and run.config["optuna_trial"]["number"] == 3
    params = run.config["trial_params"]
    assert params["agent.learning_rate"] == 0.0002 and params["debug"] == "fast"
    assert not [k for k in params if "optuna_trial" in k]
    assert run.config["agent"]["learning_rate"] == 0.0002  # and the whole resolved config

    # env_steps is the x-axis of every metric, and every row carries it
    defined = {(m.name, m.glob_name, m.step_metric) for m in run.metrics}
    assert ("env_steps", "", "") in defined and ("", "*", "env_steps") in defined
    rows = [r for r in run.history if any(k.startswith(("train/", "val/")) for k in r)]
    assert rows and all("env_steps" in r for r in rows)
    assert max(r["env_steps"] for r in rows) == 2048

    # the summary: final values and the best validation ones
    val_sharpe = [r["val/sharpe"] for r in run.history if "val/sharpe" in r]
    assert run.summary["best/val/sharpe"] == pytest.approx(max(val_sharpe), rel=1e-6)
    assert run.summary["best/val/max_drawdown"] == pytest.approx(
        min(r["val/max_drawdown"] for r in run.history if "val/max_drawdown" in r)
    )
    assert "summary/val/agent/sharpe" in run.summary and "val/sharpe" in run.summary

    # last.ckpt and the best checkpoint, as one model artifact logged once, at the end
    (model,) = [a for a in run.artifacts if a.type == "model"]
    files = run.artifact_files(model)
    assert "last.ckpt" in files and any(f.startswith("best-") for f in files), files
    assert model.name == f"model-{run.run.run_id}"
    identity = json.loads((out / "wandb_run.json").read_text())
    assert identity["id"] == run.run.run_id and identity["group"] == "st"
    assert identity["model_artifact"] == f"model-{run.run.run_id}:latest"

    # eval joins the group, names the training run, and logs its report as an artifact
    ev = tmp_path / "eval"
    proc = run_eval(ev, f"ckpt_path={out}", "logger=wandb", "baselines=[flat]", "n_boot=50",
                    "random_runs=1", env=env)  # fmt: skip
    evr = offline_run(ev)
    assert (evr.run.run_group, evr.run.job_type) == ("st", "eval")
    assert evr.run.display_name == "st-trial3-eval"
    assert evr.config["training_run_id"] == run.run.run_id
    assert evr.config["training_run_path"].endswith(run.run.run_id)
    (report,) = [a for a in evr.artifacts if a.type == "report"]
    files = evr.artifact_files(report)
    assert {"report.md", "metrics.json", "plots/equity.png"} <= set(files), files
    # wandb 0.31 cannot use an artifact offline: the config is the link there
    assert evr.used_artifacts == []
    assert "refers to training run" in proc.stdout + proc.stderr
