"""Position sizing: fixed fraction, volatility targeting, risk per trade, capped Kelly."""

import math

import numpy as np
import pytest

from adan.errors import ConfigError
from adan.market import PositionSizer, SizingConfig, TradingConfig, target_weights
from adan.market.execution import bar_volatility
from tests.market.markets import random_walk

BARS_PER_YEAR = 8760


def sizer(*configs, profile=None, leverage=1.0, close=None):
    close = random_walk(num_bars=500, num_assets=2).close if close is None else close
    profile = np.zeros(4, dtype=int) if profile is None else np.asarray(profile)
    return PositionSizer(list(configs), profile, "continuous", True, leverage, close, BARS_PER_YEAR)


def test_fixed_fraction_is_the_foundation_sizing():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.5, 1.5, (4, 2))
    t = np.full(4, 100)
    for lev in (1.0, 2.0):
        got = sizer(SizingConfig(), leverage=lev).weights(actions, t)
        np.testing.assert_array_equal(got, target_weights(actions, TradingConfig(max_leverage=lev)))
    half = sizer(SizingConfig(fraction=0.25)).weights(np.full((4, 2), 0.4), t)
    np.testing.assert_allclose(half, 0.1)


def test_vol_target_gives_each_full_position_the_target_volatility():
    close = random_walk(num_bars=500, num_assets=2).close
    close[:, 1] = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.002, 500)))
    s = sizer(SizingConfig(mode="vol_target", target_vol=0.05, vol_window=48), close=close)
    t = np.array([100, 200, 300, 400])
    w = s.weights(np.full((4, 2), 0.5), t)
    vol = bar_volatility(close, 48)[t] * math.sqrt(BARS_PER_YEAR)
    np.testing.assert_allclose(w * vol, 0.5 * 0.05, rtol=1e-12)  # half action: half the target
    assert (w[:, 1] > w[:, 0]).all()  # the calmer asset gets the larger weight


def test_risk_per_trade_loses_the_set_fraction_at_the_stop():
    s = sizer(SizingConfig(mode="risk_per_trade", risk_per_trade=0.01))
    distance = np.array([[0.02, 0.05]] * 4)
    w = s.weights(np.full((4, 2), -1.0), np.full(4, 50), stop_distance=distance)
    np.testing.assert_allclose(np.abs(w) * distance, 0.01)
    tier = np.array([0.005, 0.005, np.nan, np.nan])  # a capital tier's value where it has one
    w = s.weights(np.full((4, 2), 1.0), np.full(4, 50), distance, risk_per_trade=tier)
    np.testing.assert_allclose(w[:, 0] * 0.02, [0.005, 0.005, 0.01, 0.01])


def test_capped_kelly_learns_the_edge_of_the_signal():
    cfg = SizingConfig(mode="kelly", kelly_scale=0.5, kelly_cap=0.3, kelly_rate=0.002,
                       kelly_min_bars=20, fraction=0.05)  # fmt: skip
    s = sizer(cfg)
    t = np.full(4, 50)
    assert s.kelly_fraction() == pytest.approx([0.05] * 4)  # before warm-up: the fraction
    rng = np.random.default_rng(0)
    for _ in range(8000):  # long asset 0 only; it returns 2% a bar with a 20% sd (an edge
        s.weights(np.array([[1.0, 0.0]] * 4), t)  # an EMA can measure; see docs/trading.md)
        s.update(np.c_[rng.normal(0.02, 0.2, 4), rng.normal(0, 0.2, 4)])
    # Kelly mu / sigma^2 = 0.02 / 0.04 = 0.5, half Kelly 0.25 (under the 0.3 cap)
    np.testing.assert_allclose(s.kelly_fraction(), 0.25, atol=0.1)
    w = s.weights(np.full((4, 2), 1.0), t)
    np.testing.assert_allclose(w, np.repeat(s.kelly_fraction()[:, None], 2, axis=1))
    lucky, losing = sizer(cfg), sizer(cfg)
    for _ in range(3000):
        for sz, mu in ((lucky, 0.01), (losing, -0.01)):
            sz.weights(np.array([[1.0, -1.0]] * 4), t)  # long 0, short 1: half each
            sz.update(np.c_[np.full(4, mu) + rng.normal(0, 0.01, 4), np.zeros(4)])
    assert lucky.kelly_fraction() == pytest.approx([0.3] * 4)  # capped
    assert losing.kelly_fraction() == pytest.approx([0.0] * 4)  # no edge: no position
    s.reset_envs(np.array([True, False, False, False]))
    assert s.kelly_fraction()[0] == 0.05


def test_profiles_size_their_own_envs():
    s = sizer(SizingConfig(fraction=0.25), SizingConfig(mode="risk_per_trade", risk_per_trade=0.02),
              profile=[0, 0, 1, 1])  # fmt: skip
    w = s.weights(np.ones((4, 2)) * 0.8, np.full(4, 60), stop_distance=np.full((4, 2), 0.04))
    np.testing.assert_allclose(w[:2], 0.2)  # 0.8 x 0.25
    np.testing.assert_allclose(w[2:], 0.4)  # 0.8 x 0.02 / 0.04


def test_gross_exposure_never_exceeds_max_leverage():
    s = sizer(SizingConfig(mode="vol_target", target_vol=5.0), leverage=1.5)
    w = s.weights(np.ones((4, 2)), np.full(4, 300))
    np.testing.assert_allclose(np.abs(w).sum(axis=1), 1.5)


def test_bad_sizing_settings_name_the_key():
    with pytest.raises(ConfigError, match="trading.sizing.mode must be one of"):
        SizingConfig(mode="martingale")
    with pytest.raises(ConfigError, match="trading.sizing.kelly_cap must be > 0"):
        SizingConfig(kelly_cap=0)
    with pytest.raises(ConfigError, match="sizing.mode=risk_per_trade sizes from the stop"):
        TradingConfig(sizing=SizingConfig(mode="risk_per_trade"))
