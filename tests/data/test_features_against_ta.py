"""Our hand-written indicators against the `ta` library's on the same bars.

They are kept hand-written (vectorised over assets, causal by construction); this checks their
maths. Recursive indicators are seeded differently (ours from the first value, `ta` from a
first-window mean or with min_periods), so they are compared once that start has decayed:
after ``BURN`` bars the seed's weight is (1 - 1/14) ** 500, about 1e-16.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ta

from adan.data import features as F
from adan.data.synthetic import SyntheticMarket

BURN = 500


@pytest.fixture(scope="module")
def bars():
    return SyntheticMarket(n_assets=2, n_bars=3000, seed=1).generate()


def columns(bars, asset):
    return tuple(pd.Series(getattr(bars, k)[:, asset]) for k in ("high", "low", "close", "volume"))


CASES = {
    "rsi_14": (
        lambda b: F.rsi(b, 14),
        lambda high, low, c, v: ta.momentum.RSIIndicator(c, 14).rsi() / 50 - 1,
    ),
    "atr_14": (
        lambda b: F.atr(b, 14),
        lambda high, low, c, v: (
            ta.volatility.AverageTrueRange(high, low, c, 14).average_true_range() / c
        ),
    ),
    "macd_hist": (F.macd_hist, lambda high, low, c, v: ta.trend.MACD(c, 26, 12, 9).macd_diff() / c),
    "ema_ratio_20": (
        lambda b: F.ema_ratio(b, 20),
        lambda high, low, c, v: c / ta.trend.EMAIndicator(c, 20).ema_indicator() - 1,
    ),
    "adx_14": (
        lambda b: F.adx(b, 14),
        lambda high, low, c, v: ta.trend.ADXIndicator(high, low, c, 14).adx() / 100,
    ),
    "obv_ratio_24": (
        lambda b: F.obv_ratio(b, 24),
        lambda high, low, c, v: _obv_change(c, v, 24) / v.rolling(24).sum(),
    ),
}


def _obv_change(close, volume, n):
    obv = ta.volume.OnBalanceVolumeIndicator(close, volume).on_balance_volume()
    return obv - obv.shift(n)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("asset", [0, 1])
def test_indicator_matches_ta(bars, name, asset):
    ours, theirs = CASES[name]
    expected = np.asarray(theirs(*columns(bars, asset)))[BURN:]
    np.testing.assert_allclose(ours(bars)[BURN:, asset], expected, rtol=1e-9, atol=1e-12)


def test_bollinger_uses_the_sample_std_where_ta_uses_the_population_std(bars):
    """A known difference of definition, kept (changing it would change every feature cache
    and trained model): our band position is (close - SMA) / (2 * std with ddof=1); `ta`'s
    %b, like Bollinger's own definition, uses ddof=0. The two differ by sqrt(n / (n - 1))."""
    close = columns(bars, 0)[2]
    pband = ta.volatility.BollingerBands(close, 20, 2).bollinger_pband()
    ours = F.bollinger_band(bars, 20)[BURN:, 0]
    population = (np.asarray(pband)[BURN:] - 0.5) * 2  # (close - SMA) / (2 * std, ddof=0)
    np.testing.assert_allclose(ours * np.sqrt(20 / 19), population, rtol=1e-9, atol=1e-12)
