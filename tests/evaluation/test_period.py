"""Choosing the evaluated period inside a split."""

import numpy as np
import pytest

from adan.tasks.evaluate import _training_overlap, select_period
from tests.market.markets import random_walk


@pytest.fixture
def data():
    return random_walk(num_bars=24 * 10, num_assets=1)  # hourly bars from 1970-01-01


def test_a_date_end_means_the_whole_day_and_the_last_bar_is_scored(data):
    cut = select_period(data, ["1970-01-03", "1970-01-04"], window=4)
    # 3 bars of history before the start, then the two days, then the simulator's spare bar
    assert cut.timestamps[3] == np.datetime64("1970-01-03T00:00")
    assert cut.timestamps[-2] == np.datetime64("1970-01-04T23:00")
    assert len(cut) == 3 + 48 + 1


def test_a_single_date_is_a_start(data):
    cut = select_period(data, "1970-01-09", window=4)
    assert cut.timestamps[3] == np.datetime64("1970-01-09T00:00")
    assert cut.timestamps[-1] == data.timestamps[-1]


def test_periods_outside_or_too_short_are_refused(data):
    with pytest.raises(ValueError, match="lies outside"):
        select_period(data, ["1971-01-01", None], window=4)
    with pytest.raises(ValueError, match="needs 6"):
        select_period(data, ["1970-01-03 00:00", "1970-01-03 00:00"], window=4)


def test_overlap_with_the_training_periods(data):
    contract = {
        "periods": {"train": ["1969-01-01", "1970-01-02"], "val": ["1971-01-01", "1971-02-01"]}
    }
    assert _training_overlap(contract, data) == {"train": True, "val": False}
    assert _training_overlap({}, data) == {}
