"""Optuna sweeps through the real ``train.py -m hparams_search=ppo_optuna``: provenance, a
resumed study with new proposals, parallel trials through joblib, pruning, the sweep report;
and how a job's summary becomes a trial's state and value."""

from __future__ import annotations

import json
import math

import optuna
import pytest
from optuna.trial import TrialState

from adan.errors import ConfigError
from adan.tasks.sweep import lower_confidence_bound, trial_outcome
from hydra_plugins.adan_optuna_sweeper.sweeper import trial_seed
from tests.e2e.conftest import run_multirun

SWEEP = ("hparams_search=ppo_optuna", "debug=fast", "~callbacks.progress_bar")
# two trials at a time through joblib (the basic launcher runs in tests/reliability)
PARALLEL = ("hydra/launcher=joblib", "hparams_search.n_jobs=2", "hydra.launcher.n_jobs=2")
# prunes every trial at its first validation after the warm-up: a pruning we can predict
ALWAYS_PRUNE = (
    "hparams_search.pruner._target_=optuna.pruners.ThresholdPruner",
    "~hparams_search.pruner.n_startup_trials",
    "~hparams_search.pruner.interval_steps",
    "+hparams_search.pruner.lower=1e9",
    "hparams_search.pruner.n_warmup_steps=1",
    "trainer.check_val_every_n_epoch=1",
)


def _study(db) -> optuna.Study:
    return optuna.load_study(study_name="ppo_optuna", storage=f"sqlite:///{db}")


@pytest.mark.slow  # ~80 s: in .ci/run's slow stage, beside the other sweep backends
def test_a_resumed_sweep_continues_the_study_with_new_trials_in_parallel_and_prunes(tmp_path):
    db = tmp_path / "study.db"
    storage = f"hparams_search.storage=sqlite:///{db}"
    first, second = tmp_path / "first", tmp_path / "second"
    run_multirun(
        first, *SWEEP, storage, *PARALLEL, "hparams_search.n_trials=2", "hparams_search.pruner=null"
    )
    trials = _study(db).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for t in trials:  # provenance, both ways
        run_dir = first / f"trial_{t.number}"
        assert t.user_attrs["run_dir"] == str(run_dir.resolve())
        assert t.user_attrs["seed"] == 42
        assert any(o.startswith("agent.learning_rate=") for o in t.user_attrs["overrides"])
        back = json.loads((run_dir / "sweep_trial.json").read_text())
        assert back["study"] == "ppo_optuna" and back["trial_number"] == t.number
        summary = json.loads((run_dir / "summary.json").read_text())
        assert t.value == pytest.approx(summary["objective"]["val/sharpe"])
        assert (run_dir / "val_returns.csv").is_file()
    report = (first / "sweep_report.md").read_text()
    assert "**DSR = " in report and "**PBO = " in report  # computed, not skipped
    assert "python eval.py ckpt_path=" in report
    assert (first / "optimization_results.yaml").is_file()

    # The same command again, every trial pruned at iteration 1: the study goes on (trials 2 and 3) with proposals it has not made before.
    run_multirun(
        second,
        *SWEEP,
        storage,
        "hparams_search.n_trials=2",
        *PARALLEL,
        *ALWAYS_PRUNE,
    )
    trials = _study(db).trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == 4, "a resumed study proposed a trial it had already run"
    for t in trials[2:]:
        assert t.state == TrialState.PRUNED  # not FAIL: the sweep itself succeeded
        assert t.user_attrs["pruned_at"] == 1
        run_dir = second / f"trial_{t.number}"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "pruned" and summary["env_steps"] == 1024  # of 2048
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()  # kept for a resume
        assert 1 in t.intermediate_values


def test_a_summary_becomes_the_trials_state_and_value():
    done = {"status": "completed", "objective": {"val/sharpe": 1.5}}
    assert (trial_outcome(done).state, trial_outcome(done).value) == ("COMPLETE", 1.5)
    # a flat policy has no Sharpe ratio: a scored, bad trial, not a failed one
    flat = {"status": "completed", "objective": {"val/sharpe": float("nan")}}
    outcome = trial_outcome(flat, nan_score=-3.0)
    assert (outcome.state, outcome.value) == ("COMPLETE", -3.0)
    assert outcome.attrs["objective_was_nan"] is True
    pruned = trial_outcome({"status": "pruned", "pruned_at": 39})
    assert (pruned.state, pruned.attrs) == ("PRUNED", {"pruned_at": 39})
    assert trial_outcome({"status": "interrupted"}).state == "FAIL"
    assert trial_outcome({"status": "completed"}).state == "FAIL"  # no objective
    seeds = {
        "status": "completed",
        "seeds": [0, 1, 2],
        "objective": {"val/sharpe": 2.0},
        "objective_sd": {"val/sharpe": 0.6},
    }
    assert trial_outcome(seeds).value == 2.0
    lcb = trial_outcome(seeds, objective="lcb").value
    # mean - t(0.95, 2) * sd / sqrt(3), t = 2.919986
    assert lcb == pytest.approx(2.0 - 2.919986 * 0.6 / math.sqrt(3), abs=1e-6)
    assert lower_confidence_bound(2.0, 0.6, 1) == 2.0  # one seed: no spread to bound
    with pytest.raises(ConfigError, match="hparams_search.objective"):
        trial_outcome(done, objective="median")


def test_each_trial_of_each_study_seed_draws_with_a_seed_of_its_own():
    seeds = {trial_seed(s, k) for s in range(1230, 1240) for k in range(50)}
    assert len(seeds) == 500  # (s, k) and (s + 1, k - 1) no longer share a draw
    assert trial_seed(1234, 7) == trial_seed(1234, 7)  # reproducible
