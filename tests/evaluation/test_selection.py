"""Selection statistics against the papers' worked examples, a reference implementation's
published figures and a brute-force CSCV written out plainly.

Reference figures:

- Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", section "A numerical example":
  N = 100 trials, annualised V[SR] = 1/2, best annualised SR = 2.5, T = 1250 daily bars
  (250 a year), skewness -3, kurtosis 10 -> SR0 ≈ 0.1132 per day, DSR ≈ 0.9004.
- pypbo (github.com/esvhd/pypbo, ``pypbo/tests/pbo_tests.py``), which reproduces that example
  to full precision (DSR 0.90039683444939034), the PSR example of Bailey & López de Prado
  (2012), "The Sharpe Ratio Efficient Frontier" (annualised SR 1.585 on 24 monthly bars,
  skewness -2.448, kurtosis 10.164 -> PSR(0) 0.91323430688486018), and E[max] of 100
  standard-normal Sharpes, 2.5306028932016846. Only the numbers are compared; no code is shared.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from scipy import stats

from adan.evaluation.selection import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    feasible_n_splits,
    per_bar_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)

# ---------------------------------------------------------------------------------------------
# PSR, E[max SR], DSR


def test_expected_max_of_100_standard_normal_sharpes_matches_pypbo():
    assert expected_max_sharpe(100, 1.0) == pytest.approx(2.5306028932016846, rel=1e-12)
    # scales with the standard deviation of the trials' Sharpes
    assert expected_max_sharpe(100, 4.0) == pytest.approx(2 * 2.5306028932016846, rel=1e-12)
    assert expected_max_sharpe(10, 1.0) < expected_max_sharpe(100, 1.0)


def test_psr_reproduces_the_sharpe_ratio_efficient_frontier_example():
    sr = 1.585 / math.sqrt(12)  # annualised 1.585 on monthly bars
    psr = probabilistic_sharpe_ratio(sr, 0.0, 24, skew=-2.448, kurtosis=10.164)
    assert psr == pytest.approx(0.91323430688486018, rel=1e-12)
    # normal returns make it the plain z-test of the Sharpe ratio
    z = sr * math.sqrt(23) / math.sqrt(1 + sr**2 / 2)
    assert probabilistic_sharpe_ratio(sr, 0.0, 24) == pytest.approx(stats.norm.cdf(z))


def test_dsr_reproduces_the_deflated_sharpe_ratio_numerical_example():
    sr = 2.5 / math.sqrt(250)  # per day
    var = 0.5 / 250
    sr0 = expected_max_sharpe(100, var)
    dsr = probabilistic_sharpe_ratio(sr, sr0, 1250, skew=-3.0, kurtosis=10.0)
    assert round(sr0, 4) == 0.1132  # the paper's printed figures
    assert round(dsr, 4) == 0.9004
    assert dsr == pytest.approx(0.90039683444939034, rel=1e-12)  # pypbo's full precision


def test_deflated_sharpe_ratio_from_returns_matches_the_formula_with_hand_moments():
    rng = np.random.default_rng(3)
    best = 0.01 * rng.standard_t(5, size=900) + 0.002
    sharpes = np.array([0.01, -0.02, 0.05, 0.03, 0.066])
    d = deflated_sharpe_ratio(best, sharpes)
    c = best - best.mean()
    m2, m3, m4 = (c**2).mean(), (c**3).mean(), (c**4).mean()
    sr = best.mean() / best.std(ddof=1)
    v = sharpes.var(ddof=1)
    z_max = (1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / 5) + np.euler_gamma * stats.norm.ppf(
        1 - 1 / (5 * math.e)
    )
    sr0 = math.sqrt(v) * z_max
    g3, g4 = m3 / m2**1.5, m4 / m2**2  # Pearson kurtosis
    z = (sr - sr0) * math.sqrt(899) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert (d.n_trials, d.n_obs) == (5, 900)
    assert d.sr == pytest.approx(sr, rel=1e-12)
    assert d.sharpe_variance == pytest.approx(v, rel=1e-12)
    assert d.skew == pytest.approx(g3, rel=1e-10)
    assert d.kurtosis == pytest.approx(g4, rel=1e-10)
    assert d.sr0 == pytest.approx(sr0, rel=1e-12)
    assert d.dsr == pytest.approx(stats.norm.cdf(z), rel=1e-10)
    # N and V may be given: the paper's search of 100 trials with annualised V[SR] = 1/2
    paper = deflated_sharpe_ratio(best, sharpes, n_trials=100, sharpe_variance=0.5 / 250)
    assert paper.sr0 == pytest.approx(expected_max_sharpe(100, 0.5 / 250), rel=1e-12)
    assert paper.dsr < d.dsr  # more trials, a higher bar


def test_a_two_point_series_near_the_papers_moments_gives_the_papers_dsr():
    """Skewness -3 with kurtosis 10 = 1 + skew² is a two-point distribution (rare large loss);
    105 losses in 1250 days is the nearest a finite sample gets, with daily SR 2.5 / sqrt(250)."""
    x = np.r_[np.full(105, -1.0), np.full(1145, 0.0)]
    x = (x - x.mean()) / x.std(ddof=1)
    returns = x + 2.5 / math.sqrt(250)  # per-bar Sharpe exactly 2.5 / sqrt(250)
    d = deflated_sharpe_ratio(returns, [0.0, 0.1], n_trials=100, sharpe_variance=0.5 / 250)
    assert d.sr == pytest.approx(2.5 / math.sqrt(250), rel=1e-12)
    assert d.skew == pytest.approx(-3.0, abs=0.02)
    assert d.kurtosis == pytest.approx(10.0, abs=0.15)
    assert d.dsr == pytest.approx(0.9004, abs=0.002)


def test_per_bar_sharpe_of_a_book_that_never_moves():
    r = np.zeros((50, 3))
    r[:, 1] = 0.001  # constant gain: no dispersion, infinitely good
    r[:, 2] = np.linspace(-0.01, 0.01, 50)
    s = per_bar_sharpe(r)
    assert s[0] == 0.0 and s[1] == np.inf and s[2] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"trial_sharpes": [0.1]}, "at least 2 trials"),
        ({"returns_of_best": np.ones(3)}, "3 bars: the DSR needs at least 4"),
        ({"returns_of_best": np.r_[np.ones(9), np.nan]}, "1 non-finite"),
        ({"returns_of_best": np.full(20, 0.01)}, "zero variance"),
        ({"returns_of_best": np.ones((10, 2))}, r"one series \[T\]"),
        ({"trial_sharpes": [0.1, np.inf]}, "trial_sharpes must be finite"),
        ({"n_trials": 1}, "n_trials=1 is fewer than the 2 trial Sharpes"),
    ],
)
def test_deflated_sharpe_ratio_errors_name_what_is_wrong(kwargs, match):
    args = {
        "returns_of_best": np.random.default_rng(0).standard_normal(30),
        "trial_sharpes": [0.1, 0.2],
    }
    args.update(kwargs)
    returns, sharpes = args.pop("returns_of_best"), args.pop("trial_sharpes")
    with pytest.raises(ValueError, match=match):
        deflated_sharpe_ratio(returns, sharpes, **args)


def test_psr_and_expected_max_errors():
    with pytest.raises(ValueError, match="Pearson kurtosis"):
        probabilistic_sharpe_ratio(3.0, 0.0, 100, skew=0.0, kurtosis=0.0)  # excess given
    with pytest.raises(ValueError, match="n_obs >= 2"):
        probabilistic_sharpe_ratio(0.1, 0.0, 1)
    with pytest.raises(ValueError, match="finite inputs"):
        probabilistic_sharpe_ratio(math.nan, 0.0, 10)
    with pytest.raises(ValueError, match="n_trials >= 2"):
        expected_max_sharpe(1, 1.0)
    with pytest.raises(ValueError, match="sharpe_variance >= 0"):
        expected_max_sharpe(10, -1.0)


# ---------------------------------------------------------------------------------------------
# PBO


def _brute_force_pbo(m: np.ndarray, s: int, metric=None):
    """CSCV as the paper states it, one combination at a time."""

    def sharpe(x):  # a trial that never moves has Sharpe 0
        mean, std = x.mean(axis=0), x.std(axis=0, ddof=1)
        return np.divide(mean, std, out=np.zeros_like(mean), where=std > 0)

    metric = metric or sharpe
    m = m[len(m) % s :]
    blocks = np.split(m, s)
    n = m.shape[1]
    logits, is_best, oos_best = [], [], []
    for combo in itertools.combinations(range(s), s // 2):
        train = np.concatenate([blocks[i] for i in combo])
        test = np.concatenate([blocks[i] for i in range(s) if i not in combo])
        r_is, r_oos = metric(train), metric(test)
        star = int(np.argmax(r_is))
        w = stats.rankdata(r_oos)[star] / (n + 1)
        logits.append(math.log(w / (1 - w)))
        is_best.append(r_is[star])
        oos_best.append(r_oos[star])
    logits = np.array(logits)
    return logits, float(np.mean(logits <= 0)), np.array(is_best), np.array(oos_best)


@pytest.mark.parametrize(("t", "n", "s"), [(203, 9, 8), (160, 5, 10), (57, 12, 4)])
def test_pbo_matches_a_brute_force_cscv(t, n, s):
    rng = np.random.default_rng(t)
    m = 0.01 * rng.standard_normal((t, n)) + 0.002 * rng.standard_normal(n)
    res = probability_of_backtest_overfitting(m, n_splits=s)
    logits, pbo, is_best, oos_best = _brute_force_pbo(m, s)
    assert res.n_combinations == math.comb(s, s // 2)
    assert (res.n_bars, res.n_dropped) == (t - t % s, t % s)
    np.testing.assert_allclose(res.logits, logits, rtol=0, atol=1e-12)
    assert res.pbo == pbo
    np.testing.assert_allclose(res.is_best, is_best, rtol=1e-9)
    np.testing.assert_allclose(res.oos_of_best, oos_best, rtol=1e-9)
    assert res.prob_oos_loss == np.mean(oos_best < 0)
    fit = stats.linregress(is_best, oos_best)
    assert res.degradation_slope == pytest.approx(fit.slope, rel=1e-9)
    assert res.degradation_intercept == pytest.approx(fit.intercept, rel=1e-9, abs=1e-15)


def test_pbo_with_another_metric_matches_the_brute_force():
    rng = np.random.default_rng(7)
    m = 0.01 * rng.standard_normal((120, 6))

    def mean_return(x):
        return x.mean(axis=0)

    res = probability_of_backtest_overfitting(m, n_splits=6, metric=mean_return)
    logits, pbo, _, _ = _brute_force_pbo(m, 6, metric=mean_return)
    np.testing.assert_allclose(res.logits, logits, atol=1e-12)
    assert res.pbo == pbo


def test_pbo_ties_identical_trials_share_their_rank():
    rng = np.random.default_rng(11)
    m = 0.01 * rng.standard_normal((96, 5))
    m[:, 3] = m[:, 1]  # a trial run twice (same params, same seed)
    m[:, 4] = 0.0  # a trial that never trades
    res = probability_of_backtest_overfitting(m, n_splits=8)
    logits, pbo, _, _ = _brute_force_pbo(m, 8)  # rankdata averages ties, argmax takes the first
    np.testing.assert_allclose(res.logits, logits, atol=1e-12)
    assert res.pbo == pbo


def test_pbo_of_trials_without_edge_is_near_one_half():
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).standard_normal((480, 10)), n_splits=16
        ).pbo
        for seed in range(20)
    ]
    assert abs(np.mean(pbos) - 0.5) < 0.15  # sd of one PBO ~0.2, of the mean of 20 ~0.05


def test_pbo_of_a_trial_with_a_genuine_edge_is_zero():
    rng = np.random.default_rng(5)
    m = rng.standard_normal((800, 20))
    m[:, 7] += 0.4  # per-bar Sharpe 0.4 over the whole sample
    res = probability_of_backtest_overfitting(m, n_splits=16)
    assert res.pbo == 0.0
    assert res.prob_oos_loss == 0.0
    assert (res.logits == math.log(20 / 21 / (1 - 20 / 21))).all()  # always ranked N of N


def test_pbo_when_in_sample_winners_are_out_of_sample_losers_is_one():
    """Trial j earns in block j and gives it back over the others (mean-reverting luck): the
    trial best in-sample is always one whose good block is in-sample, and out-of-sample it
    loses while the trials whose good block is out-of-sample gain."""
    s = n = 8
    b = 40
    rng = np.random.default_rng(9)
    m = 0.001 * rng.standard_normal((s * b, n))
    for j in range(n):
        m[:, j] -= 0.01 / (s - 1)
        m[j * b : (j + 1) * b, j] += 0.01 + 0.01 / (s - 1)
    res = probability_of_backtest_overfitting(m, n_splits=s)
    assert res.pbo == 1.0
    assert res.prob_oos_loss == 1.0
    assert (res.logits < 0).all()


def test_pbo_is_fast_enough_for_a_sweep():
    m = np.random.default_rng(0).standard_normal((2000, 100))
    start = time.perf_counter()
    res = probability_of_backtest_overfitting(m, n_splits=16)
    elapsed = time.perf_counter() - start
    assert res.n_combinations == 12870
    assert elapsed < 2.0  # ~0.1 s on one core; the bound leaves room for a loaded machine


@pytest.mark.parametrize(
    ("returns", "kwargs", "match"),
    [
        (np.ones(40), {}, r"matrix \[T bars, N trials\]"),
        (np.ones((40, 1)), {}, "at least 2 trials"),
        (np.r_[np.ones((39, 3)), [[0, np.nan, np.inf]]], {}, r"trial columns \[1, 2\]"),
        (np.ones((40, 3)), {"n_splits": 5}, "even integer >= 2, got 5"),
        (np.ones((40, 3)), {"n_splits": 0}, "even integer >= 2, got 0"),
        (np.ones((20, 3)), {"n_splits": 16}, r"1 bars per block.*use n_splits=10 or fewer"),
        (np.ones((3, 3)), {"n_splits": 2}, "more bars are needed"),
        (np.ones((40, 3)), {"metric": lambda x: x.mean(axis=0)[:2]}, "one value per trial"),
        (np.ones((40, 3)), {"metric": lambda x: x.mean(axis=0) * np.nan}, "returned nan"),
    ],
)
def test_pbo_errors_name_what_is_wrong(returns, kwargs, match):
    with pytest.raises(ValueError, match=match):
        probability_of_backtest_overfitting(returns, **kwargs)


@pytest.mark.parametrize(
    ("bars", "wanted", "expected"),
    [(100, 16, 16), (20, 16, 10), (31, 16, 14), (7, 16, 2), (3, 16, 0)],
)
def test_feasible_n_splits_keeps_two_bars_per_block(bars, wanted, expected):
    assert feasible_n_splits(bars, wanted) == expected
