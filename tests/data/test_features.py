from dataclasses import replace

import numpy as np
import pytest

from adan.data import FEATURES, Bars, SyntheticMarket, compute_features
from adan.data.features import DEFAULT_FEATURES


@pytest.fixture(scope="module")
def bars() -> Bars:
    return SyntheticMarket(n_bars=600, seed=3).generate()


def test_shape_dtype_warmup(bars):
    x, warmup = compute_features(bars, DEFAULT_FEATURES)
    assert x.shape == (600, 2, len(DEFAULT_FEATURES)) and x.dtype == np.float64
    assert warmup == max(FEATURES[n].warmup for n in DEFAULT_FEATURES)
    assert np.isfinite(x[warmup:]).all()
    assert np.isnan(x[warmup - 1]).any()  # warm-up rows are NaN, never zero-filled
    for i, name in enumerate(DEFAULT_FEATURES):
        w = FEATURES[name].warmup
        assert np.isnan(x[:w, :, i]).all() and np.isfinite(x[w:, :, i]).all(), name


def test_known_values(bars):
    x, _ = compute_features(bars, ["log_return", "momentum_24", "rsi_14", "bollinger"])
    c = bars.close
    np.testing.assert_allclose(x[100, :, 0], np.log(c[100] / c[99]))
    np.testing.assert_allclose(x[100, :, 1], np.log(c[100] / c[76]))
    assert (np.abs(x[14:, :, 2]) <= 1).all()
    window = c[81:101]
    expected = (c[100] - window.mean(0)) / (2 * window.std(0, ddof=1))
    np.testing.assert_allclose(x[100, :, 3], expected, rtol=1e-9)


# Causality of every feature, defaults included: test_features_indicators.py


def test_vectorised_over_assets_matches_single_asset(bars):
    x, _ = compute_features(bars, DEFAULT_FEATURES)
    one = Bars(
        timestamps=bars.timestamps,
        assets=bars.assets[1:],
        open=bars.open[:, 1:],
        high=bars.high[:, 1:],
        low=bars.low[:, 1:],
        close=bars.close[:, 1:],
        volume=bars.volume[:, 1:],
    )
    y, _ = compute_features(one, DEFAULT_FEATURES)
    np.testing.assert_allclose(x[:, 1:], y, equal_nan=True)


def test_flat_prices_give_zeros_not_nan(bars):
    flat = np.full_like(bars.close, 10.0)
    b = replace(bars, open=flat, high=flat, low=flat, close=flat, volume=np.ones_like(flat))
    x, warmup = compute_features(b, DEFAULT_FEATURES)
    assert np.isfinite(x[warmup:]).all()


def test_unknown_feature_name():
    b = SyntheticMarket(n_bars=50).generate()
    with pytest.raises(ValueError, match="'momentum_x'.*valid names.*momentum_<n>"):
        compute_features(b, ["log_return", "momentum_x"])
    with pytest.raises(ValueError, match="duplicate"):
        compute_features(b, ["log_return", "log_return"])
