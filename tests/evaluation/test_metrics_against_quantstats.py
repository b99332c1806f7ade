"""Our metrics against quantstats (a second reference beside empyrical), on the same returns.

Its conventions are ours (risk-free 0, ddof 1, the Sortino downside over all bars, CAGR
annualised by bar count), except the sign of the drawdown. quantstats imports yfinance, a
test-only dependency that is never used here (no network)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adan.evaluation.metrics import performance

qs = pytest.importorskip("quantstats")

BTC_CSV = Path(__file__).resolve().parents[2] / "data/binance_sample/BTCUSDT_1h_2022-2024.csv"


def _series(returns: np.ndarray, freq: str) -> pd.Series:
    index = pd.date_range("2022-01-01", periods=len(returns), freq=freq)
    return pd.Series(returns, index=index)


def _check(returns: np.ndarray, bars_per_year: int, freq: str) -> dict:
    equity = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    m = performance(equity, bars_per_year)
    r = _series(returns, freq)
    rel = 1e-9
    assert m["total_return"] == pytest.approx(qs.stats.comp(r), rel=rel)
    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(r, periods=bars_per_year), rel=rel)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(r, periods=bars_per_year), rel=rel)
    assert m["volatility"] == pytest.approx(qs.stats.volatility(r, periods=bars_per_year), rel=rel)
    # quantstats' drawdown is negative and measured from the first return's level, ours from
    # the starting equity; equal when the first bar does not start the worst drawdown
    assert m["max_drawdown"] == pytest.approx(-qs.stats.max_drawdown(r), rel=1e-6)
    # CAGR: quantstats annualises by bar count and ``periods``, as we do
    assert m["cagr"] == pytest.approx(qs.stats.cagr(r, periods=bars_per_year), rel=1e-9)
    assert m["calmar"] == pytest.approx(
        qs.stats.cagr(r, periods=bars_per_year) / -qs.stats.max_drawdown(r), rel=1e-6
    )
    assert m["win_rate"] == pytest.approx(qs.stats.win_rate(r), rel=rel)
    assert m["profit_factor"] == pytest.approx(qs.stats.profit_factor(r), rel=rel)
    return m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_quantstats_on_random_daily_returns(seed):
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0005, 0.01, size=1000) + rng.standard_t(3, size=1000) * 0.002
    _check(returns, 252, "B")


def test_matches_quantstats_on_btc_hourly():
    close = pd.read_csv(BTC_CSV, usecols=["close"])["close"].to_numpy(dtype=np.float64)
    returns = close[1:] / close[:-1] - 1
    m = _check(returns, 8760, "h")
    assert m["total_return"] == pytest.approx(close[-1] / close[0] - 1, rel=1e-9)
