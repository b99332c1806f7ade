"""Resuming with a config that changes the experiment is refused before any work, with a table
of what differs; what may change on resume (the budget, trainer, callbacks, logger) does."""

from __future__ import annotations

import pytest

from adan.config.resume import check_resume, experiment_differences, new_settings
from adan.errors import ResumeMismatchError
from adan.evaluation.checkpoint import read_checkpoint
from tests.reliability.conftest import FAST, run, train_in_process


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real checkpoints: the default CNN on 2 assets, an MLP, and a 3-asset market."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, extra in {
        "default": [],
        "mlp": ["model=mlp"],
        "three_assets": ["data.source.n_assets=3"],
    }.items():
        train_in_process(root / name, *FAST, "trainer.max_epochs=1", *extra)
        out[name] = root / name / "checkpoints" / "last.ckpt"
    return out


def _refused(tmp_path, ckpt, *overrides) -> str:
    out = tmp_path / "resumed"
    with pytest.raises(ResumeMismatchError) as err:
        train_in_process(out, *FAST, f"ckpt_path={ckpt}", *overrides)
    assert not out.exists()  # refused before any work
    return str(err.value)


def test_a_changed_fee_is_refused_with_the_table(tmp_path, runs):
    proc = run("train.py", tmp_path / "run", *FAST, f"ckpt_path={runs['default']}",
               "trading.fee_bps=50")  # fmt: skip
    assert proc.returncode != 0
    assert "ResumeMismatchError: cannot resume" in proc.stderr
    assert "(1 key, checkpoint value -> requested value):\n  trading.fee_bps: 5.0 -> 50.0\n" in (
        proc.stderr
    )
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_mlp_checkpoint_into_the_cnn_is_refused_not_a_shape_error(tmp_path, runs):
    err = _refused(tmp_path, runs["mlp"], "model=cnn")
    assert "model.extractor._target_: 'adan.models.MLPExtractor' -> 'adan.models.CustomCNN'" in err
    assert "size mismatch" not in err and "shape" not in err


def test_a_three_asset_checkpoint_into_two_assets_is_refused(tmp_path, runs):
    err = _refused(tmp_path, runs["three_assets"])  # the default market has 2 assets
    assert "data.source.n_assets: 3 -> 2" in err


def test_the_budget_trainer_callbacks_and_logger_may_change(tmp_path, runs):
    summary = train_in_process(
        tmp_path / "resumed",
        *FAST,
        f"ckpt_path={runs['default']}",
        "agent.total_timesteps=4096",
        "trainer.max_epochs=2",
        "trainer.check_val_every_n_epoch=1",
        "callbacks.memory.every_n_epochs=2",
        "logger=tensorboard",
    )
    assert summary["status"] == "completed" and summary["env_steps"] == 2 * 512
    ckpt = read_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert ckpt["adan_state"]["env_steps"] == 2 * 512


def test_differences_cover_changed_and_removed_keys_not_new_ones():
    saved = {"agent": {"n_steps": 128, "total_timesteps": 10, "gamma": 0.9}, "seed": 1,
             "trainer": {"a": 1}, "env": {"bars_per_year": 8760}}  # fmt: skip
    asked = {"agent": {"n_steps": 64, "total_timesteps": 99}, "seed": 2, "trainer": {"a": 2},
             "reward": {"scale": 1.0}, "env": {"bars_per_year": None}}  # fmt: skip
    diffs = experiment_differences(saved, asked)
    assert diffs == [
        ("agent.gamma", 0.9, "<absent>"),  # dropped from the request
        ("agent.n_steps", 128, 64),
        ("seed", 1, 2),
    ]  # not the budget, the trainer, a setting newer than the checkpoint or a derived null
    assert new_settings(saved, asked) == {"reward.scale": 1.0}
    with pytest.raises(ResumeMismatchError, match="3 keys"):
        check_resume(saved, asked, "x.ckpt")
    check_resume(saved, {**saved, "trainer": {"a": 5}}, "x.ckpt")  # trainer may change
    with pytest.raises(ResumeMismatchError, match="env.bars_per_year: 8760 -> 252"):
        check_resume(saved, {**saved, "env": {"bars_per_year": 252}}, "x.ckpt")
