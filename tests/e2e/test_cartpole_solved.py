"""experiment=cartpole solves CartPole-v1 within 100k steps for 3 of 3 seeds (slow: ~1-2 min)."""

import json

import pytest

from tests.e2e.conftest import run_train


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cartpole_is_solved(tmp_path, seed):
    out = tmp_path / f"seed{seed}"
    run_train(out, "experiment=cartpole", f"seed={seed}", "~callbacks.progress_bar", timeout=600)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] <= 100_000
    assert summary["test"]["agent"]["mean_return"] >= 475  # 10 deterministic episodes, fresh seeds
