"""The pipeline over files: held-out test period, date splits, saved scalers, walk-forward
folds, and the feature cache (hit, invalidation, corruption, the report kept with it)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adan.data import FileMarket, MarketPipeline, SyntheticMarket
from adan.data.features import DEFAULT_FEATURES
from tests.data.test_cleaning import hourly, write

FEATURES = [*DEFAULT_FEATURES, "filled"]


def files(tmp_path, n_hist=1500, n_test=400):
    """Two assets: a history and a later, non-touching test period for each."""
    paths = {}
    for name, price in (("AAA", 100.0), ("BBB", 3.0)):
        rows = hourly(n_hist + 300 + n_test, price=price)
        del rows[n_hist - 100]  # one short gap in the history
        paths[name] = write(tmp_path / f"{name}_hist.csv", rows[:n_hist])
        paths[name + "_test"] = write(tmp_path / f"{name}_test.csv", rows[n_hist + 300 :])
    return paths


def market(tmp_path, cache=None, features=FEATURES, **kw):
    p = files(tmp_path)
    return FileMarket(
        path=[str(p["AAA"]), str(p["BBB"])],
        test_path=[str(p["AAA_test"]), str(p["BBB_test"])],
        assets=["AAA", "BBB"],
        features=features,
        split={"train": 0.8, "val": 0.2, "test": 0.0, "embargo": 10},
        report_path=str(tmp_path / "report.json"),
        cache_dir=None if cache is None else str(cache),
        **kw,
    )


def test_held_out_test_period_has_own_warmup_and_the_train_scaler(tmp_path):
    out = market(tmp_path).build()
    train, val, test = out["train"], out["val"], out["test"]
    assert train.assets == test.assets == ("AAA", "BBB")
    assert val.timestamps[0] - train.timestamps[-1] == np.timedelta64(11, "h")  # embargo 10
    assert test.timestamps[0] > val.timestamps[-1] + np.timedelta64(200, "h")
    # the test period drops its own warm-up (macd_hist needs 34 bars) instead of reaching back
    assert len(test) == 399 - 34  # 400 rows were generated, one deleted earlier
    assert test.meta["scaler"] == train.meta["scaler"]
    assert (tmp_path / "report_test.json").exists()
    assert json.loads((tmp_path / "report.json").read_text())["defects"][0]["rule"] == "gap"
    assert val.features[:, :, FEATURES.index("filled")].max() > 0  # the flagged gap bar


def test_test_period_must_come_after_the_history(tmp_path):
    p = files(tmp_path)
    pipe = FileMarket(
        path=[str(p["AAA_test"])],
        test_path=[str(p["AAA"])],
        assets=["AAA"],
        features=FEATURES,
        split={"train": 0.8, "val": 0.2, "test": 0.0},
        report_path=None,
    )
    with pytest.raises(ValueError, match="before the history ends"):
        pipe.build()


def test_split_by_date_with_embargo():
    src = SyntheticMarket(n_bars=3000, seed=1, start="2020-01-01")
    split = {"train_end": "2020-03-01", "val_end": "2020-04-01", "embargo": 5}
    out = MarketPipeline(src, DEFAULT_FEATURES, split).build()
    assert out["train"].timestamps[-1] < np.datetime64("2020-03-01")
    assert out["val"].timestamps[0] == np.datetime64("2020-03-01T05:00")
    assert out["val"].timestamps[-1] < np.datetime64("2020-04-01")
    assert out["test"].timestamps[0] == np.datetime64("2020-04-01T05:00")


def test_saved_scalers_rebuild_the_training_transformation(tmp_path):
    src = SyntheticMarket(n_bars=3000, seed=2)
    tfs = [{"rule": "4h", "features": ["log_return", "rsi_14"], "window": 4}]
    a = MarketPipeline(
        src, DEFAULT_FEATURES, {"train": 0.5, "val": 0.25, "test": 0.25}, timeframes=tfs
    ).build()
    contract = {k: a["train"].meta[k] for k in ("scaler", "feature_names", "timeframes")}
    # another split would fit other statistics; with the contract the features are identical
    other = MarketPipeline(
        src, DEFAULT_FEATURES, {"train": 0.3, "val": 0.3, "test": 0.4}, timeframes=tfs
    )
    refit, fitted = other.build(), other.build(fitted=contract)
    n = len(a["test"])  # other's test split ends where a's does and is longer
    assert not np.allclose(refit["test"].features[-n:], a["test"].features)
    np.testing.assert_array_equal(fitted["test"].features[-n:], a["test"].features)
    np.testing.assert_array_equal(
        fitted["test"].timeframes["4h"].features, a["test"].timeframes["4h"].features
    )
    wrong = dict(contract, feature_names=["log_return"])
    with pytest.raises(ValueError, match="checkpoint's features"):
        other.build(fitted=wrong)


def test_walk_forward_folds_are_normalised_on_their_own_train():
    pipe = MarketPipeline(SyntheticMarket(n_bars=4000, seed=3), DEFAULT_FEATURES, {"embargo": 8})
    folds = pipe.build_walk_forward(n_folds=3, val_bars=500, train_bars=1500)
    assert len(folds) == 3
    for fold in folds:
        assert fold["train"].timestamps[-1] + np.timedelta64(9, "h") == fold["val"].timestamps[0]
        assert len(fold["train"]) == 1500 and len(fold["val"]) == 500
    assert folds[0]["val"].timestamps[-1] < folds[1]["val"].timestamps[0]
    assert folds[0]["train"].meta["scaler"] != folds[1]["train"].meta["scaler"]


def _same(a, b):
    for split in a:
        np.testing.assert_array_equal(a[split].features, b[split].features)
        np.testing.assert_array_equal(a[split].close, b[split].close)


def test_cache_hit_invalidation_and_corruption(tmp_path, caplog):
    cache = tmp_path / "cache"
    first = market(tmp_path, cache).build()
    entries = sorted(cache.glob("*.npz"))
    assert len(entries) == 2  # the history and the test period
    (tmp_path / "report.json").unlink()
    with caplog.at_level("INFO"):
        second = market(tmp_path, cache).build()
    assert caplog.text.count("cache hit") == 2
    _same(first, second)
    assert (tmp_path / "report.json").exists()  # the cleaning report comes back with the hit

    # a corrupt entry is detected and rebuilt, never trusted
    raw = bytearray(entries[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    entries[0].write_bytes(bytes(raw))
    caplog.clear()
    with caplog.at_level("INFO"):
        third = market(tmp_path, cache).build()
    assert caplog.text.count("cache hit") == 1
    _same(first, third)

    # another feature set misses; so does an edited input file
    caplog.clear()
    with caplog.at_level("INFO"):
        market(tmp_path, cache, features=["log_return", "rsi_7"]).build()
    assert "cache hit" not in caplog.text
    assert len(list(cache.glob("*.npz"))) == 4
    caplog.clear()
    pipe = market(tmp_path, cache)
    path = pipe.source.paths[0]
    text = path.read_text().splitlines()
    text[5] = text[5][:-1] + "9"  # one volume digit
    path.write_text("\n".join(text) + "\n")
    with caplog.at_level("INFO"):
        pipe.build()
    assert caplog.text.count("cache hit") == 1  # the test period is unchanged
    assert len(list(cache.glob("*.npz"))) == 5


def test_filled_flag_carries_to_higher_timeframes():
    from adan.data import Bars, resample

    t = 12
    ones = np.ones((t, 1))
    filled = np.zeros((t, 1), dtype=bool)
    filled[5] = True
    bars = Bars(
        timestamps=np.datetime64("2024-01-01T00:00") + np.arange(t) * np.timedelta64(1, "h"),
        assets=("A",),
        open=ones,
        high=ones,
        low=ones,
        close=ones,
        volume=ones,
        filled=filled,
    )
    higher, _ = resample(bars, "4h")
    assert higher.filled[:, 0].tolist() == [False, True, False]
