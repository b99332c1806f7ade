"""`python train.py` end to end: what a researcher runs, checked by what it writes."""

import json

import pandas as pd
import pytest

from adan.evaluation.checkpoint import read_checkpoint
from tests.e2e.conftest import run_train
from tests.e2e.tensorboard_records import read_hparams


def read_metrics(out):
    return pd.read_csv(out / "csv" / "metrics.csv")


def test_default_debug_run_writes_checkpoint_metrics_and_summary(tmp_path):
    out = tmp_path / "run"
    proc = run_train(out, "debug=fast")
    summary = json.loads((out / "summary.json").read_text())
    for split in ("train", "val"):
        assert set(summary[split]) == {"agent", "buy_and_hold"}
        assert {"total_return", "sharpe", "max_drawdown", "turnover", "costs"} <= set(
            summary[split]["agent"]
        )
    assert "val/sharpe" in summary["objective"]
    assert (out / "checkpoints" / "last.ckpt").exists()
    assert list((out / "checkpoints").glob("best-iter*.ckpt"))
    metrics = read_metrics(out)
    for col in (
        "train/policy_loss",
        "train/value_loss",
        "train/entropy",
        "train/approx_kl",
        "train/clipfrac",
        "train/explained_variance",
        "time/sps",
        "train/episode_return",
        "trading/sharpe",
        "trading/max_drawdown",
        "trading/costs",
        "val/sharpe",
        "memory/process_rss_mib",
    ):
        assert col in metrics.columns, col
        assert metrics[col].notna().any(), col
    # One x-axis for every curve: validation rows sit at env steps of train rows, and the
    # closing summary at the last of them (not at the iteration index, near 0).
    train_steps = set(metrics.loc[metrics["train/policy_loss"].notna(), "step"])
    val_steps = set(metrics.loc[metrics["val/sharpe"].notna(), "step"])
    assert val_steps and val_steps <= train_steps, (val_steps, train_steps)
    summary_steps = set(metrics.loc[metrics["summary/val/agent/sharpe"].notna(), "step"])
    assert summary_steps == {max(train_steps)}
    assert "buy-and-hold" in proc.stdout  # the closing summary table
    assert (out / ".hydra" / "config.yaml").exists()


def test_cnn_with_adaptive_reward_logs_each_reward_component(tmp_path):
    out = tmp_path / "run"
    run_train(out, "model=cnn", "reward=adaptive", "debug=fast")
    cols = read_metrics(out).columns
    comps = [c for c in cols if c.startswith("reward/")]
    assert len(comps) >= 4, cols.tolist()


def test_mlp_model_trains(tmp_path):
    out = tmp_path / "run"
    run_train(out, "model=mlp", "debug=fast")
    ckpt = read_checkpoint(out / "checkpoints" / "last.ckpt")
    assert any(k.startswith("policy.pi_extractor.net") for k in ckpt["state_dict"])


def test_tensorboard_logger_writes_events_and_the_hparams_row(tmp_path):
    out = tmp_path / "run"
    run_train(out, "logger=tensorboard", "debug=fast", "agent.learning_rate=0.0002")
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    # the HParams tab's row: the config's scalar settings, the final validation metrics
    hparams, metrics, values = read_hparams(out / "tensorboard")
    assert hparams["agent.learning_rate"] == 0.0002 and hparams["seed"] == 42
    assert {"hp/val_sharpe", "hp/val_total_return", "hp/best_val_sharpe"} <= set(metrics)
    summary = json.loads((out / "summary.json").read_text())
    assert values["hp/val_sharpe"] == pytest.approx(summary["val"]["agent"]["sharpe"], rel=1e-6)


def test_short_cartpole_experiment(tmp_path):
    out = tmp_path / "run"
    run_train(
        out,
        "experiment=cartpole",
        "agent.total_timesteps=4096",
        "trainer.check_val_every_n_epoch=8",
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] > 3000
    assert summary["val"]["agent"]["mean_return"] > 50  # a random policy scores about 20
    returns = read_metrics(out)["train/episode_return"].dropna()
    assert returns.iloc[-3:].mean() > returns.iloc[:3].mean() + 20  # it learns


def test_bad_config_value_fails_before_training_and_names_the_key(tmp_path):
    proc = run_train(tmp_path / "run", "agent.clip_range=-1", check=False)
    assert proc.returncode != 0
    assert "agent.clip_range" in proc.stderr + proc.stdout
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bf16_mixed_precision_path_runs_on_cpu(tmp_path):
    """trainer=gpu's precision through Lightning's AMP plugin (gradient clipping included)."""
    out = tmp_path / "run"
    proc = run_train(out, "trainer.precision=bf16-mixed", "debug=fast", "~callbacks.progress_bar")
    assert json.loads((out / "summary.json").read_text())["env_steps"] == 2048
    # without ADAN's bar there is no bar at all (not Lightning's "Epoch 3/3 ... 1/1" one)
    assert "Epoch " not in proc.stdout + proc.stderr
