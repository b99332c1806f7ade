"""Sweeps in the trackers: every trial's W&B run in its study's group with its parameters, and
each trial a row of TensorBoard's HParams view; the pieces in-process. Offline only: no API
key, every W&B directory inside tmp_path. The sweeps train several runs each: slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adan.config.secrets import mask_password, masked
from adan.ops.tensorboard_hparams import final_metrics, hyperparameters
from adan.ops.trial import trial_of, trial_params
from adan.ops.wandb_logger import IDENTITY_FILE, RunLogger, eval_run_settings
from tests.e2e.conftest import run_multirun
from tests.e2e.tensorboard_records import read_hparams
from tests.e2e.wandb_records import offline_env, offline_run

FAST = ("debug=fast", "~callbacks.progress_bar")


@pytest.mark.slow
def test_a_sweep_of_two_trials_shares_the_study_group_and_each_is_an_hparams_row(tmp_path):
    """A plain multirun given the overrides the Optuna sweeper gives its jobs."""
    sweep = tmp_path / "sweep"
    run_multirun(
        sweep,
        *FAST,
        "logger=[wandb,tensorboard]",
        "agent.learning_rate=0.0002",
        "++optuna_trial.study=st",
        f"++optuna_trial.storage=sqlite:///{tmp_path / 'study.db'}",
        "++optuna_trial.number=0,1",
        env=offline_env(tmp_path),
        timeout=600,
    )
    ids = set()
    for job in ("0", "1"):
        run = offline_run(sweep / job)
        assert (run.run.run_group, run.run.display_name) == ("st", f"st-trial{job}")
        trial = run.config["optuna_trial"]  # the resolved config's node (storage redacted)
        assert (trial["study"], trial["number"]) == ("st", int(job))
        assert run.config["trial_params"]["agent.learning_rate"] == 0.0002
        assert "optuna_trial.number" not in run.config["trial_params"]
        ids.add(run.run.run_id)
        hparams, metrics, values = read_hparams(sweep / job / "tensorboard")
        assert hparams["agent.learning_rate"] == 0.0002 and "optuna_trial.number" not in hparams
        assert "agent.gamma" not in hparams  # a trial's row: its parameters, not the config
        assert "hp/val_sharpe" in metrics and "hp/val_sharpe" in values
    assert len(ids) == 2


@pytest.mark.slow
def test_optuna_sweeper_trials_join_the_study_group(tmp_path):
    """The real sweeper (hparams_search=ppo_optuna): each trial's run in the study's group,
    named by its trial, with the parameters the sampler chose."""
    sweep = tmp_path / "sweep"
    run_multirun(
        sweep,
        "hparams_search=ppo_optuna",
        "hparams_search.n_trials=2",
        f"hparams_search.storage=sqlite:///{tmp_path / 'study.db'}",
        "hparams_search.pruner=null",
        *FAST,
        "logger=wandb",
        env=offline_env(tmp_path),
        timeout=600,
    )
    for n in (0, 1):
        run = offline_run(sweep / f"trial_{n}")
        assert (run.run.run_group, run.run.display_name) == ("ppo_optuna", f"ppo_optuna-trial{n}")
        params = run.config["trial_params"]
        assert {"agent.learning_rate", "agent.gamma", "model.extractor.width_multiplier"} <= set(
            params
        )
        assert run.config["agent"]["gamma"] == pytest.approx(params["agent.gamma"])
        assert not any(k.startswith("optuna_trial") for k in params)
        assert "best/val/sharpe" in run.summary


# The pieces, in-process (fast).


def test_trial_params_are_the_jobs_overrides_less_the_trial_keys():
    overrides = [
        "agent.learning_rate=3e-4",
        "model=mlp",
        "seeds=[1,2]",
        "~callbacks.progress_bar",
        "+trading.fee_bps=10",
        "++optuna_trial.study=st",
        "++optuna_trial.storage='postgresql://u:secret@h/db'",
        "++optuna_trial.number=7",
    ]
    assert trial_params(overrides) == {
        "agent.learning_rate": 0.0003,
        "model": "mlp",
        "seeds": [1, 2],
        "~callbacks.progress_bar": None,
        "trading.fee_bps": 10,
    }
    assert trial_params([]) == {}


def test_the_trial_is_read_from_the_config_and_its_storage_left_out():
    cfg = OmegaConf.create({"seed": 1, "optuna_trial": {"study": "st", "number": "4",
                                                         "storage": "sqlite:///x.db"}})  # fmt: skip
    assert trial_of(cfg) == {"study": "st", "number": 4}
    assert trial_of(cfg.optuna_trial) == {"study": "st", "number": 4}
    assert trial_of(OmegaConf.create({"seed": 1})) is None
    assert trial_of(None) is None


def test_a_storage_password_never_reaches_the_tracker():
    url = "postgresql://user:hunter2@db.example:5432/optuna"
    assert mask_password(url) == "postgresql://user:***@db.example:5432/optuna"
    assert mask_password("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    config = {"optuna_trial": {"storage": url}, "logger": {"wandb": {"trial": {"storage": url}}}}
    assert "hunter2" not in json.dumps(masked(config))


def test_hparams_outside_a_sweep_are_the_groups_scalar_settings():
    cfg = OmegaConf.create(
        {
            "seed": 3,
            "agent": {"_target_": "x.y", "learning_rate": 1e-3, "target_kl": None},
            "model": {"extractor": {"strides": [2, 2], "dropout": 0.1}},
            "paths": {"output_dir": "/tmp/x"},
        }
    )
    params = hyperparameters(cfg)
    assert params == {
        "seed": 3,
        "agent.learning_rate": 1e-3,
        "agent.target_kl": "None",
        "model.extractor.dropout": 0.1,
    }


def test_hparams_metrics_are_the_final_validation_or_the_last_one():
    done = {"val": {"agent": {"sharpe": 1.5, "trades": 3, "bad": float("nan")}}}
    assert final_metrics(done) == {"hp/val_sharpe": 1.5, "hp/val_trades": 3.0}
    stopped = {"status": "interrupted", "last_validation": {"val/sharpe": 0.5}}
    assert final_metrics(stopped) == {"hp/val_sharpe": 0.5}


def test_best_values_follow_each_metrics_direction_and_the_monitor_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    lg = RunLogger(save_dir=str(tmp_path), mode="disabled")
    lg.val_range = {"val/sharpe": (-1.0, 2.0), "val/max_drawdown": (0.1, 0.4),
                    "val/turnover": (1.0, 9.0), "val/costs": (0.01, 0.02)}  # fmt: skip
    assert lg.best_values("val/sharpe", "max") == {
        "best/val/sharpe": 2.0,
        "best/val/max_drawdown": 0.1,
        "best/val/costs": 0.01,
    }
    assert lg.best_values("val/sharpe", "min")["best/val/sharpe"] == -1.0


def test_eval_finds_its_training_run_beside_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"")
    settings, runs = eval_run_settings([ckpt])
    assert settings == {"job_type": "eval"} and runs == []  # trained without W&B
    identity = {"id": "abc123", "path": "adan/abc123", "group": "st", "name": "st-trial3",
                "dir": "/x/offline-run-abc123", "model_artifact": "model-abc123:latest"}  # fmt: skip
    (run_dir / IDENTITY_FILE).write_text(json.dumps(identity))
    settings, runs = eval_run_settings([ckpt, Path(run_dir / "checkpoints" / "best.ckpt")])
    assert settings["group"] == "st" and settings["name"] == "st-trial3-eval"
    assert settings["job_type"] == "eval"
    assert settings["run_config"]["training_run_id"] == "abc123"
    assert settings["run_config"]["training_run_path"] == "adan/abc123"
    assert [r["id"] for r in runs] == ["abc123"]  # one run, however many of its checkpoints
