from dataclasses import replace

import numpy as np
import pytest
from omegaconf import OmegaConf

from adan.data import MarketData, MarketPipeline, SyntheticMarket, compute_features
from adan.data.features import DEFAULT_FEATURES

SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2, "embargo": 5}


@pytest.fixture(scope="module")
def built() -> dict[str, MarketData]:
    return MarketPipeline(SyntheticMarket(n_bars=3000, seed=7), DEFAULT_FEATURES, SPLIT).build()


def test_shapes_dtypes_and_lengths(built):
    assert list(built) == ["train", "val", "test"]
    warmup = built["train"].meta["warmup"]
    usable = 3000 - warmup - 2 * 5
    assert [len(d) for d in built.values()] == [
        int(0.6 * usable),
        int(0.2 * usable),
        usable - int(0.6 * usable) - int(0.2 * usable),
    ]
    for name, d in built.items():
        assert d.features.shape == (len(d), 2, len(DEFAULT_FEATURES))
        assert d.features.dtype == np.float32 and d.features.flags.c_contiguous
        assert np.isfinite(d.features).all()
        assert np.abs(d.features).max() <= 10.0
        assert d.close.dtype == np.float64 and d.regimes.dtype == np.int8
        assert d.feature_names == DEFAULT_FEATURES
        assert d.meta["split"] == name


def test_warmup_dropped_embargo_and_alignment(built):
    bars = SyntheticMarket(n_bars=3000, seed=7).generate()
    train, val, test = built.values()
    warmup = train.meta["warmup"]
    assert warmup > 0 and train.timestamps[0] == bars.timestamps[warmup]
    np.testing.assert_array_equal(train.close[0], bars.close[warmup])
    assert val.meta["bar_range"][0] - train.meta["bar_range"][1] == 5
    assert test.timestamps[-1] == bars.timestamps[-1]
    assert train.timestamps[-1] < val.timestamps[0] < test.timestamps[0]
    start, stop = test.meta["bar_range"]
    np.testing.assert_array_equal(test.regimes, bars.regimes[start:stop])


def test_scaler_in_meta_fitted_on_train(built):
    train = built["train"]
    scaler = train.meta["scaler"]
    assert np.asarray(scaler["mean"]).shape == (2, len(DEFAULT_FEATURES))
    assert scaler == built["test"].meta["scaler"]  # every split is normalised with train's
    raw, _ = compute_features(SyntheticMarket(n_bars=3000, seed=7).generate(), DEFAULT_FEATURES)
    start, stop = train.meta["bar_range"]
    np.testing.assert_allclose(
        scaler["mean"], np.nanmean(raw[start:stop], axis=0), rtol=1e-9, atol=1e-12
    )
    everything = np.nanmean(raw[train.meta["warmup"] :], axis=0)
    assert not np.allclose(scaler["mean"], everything)  # would pass only if fitted on all rows
    np.testing.assert_allclose(train.features.mean(axis=0), 0, atol=0.05)
    np.testing.assert_allclose(train.features.std(axis=0), 1, atol=0.05)


def test_accepts_dictconfig_and_is_deterministic(built):
    cfg = OmegaConf.create({"split": SPLIT, "features": list(DEFAULT_FEATURES)})
    pipe = MarketPipeline(SyntheticMarket(n_bars=3000, seed=7), cfg.features, cfg.split)
    again = pipe.build()
    np.testing.assert_array_equal(again["test"].features, built["test"].features)
    assert "MarketPipeline(" in repr(pipe) and len(repr(pipe)) < 160


def test_too_short_split_names_it():
    pipe = MarketPipeline(SyntheticMarket(n_bars=300), ["log_return"], SPLIT, min_split_bars=100)
    with pytest.raises(ValueError, match="split 'val' has 5[0-9] bars, need at least 100"):
        pipe.build()


def test_bad_value_after_warmup_names_feature_asset_and_time():
    bars = SyntheticMarket(n_bars=400, seed=1).generate()
    close = bars.close.copy()
    close[200, 1] = -1.0  # log of a negative price -> NaN
    bad = replace(bars, close=close)
    with pytest.raises(ValueError, match=r"'log_return'.*'SYN1'.*2020-01-09T08:00.*row 200"):
        MarketPipeline(bad, ["log_return"], SPLIT).build()


def test_unknown_split_key():
    with pytest.raises(ValueError, match="'tets'"):
        MarketPipeline(SyntheticMarket(), ["log_return"], {"tets": 0.1})
