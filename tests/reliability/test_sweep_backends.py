"""Sweeps beyond one process: two sweep processes on one study in a real PostgreSQL server,
trials through submitit, multi-seed trials scored by a lower confidence bound, and a trial
started again after a SIGTERM (a SLURM requeue) resuming its own checkpoint."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from adan.tasks.sweep import lower_confidence_bound
from tests.e2e.conftest import ROOT, run_multirun
from tests.postgres_server import postgres_server

pytestmark = pytest.mark.slow

SWEEP = ("hparams_search=ppo_optuna", "debug=fast", "~callbacks.progress_bar")


def _sweep_cmd(sweep_dir, *overrides: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        f"hydra.sweep.dir={sweep_dir}",
        *overrides,
    ]


def test_two_sweep_processes_share_one_study_on_postgresql(tmp_path):
    with postgres_server() as url:
        args = (*SWEEP, f"hparams_search.storage={url}", "hparams_search.n_trials=2")
        procs = [
            subprocess.Popen(
                _sweep_cmd(tmp_path / f"worker{i}", *args, "hparams_search.pruner=null"),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i in range(2)
        ]
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        for p, out in zip(procs, outputs, strict=True):
            assert p.returncode == 0, out[-4000:]
        study = optuna.load_study(study_name="ppo_optuna", storage=url)
        trials = study.trials
    # both workers' trials, none lost, none run twice, each proposal new
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4
    by_worker = {}
    for t in trials:
        run_dir = tmp_path.joinpath(*t.user_attrs["run_dir"].split(os.sep)[-2:])
        assert json.loads((run_dir / "sweep_trial.json").read_text())["trial_number"] == t.number
        by_worker.setdefault(run_dir.parent.name, []).append(t.number)
        # the password stays out of what the study and the reports keep
        assert "not-a-secret" not in json.dumps(t.user_attrs)
        assert "not-a-secret" not in (run_dir / "sweep_trial.json").read_text()
    assert sorted(len(v) for v in by_worker.values()) == [2, 2]
    for worker in ("worker0", "worker1"):
        assert "not-a-secret" not in (tmp_path / worker / "sweep_report.md").read_text()
        assert all(
            "not-a-secret" not in o
            for o in outputs[int(worker[-1])].splitlines()
            if "Study ppo_optuna" in o
        )


def test_a_sweep_through_submitit_local(tmp_path):
    db = tmp_path / "study.db"
    run_multirun(
        tmp_path / "sweep",
        *SWEEP,
        f"hparams_search.storage=sqlite:///{db}",
        "hparams_search.n_trials=2",
        "hparams_search.n_jobs=2",
        "hparams_search.pruner=null",
        "hydra/launcher=submitit_local",
        timeout=600,
    )
    trials = optuna.load_study(study_name="ppo_optuna", storage=f"sqlite:///{db}").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert list((tmp_path / "sweep" / ".submitit").iterdir())  # submitit's own job records
    for t in trials:
        assert (tmp_path / "sweep" / f"trial_{t.number}" / "summary.json").is_file()


def test_multi_seed_trials_are_scored_by_a_lower_confidence_bound(tmp_path):
    db = tmp_path / "study.db"
    run_multirun(
        tmp_path / "sweep",
        *SWEEP,
        f"hparams_search.storage=sqlite:///{db}",
        "hparams_search.n_trials=1",
        "hparams_search.seeds=[0,1]",
        "hparams_search.objective=lcb",
        timeout=600,
    )
    (trial,) = optuna.load_study(study_name="ppo_optuna", storage=f"sqlite:///{db}").trials
    summary = json.loads((tmp_path / "sweep" / "trial_0" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    mean, sd = summary["objective"]["val/sharpe"], summary["objective_sd"]["val/sharpe"]
    assert trial.value == pytest.approx(lower_confidence_bound(mean, sd, 2))
    assert trial.value < mean or math.isclose(sd, 0.0)
    assert trial.user_attrs["objective_mean"] == pytest.approx(mean)
    # the seeds are members of the trial, not trials: they do not report to the study
    for s in (0, 1):
        assert not (tmp_path / "sweep" / "trial_0" / f"seed_{s}" / "sweep_trial.json").exists()


def test_a_trial_started_again_after_sigterm_resumes_its_checkpoint(tmp_path):
    """What a SLURM requeue does: the same trial's job, in the same directory, after a SIGTERM
    stopped it; it resumes from last.ckpt and reports to the same trial."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask()
    run_dir = tmp_path / "sweep" / "trial_0"
    args = [
        "hydra.sweep.subdir=trial_0",
        "debug=fast",
        "agent.total_timesteps=40960",  # 80 iterations: long enough to stop midway
        "trainer.check_val_every_n_epoch=10",
        "~callbacks.progress_bar",
        "++optuna_trial.study=s",
        f"++optuna_trial.storage='{storage}'",
        f"++optuna_trial.number={trial.number}",
        "+hparams_search.pruner._target_=optuna.pruners.NopPruner",
    ]
    cmd = _sweep_cmd(tmp_path / "sweep", *args)  # a one-job multirun, as a launcher runs it
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not (last.is_file() and _reported(storage, trial.number)) and time.time() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 143
    first = json.loads((run_dir / "summary.json").read_text())
    assert first["status"] == "interrupted"

    again = run_multirun(tmp_path / "sweep", *args, timeout=600)  # the requeued job
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["env_steps"] == 40960
    assert "resuming from" in again.stdout + again.stderr
    values = optuna.load_study(study_name="s", storage=storage).trials[0].intermediate_values
    assert max(values) == 79  # reports reached the last validation, on the same trial


def _reported(storage: str, number: int) -> bool:
    trials = optuna.load_study(study_name="s", storage=storage).trials
    return bool(trials[number].intermediate_values)
