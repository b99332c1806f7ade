"""Higher timeframes: resampled values match pandas, a higher bar is visible only once closed,
incomplete higher windows are dropped, and the scaler sees train-closed higher bars only."""

import numpy as np
import pandas as pd
import pytest

from adan.data import (
    Bars,
    MarketPipeline,
    SyntheticMarket,
    TimeframeData,
    compute_features,
    resample,
)
from adan.data.timeframes import HigherTimeframes, bar_length, rule_duration

SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2, "embargo": 5}
TIMEFRAMES = [
    {"rule": "4h", "features": ["log_return", "rsi_14"], "window": 8},
    {"rule": "1d", "features": ["momentum_6"], "window": 4},
]


def make_bars(hours, n_assets=2, seed=0, start="2024-01-01"):
    """Bars opening at ``start`` + each of ``hours``; random OHLCV."""
    rng = np.random.default_rng(seed)
    hours = np.asarray(hours)
    ts = (np.datetime64(start, "ns") + hours * np.timedelta64(1, "h")).astype("datetime64[ns]")
    shape = (len(hours), n_assets)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, shape), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.003, shape))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, shape))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, shape))
    volume = rng.uniform(1, 10, shape)
    return Bars(ts, tuple(f"A{i}" for i in range(n_assets)), open_, high, low, close, volume)


def test_resample_matches_pandas_with_a_gap():
    # hours 0..29 without 6..13: the 4h period [4, 8) has 2 bars, [8, 12) none, [12, 16) 2
    hours = np.r_[np.arange(0, 6), np.arange(14, 30)]
    bars = make_bars(hours)
    higher, _ = resample(bars, "4h")
    for a in range(2):
        df = pd.DataFrame(
            {
                "open": bars.open[:, a],
                "high": bars.high[:, a],
                "low": bars.low[:, a],
                "close": bars.close[:, a],
                "volume": bars.volume[:, a],
                "n": 1,
            },
            index=pd.DatetimeIndex(bars.timestamps),
        )
        agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        want = df.resample("4h", closed="left", label="left", origin="epoch").agg(
            {**agg, "n": "sum"}
        )
        want = want[want["n"] > 0]  # periods without a base bar are absent
        np.testing.assert_array_equal(higher.timestamps, want.index.values)
        for col in agg:
            np.testing.assert_array_equal(getattr(higher, col)[:, a], want[col].to_numpy())
    assert pd.Timestamp(higher.timestamps[2]) == pd.Timestamp("2024-01-01 12:00")  # 8-12 absent


def test_a_4h_bar_is_visible_only_once_closed():
    bars = make_bars(np.arange(12))  # 00:00 .. 11:00
    _, index = resample(bars, "4h")
    # the 00-04 bar closes with the 03:00 bar; -1 before (nothing closed yet)
    np.testing.assert_array_equal(index, [-1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 2])


def test_gap_start_mid_period_and_daily_bars():
    # bars at 02:00, 03:00 (period 00-04 starts before the data), then a gap to 09:00
    bars = make_bars([2, 3, 9, 10])
    _, index = resample(bars, "4h")
    # 02:00: open; 03:00 closes 00-04; 09:00: 08-12 still open, the latest closed is 00-04
    np.testing.assert_array_equal(index, [-1, 0, 0, 0])
    daily = make_bars(np.arange(50))
    higher, index = resample(daily, "1d")
    assert len(higher) == 3
    assert index[22] == -1 and index[23] == 0 and index[46] == 0 and index[47] == 1


def test_bar_length_is_the_median_step_and_rules_are_checked():
    bars = make_bars([0, 1, 2, 5, 6, 7])  # one gap
    assert bar_length(bars.timestamps) == pd.Timedelta("1h").value
    assert rule_duration("1d") == pd.Timedelta("1D")
    for bad in ("1W", "1ME", "0h", "abc"):
        with pytest.raises(ValueError, match="timeframe rule"):
            rule_duration(bad)
    with pytest.raises(ValueError, match="shorter than the base bar"):
        resample(bars, "30min")


def test_overlapping_bars_never_close_a_period_early():
    # a stray 03:30 bar: the 03:00 bar must not close 00-04, since 03:30 is part of it
    ts = np.datetime64("2024-01-01", "ns") + np.array([0, 60, 120, 180, 210, 240, 300]) * (
        np.timedelta64(1, "m")
    )
    base = make_bars(np.arange(7))
    bars = Bars(ts, base.assets, base.open, base.high, base.low, base.close, base.volume)
    _, index = resample(bars, "4h")
    np.testing.assert_array_equal(index, [-1, -1, -1, -1, 0, 0, 0])


@pytest.fixture(scope="module")
def market():
    return SyntheticMarket(n_bars=3000, seed=7).generate()


