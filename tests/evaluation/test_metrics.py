import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adan.evaluation.bootstrap import sharpe_confidence_interval, stationary_bootstrap_indices
from adan.evaluation.metrics import METRICS, performance

BTC_CSV = Path(__file__).resolve().parents[2] / "data/binance_sample/BTCUSDT_1h_2022-2024.csv"


def no_warnings(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return performance(*args, **kwargs)


# --------------------------------------------------------------------------- by hand


def test_by_hand():
    equity = np.array([100.0, 110.0, 99.0, 108.9, 120.0])
    m = no_warnings(equity, bars_per_year=4)
    assert tuple(m) == METRICS  # the val/... names a run may optimise, in order
    r = equity[1:] / equity[:-1] - 1
    assert m["total_return"] == pytest.approx(0.2)
    assert m["cagr"] == pytest.approx(1.2 - 1)  # 4 bars = 1 year
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * 2)
    assert m["volatility"] == pytest.approx(r.std(ddof=1) * 2)
    assert m["sortino"] == pytest.approx(r.mean() / math.sqrt(0.1**2 / 4) * 2)
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert m["calmar"] == pytest.approx(0.2 / 0.1)
    assert m["max_drawdown_duration"] == 3  # peak at bar 1, back above it at bar 4
    assert m["profit_factor"] == pytest.approx((r[r > 0].sum()) / 0.1)
    assert m["win_rate"] == pytest.approx(3 / 4)
    assert m["bars"] == 4
    for k in ("exposure", "trades", "avg_holding_bars"):
        assert math.isnan(m[k])


def test_drawdown_duration_counts_an_unrecovered_drawdown_to_the_end():
    equity = np.array([1.0, 2.0, 1.5, 2.5, 2.4, 2.3, 2.2, 2.45])
    m = no_warnings(equity, 1.0)
    assert m["max_drawdown_duration"] == 4  # peak 2.5 at index 3, still below at index 7
    assert m["max_drawdown"] == pytest.approx(0.25)
    assert no_warnings(np.array([1.0, 2.0, 3.0]), 1.0)["max_drawdown_duration"] == 0
    # equal to the peak counts as recovered
    assert no_warnings(np.array([1.0, 0.5, 1.0, 1.0, 0.9]), 1.0)["max_drawdown_duration"] == 2


def test_turnover_and_costs_as_totals_or_per_step():
    equity = np.array([200.0, 202.0, 201.0])
    m = no_warnings(equity, 1.0, 1.5, 0.01)
    assert m["turnover"] == 1.5 and m["costs"] == 0.01
    m = no_warnings(equity, 1.0, np.array([1.0, 0.5]), np.array([1.0, 1.0]))
    assert m["turnover"] == 1.5 and m["costs"] == pytest.approx(2.0 / 200.0)


def test_positions_from_weights():
    # row 0 is the start; rows 1..6 are the books held during bars 1..6
    w = np.array(
        [
            [0.0, 0.0],
            [0.5, 0.0],  # enter long on asset 0
            [0.6, -0.2],  # enter short on asset 1
            [0.0, -0.2],  # exit asset 0
            [-0.3, 0.0],  # short asset 0, exit asset 1
            [0.4, 0.0],  # flip to long on asset 0 (one change)
            [0.4, 0.0],
        ]
    )
    equity = np.linspace(100, 106, 7)
    m = no_warnings(equity, 1.0, weights=w)
    assert m["exposure"] == pytest.approx(np.abs(w[1:]).sum(axis=1).mean())
    assert m["trades"] == 4 + 2
    # runs: asset 0 -> long 2 bars, short 1, long 2; asset 1 -> short 2
    assert m["avg_holding_bars"] == pytest.approx((2 + 1 + 2 + 2) / 4)
    flat = no_warnings(equity, 1.0, weights=np.zeros((7, 2)))
    assert flat["exposure"] == 0 and flat["trades"] == 0 and math.isnan(flat["avg_holding_bars"])
    one = no_warnings(equity, 1.0, weights=np.r_[0.0, np.ones(6)])  # [n+1] for one asset
    assert one["trades"] == 1 and one["avg_holding_bars"] == 6 and one["exposure"] == 1


