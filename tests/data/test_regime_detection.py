"""MarketRegimeDetector: causal, accurate on the synthetic market, right on crafted series."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from adan.data.regime_detection import (
    MarketRegimeDetector,
    RegimeConfig,
    balanced_accuracy,
    confusion_matrix,
)
from adan.data.regimes import BEAR, BULL, SIDEWAYS, VOLATILE
from adan.data.synthetic import SyntheticMarket
from adan.errors import ConfigError

SEGMENT_DRIFT = {"bull": 0.004, "bear": -0.004}  # 0.4 sigma per bar: an obvious trend
SEGMENT_VOL = {"sideways": 0.004, "volatile": 0.03}  # vs a 0.6-2 % history


def crafted(kind: str, n_base: int = 3000, n_seg: int = 400, assets: int = 2, seed: int = 0):
    """(high, low, close): a history cycling through 1 %, 0.6 % and 2 % volatility phases
    (so the long-run level is a mix), then ``n_seg`` bars of the ``kind`` regime."""
    rng = np.random.default_rng(seed)
    t = n_base + n_seg
    vol = np.full(t, 0.01)
    vol[:n_base] = np.array([0.01, 0.006, 0.02])[np.arange(n_base) // 250 % 3]
    vol[n_base:] = SEGMENT_VOL.get(kind, 0.01)
    drift = np.zeros(t)
    drift[n_base:] = SEGMENT_DRIFT.get(kind, 0.0)
    close = 100.0 * np.exp(
        np.cumsum(drift[:, None] + vol[:, None] * rng.standard_normal((t, assets)), 0)
    )
    open_ = np.vstack([close[:1], close[:-1]])
    wick = 0.5 * vol[:, None]
    high = np.maximum(open_, close) * np.exp(wick * np.abs(rng.standard_normal(close.shape)))
    low = np.minimum(open_, close) * np.exp(-wick * np.abs(rng.standard_normal(close.shape)))
    return high, low, close


@pytest.fixture(scope="module")
def market():
    """The default synthetic market (conf/data/synthetic.yaml) at the training seed 42,
    held out from the tuning of the defaults (seeds 0-4)."""
    return SyntheticMarket(n_assets=2, n_bars=20000, seed=42).generate()


@pytest.fixture(scope="module")
def fitted_hmm(market):
    det = MarketRegimeDetector(RegimeConfig(method="hmm", hmm_iterations=8))
    return det.fit(market.high[:8000], market.low[:8000], market.close[:8000])


def test_rules_reach_the_target_on_the_default_synthetic_market(market):
    labels = MarketRegimeDetector().detect(market.high, market.low, market.close)
    assert labels.shape == (len(market),) and labels.dtype == np.int8
    acc = balanced_accuracy(market.regimes, labels)
    assert acc >= 0.7, acc  # measured 0.773 (experiments/results/regime_accuracy.md)
    # chance is 0.25: labels shuffled in time lose all of it
    shuffled = np.random.default_rng(0).permutation(labels)
    assert balanced_accuracy(market.regimes, shuffled) < 0.35


def perturbed_after(t: int, high, low, close, rng):
    """Copies with every bar after t ripped up (random level shifts, wider ranges)."""
    shock = np.exp(rng.normal(0.3, 0.5, close[t + 1 :].shape))
    h, lo, c = high.copy(), low.copy(), close.copy()
    h[t + 1 :] *= shock * 1.5
    lo[t + 1 :] *= shock
    c[t + 1 :] *= shock
    return h, lo, c


@pytest.mark.parametrize("method", ["rules", "rules-smoothed", "hmm"])
def test_labels_never_look_ahead(method, market, request):
    high, low, close = (x[:3000] for x in (market.high, market.low, market.close))
    det = {
        "rules": lambda: MarketRegimeDetector(),
        "rules-smoothed": lambda: MarketRegimeDetector(RegimeConfig(smooth=7, warmup=10)),
        "hmm": lambda: request.getfixturevalue("fitted_hmm"),
    }[method]()
    base, base_assets = det.detect(high, low, close), det.detect_assets(high, low, close)
    rng = np.random.default_rng(1)
    for t in (200, 1500, 2990):
        h, lo, c = perturbed_after(t, high, low, close, rng)
        out, out_assets = det.detect(h, lo, c), det.detect_assets(h, lo, c)
        np.testing.assert_array_equal(out[: t + 1], base[: t + 1])
        np.testing.assert_array_equal(out_assets[: t + 1], base_assets[: t + 1])
        assert not np.array_equal(out, base)  # the perturbation did change the future labels


@pytest.mark.parametrize(
    ("kind", "code"),
    [("bull", BULL), ("bear", BEAR), ("sideways", SIDEWAYS), ("volatile", VOLATILE)],
)
def test_each_regime_is_detected_on_a_crafted_series(kind, code):
    high, low, close = crafted(kind)
    det = MarketRegimeDetector()
    tail = det.detect(high, low, close)[-300:]  # 100 bars into the segment, on
    assert np.mean(tail == code) > 0.9, np.bincount(tail, minlength=4)
    per_asset = det.detect_assets(high, low, close)[-300:]
    assert per_asset.shape == (300, 2)
    assert np.mean(per_asset == code) > 0.9, np.bincount(per_asset.ravel(), minlength=4)


def test_warmup_bars_are_sideways_and_one_asset_works():
    high, low, close = crafted("bull", n_base=500, assets=1)
    det = MarketRegimeDetector(RegimeConfig(warmup=50))
    labels = det.detect(high[:, 0], low[:, 0], close[:, 0])  # [T] input = one asset
    assert np.all(labels[:50] == SIDEWAYS)
    np.testing.assert_array_equal(labels, det.detect_assets(high, low, close)[:, 0])


def test_flat_prices_give_finite_defined_labels():
    close = np.full((300, 2), 50.0)
    labels = MarketRegimeDetector().detect(close, close, close)
    assert set(np.unique(labels)) <= {BULL, BEAR, SIDEWAYS, VOLATILE}


def test_smoothing_is_a_majority_vote():
    high, low, close = crafted("bull")
    raw = MarketRegimeDetector(RegimeConfig(warmup=0)).detect(high, low, close)
    smooth = MarketRegimeDetector(RegimeConfig(warmup=0, smooth=25)).detect(high, low, close)
    assert np.sum(np.diff(smooth) != 0) < np.sum(np.diff(raw) != 0)  # fewer flips
    t = 2000
    votes = np.bincount(raw[t - 24 : t + 1], minlength=4)
    assert votes[smooth[t]] == votes.max()


def test_hmm_is_useful_out_of_sample_and_restores_exactly(fitted_hmm, market):
    high, low, close = market.high, market.low, market.close
    labels = fitted_hmm.detect(high, low, close)
    acc = balanced_accuracy(market.regimes[8000:], labels[8000:])  # out of sample
    assert acc >= 0.6, acc  # measured 0.749 here (8 EM iterations)
    # exact restore from a checkpoint
    clone = MarketRegimeDetector(RegimeConfig(method="hmm"))
    clone.load_state_dict(fitted_hmm.state_dict())
    np.testing.assert_array_equal(
        clone.detect(high[:3000], low[:3000], close[:3000]), labels[:3000]
    )


def test_hmm_needs_fit_and_rules_fit_is_a_noop(market):
    with pytest.raises(RuntimeError, match="fit"):
        MarketRegimeDetector(RegimeConfig(method="hmm")).detect(
            market.high, market.low, market.close
        )
    det = MarketRegimeDetector()
    assert det.fit(market.high, market.low, market.close) is det
    assert det.state_dict() == {}


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"method": "viterbi"}, "data.regime.method"),
        ({"vol_span": 0}, "data.regime.vol_span"),
        ({"trend_span": 9.5}, "data.regime.trend_span"),
        ({"warmup": -1}, "data.regime.warmup"),
        ({"volatile_threshold": float("nan")}, "data.regime.volatile_threshold"),
        ({"quiet_threshold": 0.1}, "data.regime.calm_threshold"),
        ({"adx_threshold": 120.0}, "data.regime.adx_threshold"),
        ({"hmm_persistence": 1.0}, "data.regime.hmm_persistence"),
        ({"hmm_iterations": 0}, "data.regime.hmm_iterations"),
    ],
)
def test_bad_config_names_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        RegimeConfig(**kwargs)


def test_config_accepts_ints_for_floats():
    cfg = RegimeConfig(adx_threshold=25, volatile_threshold=1)
    assert isinstance(cfg.adx_threshold, float) and cfg.volatile_threshold == 1.0


def test_metrics_on_a_hand_example():
    true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 0, 2, 3])
    cm = confusion_matrix(true, pred)
    assert cm.tolist() == [[3, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]]
    # recalls 3/4, 1/2, 1/2; class 3 absent from the truth is not averaged in
    assert balanced_accuracy(true, pred) == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert balanced_accuracy(true, true) == 1.0


def test_the_pipeline_labels_every_split_once_in_one_causal_pass():
    from adan.data import MarketPipeline
    from adan.data.regime_detection import attach_regimes

    bars = SyntheticMarket(n_assets=2, n_bars=3000, seed=3).generate()
    features = ["log_return", "volatility_24"]
    split = {"train": 0.6, "val": 0.2, "test": 0.2, "embargo": 24}
    built = MarketPipeline(bars, features, split, regime={"warmup": 10}).build()
    bare = {k: replace(d, detected_regimes=None) for k, d in built.items()}
    again = attach_regimes(bare, RegimeConfig(warmup=10))
    for name, data in built.items():
        assert data.detected_regimes is not None and len(data.detected_regimes) == len(data)
        np.testing.assert_array_equal(data.detected_regimes, again[name].detected_regimes)
    # the val split continues train's history rather than starting cold
    alone = MarketRegimeDetector(RegimeConfig(warmup=10)).detect(
        built["val"].high, built["val"].low, built["val"].close
    )
    assert not np.array_equal(alone, built["val"].detected_regimes)
    folds = MarketPipeline(bars, features, split).build_walk_forward(2, val_bars=300, test_bars=300)
    assert all(d.detected_regimes is not None for fold in folds for d in fold.values())
    with pytest.raises(ConfigError, match=r"data\.regime has unknown keys"):
        MarketPipeline(bars, features, split, regime={"observe": True})