@pytest.fixture(scope="module")
def built(market):
    return MarketPipeline(market, ["log_return", "rsi_14"], SPLIT, timeframes=TIMEFRAMES).build()


def test_pipeline_shapes_and_meta(built):
    for name, d in built.items():
        assert set(d.timeframes) == {"4h", "1d"}
        for spec in TIMEFRAMES:
            tf = d.timeframes[spec["rule"]]
            assert isinstance(tf, TimeframeData)
            assert tf.features.dtype == np.float32 and tf.features.shape[1:] == (
                2,
                len(spec["features"]),
            )
            assert np.isfinite(tf.features).all() and np.abs(tf.features).max() <= 10.0
            assert tf.index.shape == (len(d),) and tf.index.dtype == np.int64
            assert tf.index.min() >= tf.window - 1 and (np.diff(tf.index) >= 0).all()
            meta = d.meta["timeframes"][spec["rule"]]
            assert (
                meta["feature_names"] == list(spec["features"]) and meta["window"] == spec["window"]
            )
            assert np.asarray(meta["scaler"]["mean"]).shape == (2, len(spec["features"]))
        assert d.meta["split"] == name


def test_pipeline_drops_rows_whose_higher_windows_are_incomplete(market, built):
    base = MarketPipeline(market, ["log_return", "rsi_14"], SPLIT).build()
    assert base["train"].meta["warmup"] == 14  # rsi_14
    warmup = built["train"].meta["warmup"]
    higher = HigherTimeframes(market, TIMEFRAMES)
    assert warmup == higher.first_row > 14
    # 1d: momentum_6 warm-up 6 + window 4 = the 10th daily bar, which closes with hour 239
    assert warmup == 10 * 24 - 1
    _, index = resample(market, "1d")
    assert index[warmup] - 6 == 3 and index[warmup - 1] - 6 == 2  # complete from here only
    assert built["train"].timeframes["1d"].index[0] == 3  # == window - 1
    assert built["train"].meta["bar_range"][0] == warmup


def test_higher_features_and_scaler_use_train_closed_bars_only(market, built):
    train = built["train"]
    last_train_row = train.meta["bar_range"][1] - 1  # in the original bars
    for spec in TIMEFRAMES:
        higher, index = resample(market, spec["rule"])
        raw, warmup = compute_features(higher, spec["features"])
        fitted = raw[warmup : index[last_train_row] + 1]  # closed by the end of train
        meta = train.meta["timeframes"][spec["rule"]]["scaler"]
        np.testing.assert_allclose(meta["mean"], fitted.mean(axis=0))
        np.testing.assert_allclose(meta["std"], fitted.std(axis=0))
        assert not np.allclose(meta["mean"], raw[warmup:].mean(axis=0))  # not all bars
        z = np.clip((raw[warmup:] - fitted.mean(axis=0)) / fitted.std(axis=0), -10, 10)
        np.testing.assert_allclose(train.timeframes[spec["rule"]].features, z, rtol=1e-5, atol=1e-5)
        # every split indexes the same higher bars, with the index of the original base rows
        for d in built.values():
            start, stop = d.meta["bar_range"]
            np.testing.assert_array_equal(
                d.timeframes[spec["rule"]].index, index[start:stop] - warmup
            )


def test_market_data_slice_slices_the_index_only(built):
    val = built["val"]
    part = val.slice(10, 50, "part")
    for rule, tf in part.timeframes.items():
        assert tf.features is val.timeframes[rule].features
        np.testing.assert_array_equal(tf.index, val.timeframes[rule].index[10:50])
        assert np.shares_memory(tf.index, val.timeframes[rule].index)


def test_bad_timeframes_are_refused(market):
    def build(timeframes, bars=market):
        return MarketPipeline(bars, ["log_return"], SPLIT, timeframes=timeframes).build()

    with pytest.raises(ValueError, match="unknown timeframe key 'size'"):
        build([{"rule": "4h", "features": ["log_return"], "size": 3}])
    with pytest.raises(ValueError, match="duplicate timeframes"):
        build(
            [{"rule": "4h", "features": ["log_return"]}, {"rule": "240min", "features": ["rsi_14"]}]
        )
    with pytest.raises(ValueError, match="never has a full window"):
        build([{"rule": "1d", "features": ["momentum_24"], "window": 200}])
    with pytest.raises(ValueError, match="unknown feature"):
        build([{"rule": "4h", "features": ["nope"]}])


def test_timeframe_data_refuses_an_index_without_a_full_window():
    feats = np.zeros((10, 2, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="full window"):
        TimeframeData("4h", ("f",), feats, np.arange(10, dtype=np.int64), window=3)