def test_degenerate_curves_are_finite_or_nan_without_warnings():
    flat = no_warnings(np.full(10, 5.0), 8760.0, weights=np.zeros((10, 1)))
    assert flat["total_return"] == 0 and flat["cagr"] == 0 and flat["max_drawdown"] == 0
    assert flat["volatility"] == 0 and flat["max_drawdown_duration"] == 0
    for k in ("sharpe", "sortino", "calmar", "profit_factor", "win_rate", "avg_holding_bars"):
        assert math.isnan(flat[k]), k

    one = no_warnings(np.array([100.0, 101.0]), 8760.0)
    assert one["total_return"] == pytest.approx(0.01)
    assert one["cagr"] == pytest.approx(1.01**8760 - 1, rel=1e-9)
    assert math.isnan(one["sharpe"]) and math.isnan(one["sortino"])
    assert math.isnan(one["volatility"]) and math.isnan(one["calmar"])
    assert one["profit_factor"] == math.inf  # no losing bar

    none = no_warnings(np.array([100.0]), 8760.0)
    assert none["bars"] == 0 and none["total_return"] == 0 and none["max_drawdown"] == 0
    assert math.isnan(none["cagr"]) and math.isnan(none["sharpe"])

    ruined = no_warnings(np.array([100.0, 50.0, 0.0, 0.0, 0.0]), 8760.0)
    assert ruined["total_return"] == -1 and ruined["cagr"] == -1
    assert ruined["max_drawdown"] == 1 and ruined["calmar"] == -1
    assert ruined["max_drawdown_duration"] == 4
    assert np.isfinite(ruined["sharpe"]) and np.isfinite(ruined["sortino"])
    assert ruined["profit_factor"] == 0

    # a huge extrapolation overflows to inf, still silently (no clipping)
    assert no_warnings(np.array([1.0, 2.0]), 8760.0)["cagr"] == math.inf


def test_rejects_a_non_positive_start():
    with pytest.raises(ValueError, match="starting equity"):
        performance(np.array([0.0, 1.0]), 1.0)


# --------------------------------------------------------------------------- empyrical


def _check_against_empyrical(returns: np.ndarray, bars_per_year: int) -> dict:
    ep = pytest.importorskip("empyrical")
    equity = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    m = no_warnings(equity, bars_per_year)
    kw = {"annualization": bars_per_year}
    rel = 1e-6
    assert m["total_return"] == pytest.approx(ep.cum_returns_final(returns), rel=rel)
    assert m["cagr"] == pytest.approx(ep.annual_return(returns, **kw), rel=rel)
    assert m["volatility"] == pytest.approx(ep.annual_volatility(returns, **kw), rel=rel)
    assert m["sharpe"] == pytest.approx(ep.sharpe_ratio(returns, **kw), rel=rel)
    assert m["sortino"] == pytest.approx(ep.sortino_ratio(returns, **kw), rel=rel)
    assert m["calmar"] == pytest.approx(ep.calmar_ratio(returns, **kw), rel=rel)
    # by design ours is a positive fraction, empyrical's the same number negated
    assert m["max_drawdown"] > 0
    assert m["max_drawdown"] == pytest.approx(-ep.max_drawdown(returns), rel=rel)
    return m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_empyrical_on_random_returns(seed):
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0005, 0.01, size=1000) + rng.standard_t(3, size=1000) * 0.002
    _check_against_empyrical(returns, 252)


def test_matches_empyrical_on_btc_hourly():
    close = pd.read_csv(BTC_CSV, usecols=["close"])["close"].to_numpy(dtype=np.float64)
    returns = close[1:] / close[:-1] - 1
    m = _check_against_empyrical(returns, 8760)
    assert m["total_return"] == pytest.approx(close[-1] / close[0] - 1, rel=1e-9)


