import itertools

import numpy as np
import pandas as pd
import pytest

from adan.data.splits import split_by_date, walk_forward_folds

# 2023-01-01 00:00 .. 2023-01-11 23:00 UTC, hourly: 264 bars
TS = pd.date_range("2023-01-01", periods=264, freq="1h").to_numpy()


def test_split_by_date_boundaries():
    b = split_by_date(TS, "2023-01-05", "2023-01-08")
    assert list(b) == ["train", "val", "test"]
    assert b == {"train": (0, 96), "val": (96, 168), "test": (168, 264)}
    assert TS[95] < np.datetime64("2023-01-05") <= TS[96]


def test_split_by_date_embargo_and_test_end():
    b = split_by_date(TS, "2023-01-05", "2023-01-08", "2023-01-10", embargo=5)
    assert b == {"train": (0, 96), "val": (101, 168), "test": (173, 216)}
    # a test_end after the last bar just means "to the end"
    assert split_by_date(TS, "2023-01-05", "2023-01-08", "2024-01-01")["test"] == (168, 264)


@pytest.mark.parametrize(
    "dates",
    [
        ("2023-01-05", "2023-01-08"),
        (np.datetime64("2023-01-05"), np.datetime64("2023-01-08T00:00:00.000000000")),
        (pd.Timestamp("2023-01-05"), pd.Timestamp("2023-01-08")),
        (pd.Timestamp("2023-01-05 01:00", tz="Europe/Paris"), "2023-01-08T00:00Z"),
        ("2023-01-04T19:00-05:00", pd.Timestamp("2023-01-08", tz="UTC").to_pydatetime()),
    ],
)
def test_split_by_date_accepts_strings_numpy_pandas_and_timezones(dates):
    assert split_by_date(TS, *dates)["val"] == (96, 168)


def test_split_by_date_between_bars_and_non_ns_timestamps():
    assert split_by_date(TS, "2023-01-05 00:30", "2023-01-08")["train"] == (0, 97)
    seconds = TS.astype("datetime64[s]")
    assert split_by_date(seconds, "2023-01-05", "2023-01-08")["val"] == (96, 168)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("2023-01-08", "2023-01-05"), {}, "val_end='2023-01-05' must be after train_end"),
        (("2023-01-05", "2023-01-08", "2023-01-07"), {}, "test_end=.* must be after val_end"),
        (
            ("2022-12-01", "2023-01-08"),
            {},
            "train_end=.*outside the data.*2023-01-01T00.*2023-01-11T23",
        ),
        (("2023-01-01", "2023-01-08"), {}, "train_end=.*outside the data"),
        (("2023-01-05", "2023-02-01"), {}, "val_end=.*outside the data"),
        (("2023-01-05", "2023-01-05 01:00"), {"embargo": 1}, "val split is empty.*val_end"),
        (("2023-01-05", "2023-01-11 23:00"), {"embargo": 1}, "test split is empty"),
        (("2023-01-05", "2023-01-08"), {"embargo": -1}, "embargo=-1"),
        (("2023-01-05", "2023-01-08"), {"embargo": 1.5}, "embargo=1.5"),
        (("not a date", "2023-01-08"), {}, "train_end='not a date' is not a date"),
    ],
)
def test_split_by_date_errors_name_the_argument(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_by_date(TS, *args, **kwargs)


def test_split_by_date_rejects_unordered_timestamps():
    with pytest.raises(ValueError, match="strictly increasing.*row 3"):
        split_by_date(TS[[0, 1, 2, 2, 4]], "2023-01-01 01:00", "2023-01-01 02:00")
    with pytest.raises(ValueError, match="non-empty"):
        split_by_date(TS[:0], "2023-01-05", "2023-01-08")


def check_folds(folds, n_bars, n_folds, val_bars, test_bars, embargo):
    assert len(folds) == n_folds
    parts = ["train", "val", "test"] if test_bars else ["train", "val"]
    for fold in folds:
        assert list(fold) == parts
        for s, e in fold.values():
            assert 0 <= s < e <= n_bars  # every bar index within range, no empty part
        (ts, te), (vs, ve) = fold["train"], fold["val"]
        assert ts < te <= vs and vs - te == embargo and ve - vs == val_bars  # embargo gap
        if test_bars:
            qs, qe = fold["test"]
            assert qs - ve == embargo and qe - qs == test_bars
    for a, b in itertools.pairwise(folds):  # ordered in time; val periods tile, no overlap
        assert b["val"][0] == a["val"][1]
        assert b["train"][1] > a["train"][1] and b["train"][0] >= a["train"][0]
    last = folds[-1]["test" if test_bars else "val"][1]
    assert last == n_bars  # the folds end with the history


@pytest.mark.parametrize("expanding", [False, True])
@pytest.mark.parametrize(
    ("n_bars", "n_folds", "train_bars", "val_bars", "test_bars", "embargo"),
    [
        (1000, 5, 300, 100, 0, 0),
        (1000, 4, 200, 50, 0, 10),
        (1000, 3, None, 100, 50, 7),
        (517, 6, 100, 30, 20, 3),
        (12, 1, None, 5, 0, 0),
    ],
)
def test_walk_forward_folds(n_bars, n_folds, train_bars, val_bars, test_bars, embargo, expanding):
    folds = walk_forward_folds(
        n_bars, n_folds, train_bars, val_bars, test_bars, embargo, expanding=expanding
    )
    check_folds(folds, n_bars, n_folds, val_bars, test_bars, embargo)
    lengths = [f["train"][1] - f["train"][0] for f in folds]
    first = train_bars if train_bars is not None else folds[0]["val"][0] - embargo
    assert lengths[0] == first
    if train_bars is None:
        assert folds[0]["train"][0] == 0
    if expanding:
        assert len({f["train"][0] for f in folds}) == 1
        assert lengths == [first + k * val_bars for k in range(n_folds)]
    else:
        assert lengths == [first] * n_folds


def test_walk_forward_example():
    folds = walk_forward_folds(100, 3, 40, 10, test_bars=5, embargo=2)
    assert folds == [
        {"train": (21, 61), "val": (63, 73), "test": (75, 80)},
        {"train": (31, 71), "val": (73, 83), "test": (85, 90)},
        {"train": (41, 81), "val": (83, 93), "test": (95, 100)},
    ]
    expanding = walk_forward_folds(100, 3, 40, 10, embargo=2, expanding=True)
    assert [f["train"] for f in expanding] == [(28, 68), (28, 78), (28, 88)]
    assert [f["val"] for f in expanding] == [(70, 80), (80, 90), (90, 100)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_folds": 0}, "n_folds=0"),
        ({"val_bars": 0}, "val_bars=0"),
        ({"train_bars": 0}, "train_bars=0"),
        ({"test_bars": -1}, "test_bars=-1"),
        ({"embargo": -2}, "embargo=-2"),
        ({"embargo": 0.5}, "embargo=0.5"),
        ({"n_folds": 2.5}, "n_folds=2.5"),
        ({"n_folds": 10}, "needs 1200 bars.*only n_bars=1000"),
        ({"train_bars": 600, "test_bars": 50, "embargo": 5}, "needs 1060 bars"),
    ],
)
def test_walk_forward_bad_arguments(kwargs, match):
    args = {"n_bars": 1000, "n_folds": 4, "train_bars": 200, "val_bars": 100, **kwargs}
    with pytest.raises(ValueError, match=match):
        walk_forward_folds(**args)
