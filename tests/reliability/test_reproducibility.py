"""Same seed, same result: every number ``train.py`` prints comes back from its seed and
config. Three debug runs (about a minute on 2 cores): the slow stage of ``.ci/run``."""

import json

import pytest

from tests.e2e.conftest import run_train

pytestmark = pytest.mark.slow


def test_same_seed_and_config_reproduce_the_printed_results(tmp_path):
    """Every number in summary.json comes back bit-identical from the same seed and config."""
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        run_train(out, "debug=fast", "seed=7", "~callbacks.progress_bar")
    a, b = (json.loads((out / "summary.json").read_text()) for out in runs)
    for key in ("train_seconds", "iteration_seconds", "validation_seconds"):  # wall-clock
        a.pop(key), b.pop(key)
    assert a == b
    other = tmp_path / "c"
    run_train(other, "debug=fast", "seed=8", "~callbacks.progress_bar")
    c = json.loads((other / "summary.json").read_text())
    assert c["val"]["agent"] != a["val"]["agent"]  # and the seed matters