def test_documented_differences_from_empyrical():
    ep = pytest.importorskip("empyrical")
    kw = {"annualization": 252}
    const = np.full(50, 0.001)  # constant returns: zero dispersion
    equity = np.concatenate([[1.0], np.cumprod(1 + const)])
    m = no_warnings(equity, 252)
    with np.errstate(all="ignore"):
        assert ep.sharpe_ratio(const, **kw) == math.inf
    assert math.isnan(m["sharpe"])  # ours: undefined, not infinite
    assert m["sortino"] == math.inf == ep.sortino_ratio(const, **kw)
    assert math.isnan(m["calmar"]) and math.isnan(ep.calmar_ratio(const, **kw))
    flat = np.zeros(50)
    m = no_warnings(np.ones(51), 252)
    with np.errstate(all="ignore"):
        assert math.isnan(ep.sharpe_ratio(flat, **kw)) and math.isnan(m["sharpe"])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_indices_are_blocks_of_consecutive_indices():
    n, mean_block = 200, 10
    idx = stationary_bootstrap_indices(n, 500, mean_block, np.random.default_rng(0))
    assert idx.shape == (500, n) and idx.min() >= 0 and idx.max() < n
    step = (idx[:, 1:] - idx[:, :-1]) % n
    # within a block the next index is the following one (wrapping n-1 -> 0); a jump ends it
    breaks = step != 1
    # geometric block lengths: a new block after each element with probability 1 / mean_block
    # (a fresh start can land on the following index by chance, 1/n of the time)
    p_break = breaks.mean()
    expected = (1 / mean_block) * (1 - 1 / n)
    assert p_break == pytest.approx(expected, rel=0.05)
    lengths = np.diff(np.flatnonzero(np.concatenate([[True], breaks[0], [True]])))
    assert lengths.sum() == n
    assert (idx == n - 1).any() and ((idx[:, :-1] == n - 1) & (idx[:, 1:] == 0)).any()  # wraps
    iid = stationary_bootstrap_indices(n, 50, 1, np.random.default_rng(0))
    assert ((iid[:, 1:] - iid[:, :-1]) % n != 1).mean() == pytest.approx(1 - 1 / n, abs=0.01)


def test_sharpe_interval_is_reproducible_and_shrinks_with_more_data():
    rng = np.random.default_rng(3)
    r = rng.normal(0.0005, 0.01, size=4000)
    a = sharpe_confidence_interval(r, 252, n_boot=400, seed=7)
    assert a == sharpe_confidence_interval(r, 252, n_boot=400, seed=7)
    assert a != sharpe_confidence_interval(r, 252, n_boot=400, seed=8)
    small = sharpe_confidence_interval(r[:500], 252, n_boot=400, seed=7)
    assert a[0] < a[1] and small[0] < small[1]
    assert a[1] - a[0] < 0.5 * (small[1] - small[0])  # width ~ 1 / sqrt(n)
    point = r.mean() / r.std(ddof=1) * np.sqrt(252)
    assert a[0] < point < a[1]


def test_sharpe_interval_degenerate_inputs():
    assert all(math.isnan(x) for x in sharpe_confidence_interval(np.array([0.01]), 252))
    assert all(math.isnan(x) for x in sharpe_confidence_interval(np.zeros(100), 252))


def test_sharpe_interval_covers_the_true_sharpe():
    mu, sigma, bpy, n = 0.001, 0.01, 252, 500
    true_sharpe = mu / sigma * np.sqrt(bpy)
    rng = np.random.default_rng(11)
    t0 = time.perf_counter()
    hits = 0
    reps = 100
    for rep in range(reps):
        r = rng.normal(mu, sigma, size=n)
        low, high = sharpe_confidence_interval(r, bpy, n_boot=400, seed=rep)
        hits += low <= true_sharpe <= high
    assert 88 <= hits <= 99
    assert time.perf_counter() - t0 < 10


def test_sharpe_at_twice_the_costs_pays_each_bars_costs_again():
    rng = np.random.default_rng(4)
    equity = 1000 * np.cumprod(np.r_[1.0, 1 + rng.normal(5e-4, 0.01, 300)])
    r = equity[1:] / equity[:-1] - 1
    paid = np.abs(rng.normal(0, 1.0, 300))  # cash paid in costs each bar
    m = no_warnings(equity, 8760, costs=paid)
    stressed = r - paid / equity[:-1]
    assert m["sharpe_2x_costs"] == pytest.approx(
        stressed.mean() / stressed.std(ddof=1) * np.sqrt(8760), rel=1e-12
    )
    assert m["sharpe_2x_costs"] < m["sharpe"]  # the more it trades, the more it loses
    assert no_warnings(equity, 8760, costs=np.zeros(300))["sharpe_2x_costs"] == pytest.approx(
        m["sharpe"], rel=1e-12
    )
    assert math.isnan(no_warnings(equity, 8760, costs=0.01)["sharpe_2x_costs"])  # a total only
