"""`python train.py trading=<profile>` end to end: each profile trains (slow; the multi-profile
run, reported per profile and evaluated on one profile: tests/reliability/test_long_runs.py)."""

import json

import pytest

from tests.e2e.conftest import run_train

PROFILES = ("conservative", "moderate", "aggressive")


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_trains(tmp_path, profile):
    out = tmp_path / "run"
    run_train(out, "debug=fast", f"trading={profile}")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val"]["agent"]["bars"] > 0
