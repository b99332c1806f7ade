"""The bootstrap's block length: Politis-White cross-checked against arch, holding periods."""

import numpy as np
import pytest
from arch.bootstrap import optimal_block_length

from adan.evaluation.block_length import bootstrap_block, mean_holding_period, politis_white


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal(n)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


@pytest.mark.parametrize(
    ("n", "phi"), [(300, 0.0), (2000, 0.5), (3000, 0.9), (1000, -0.3), (5000, 0.2), (800, 0.97)]
)
def test_politis_white_agrees_with_arch(n, phi):
    x = _ar1(n, phi, seed=n)
    expected = float(optimal_block_length(x)["stationary"].iloc[0])
    assert politis_white(x) == pytest.approx(max(1.0, expected), rel=1e-9)


def test_stronger_dependence_asks_for_longer_blocks():
    lengths = [politis_white(_ar1(3000, phi, 1)) for phi in (0.0, 0.5, 0.9)]
    assert lengths[0] < lengths[1] < lengths[2]
    assert politis_white(np.ones(100)) == 1.0  # no dispersion: no dependence to keep


def test_mean_holding_period_counts_runs_of_one_sign():
    w = np.array([0, 0.5, 0.4, 0.6, 0, -0.2, -0.3, 0.1])
    # runs held: +,+,+ (3), -,- (2), + (1)
    assert mean_holding_period(w) == pytest.approx(2.0)
    assert mean_holding_period(np.zeros((5, 2))) == 1.0
    two = np.stack([w, np.ones(8)], axis=1)  # the second asset held all along: one run of 8
    assert mean_holding_period(two) == pytest.approx((3 + 2 + 1 + 8) / 4)


def test_the_longer_of_the_two_is_used_and_named():
    rng = np.random.default_rng(0)
    returns = rng.standard_normal(2000) * 0.01  # iid: Politis-White ~ 1
    weights = np.repeat([1.0, -1.0] * 10, 100)  # held 100 bars at a time
    block, how = bootstrap_block(returns, weights)
    assert (block, how) == (100.0, "mean holding period")
    block, how = bootstrap_block(_ar1(2000, 0.9, 2), np.ones(2000) * (np.arange(2000) % 2))
    assert how == "Politis-White" and block > 10
