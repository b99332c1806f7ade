"""`python train.py walk_forward=rolling`: a fresh agent per fold, judged on the range after
its validation range, and one table over the folds."""

import json

import numpy as np
import pytest

from tests.e2e.conftest import run_train


@pytest.mark.slow  # every fold trained and evaluated: .ci/run's slow stage
def test_walk_forward_trains_and_evaluates_every_fold(tmp_path):
    out = tmp_path / "wf"
    run_train(
        out,
        "debug=fast",
        "walk_forward=rolling",
        "walk_forward.n_folds=2",
        "walk_forward.train_bars=3000",
        "walk_forward.val_bars=1000",
        "walk_forward.test_bars=1000",
    )
    summary = json.loads((out / "walk_forward.json").read_text())
    folds = summary["folds"]
    assert [f["fold"] for f in folds] == [0, 1]
    assert folds[0]["period"][1] < folds[1]["period"][0]  # test ranges march forward
    assert set(folds[0]["metrics"]) == {"agent", "buy_and_hold", "flat", "ma_crossover"}
    for k in (0, 1):
        fold = out / f"fold_{k}"
        assert (fold / "checkpoints" / "last.ckpt").exists()
        assert (fold / "eval" / "report.md").exists()
        fold_summary = json.loads((fold / "summary.json").read_text())
        assert set(fold_summary["val"]) == {"agent", "buy_and_hold"}
    sharpes = [f["metrics"]["agent"]["sharpe"] for f in folds]
    mean = summary["over_folds"]["agent"]["sharpe"]["mean"]
    assert np.isclose(mean, np.mean(sharpes))
    assert "Over folds" in (out / "walk_forward.md").read_text()
