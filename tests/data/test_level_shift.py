"""The level-shift rule: a lasting jump by ``level_shift_factor`` between two bars splits the
history; jumps that revert, real moves and single bad prints are left to the other rules."""

from __future__ import annotations

import numpy as np
import pytest

from adan.data import CleaningPolicy, DataError, FileSource
from tests.data.test_cleaning import defects, hourly, load, write


def shifted(n: int = 300, at: int = 200, factor: float = 10.0, stop: int | None = None):
    """Hourly rows whose prices from ``at`` (to ``stop``) are divided by ``factor``."""
    rows = hourly(n)
    for r in rows[at:stop]:
        r[1:5] = [x / factor for x in r[1:5]]
    return rows


def test_reverse_split_upwards_is_a_level_shift_too(tmp_path):
    bars, report = load(write(tmp_path / "X.csv", shifted(300, 100, 0.1)))
    (d,) = defects(report, "level_shift")
    assert d["rows"] == [102] and "factor of 10" in d["detail"]
    assert len(bars) == 200 and bars.close[0, 0] > 500  # the later, longer stretch is kept


def test_a_stretch_that_reverts_is_not_a_level_shift(tmp_path):
    rows = shifted(300, 150, 10.0, stop=155)  # five bad bars, then back
    _, report = load(write(tmp_path / "X.csv", rows))
    assert not defects(report, "level_shift")


def test_real_moves_and_single_bad_prints_are_not_level_shifts(tmp_path):
    rows = hourly(300)
    for r in rows[120:]:  # a real +40 % move that lasts: below the factor
        r[1:5] = [x * 1.4 for x in r[1:5]]
    rows[60][1] = rows[60][1] * 10  # a bad open, alone: the outlier rule's
    rows[60][2] = rows[60][1]
    bars, report = load(write(tmp_path / "X.csv", rows))
    assert not defects(report, "level_shift")
    assert defects(report, "outlier_price")[0]["rows"][0] == 62
    assert len(bars) == 300


def test_a_crash_within_one_bar_is_a_move_not_a_level_shift(tmp_path):
    rows = shifted(300, 200, 10.0)
    rows[199][4] = rows[200][1]  # bar 199 opens at the old level and closes at the new
    rows[199][3] = rows[199][4] * 0.999
    _, report = load(write(tmp_path / "X.csv", rows))
    assert not defects(report, "level_shift")


def test_factor_zero_turns_the_rule_off_and_the_outlier_rule_sees_the_jump(tmp_path):
    path = write(tmp_path / "X.csv", shifted())
    _, report = load(path, level_shift_factor=0)
    assert not defects(report, "level_shift") and defects(report, "outlier_price")
    _, report = load(path, level_shift_factor=20)  # a 10x jump is below a factor of 20
    assert not defects(report, "level_shift")


def test_outliers_are_still_repaired_on_each_side_of_a_shift(tmp_path):
    rows = shifted()
    rows[250][1] = rows[250][1] * 5  # a bad open after the shift
    rows[250][2] = rows[250][1]
    rows[50][1] = rows[50][1] * 5  # and one before it
    rows[50][2] = rows[50][1]
    bars, report = load(write(tmp_path / "X.csv", rows))
    assert defects(report, "level_shift")[0]["rows"] == [202]
    assert defects(report, "outlier_price")[0]["rows"] == [52, 252]
    assert bars.open[50, 0] == pytest.approx(rows[49][4], rel=0.01)


def test_a_shift_in_one_asset_splits_the_common_history(tmp_path):
    write(tmp_path / "A.csv", shifted(300, 100))
    write(tmp_path / "B.csv", hourly(300, price=5.0))
    src = FileSource(str(tmp_path / "*.csv"), report_path=None)
    bars = src.generate()
    assert len(bars) == 200 and str(bars.timestamps[0]).startswith("2024-01-05T04")
    dropped = [d for d in src.report.defects if d.rule == "long_gap_segment_dropped"]
    assert "level shift" in dropped[0].action


def test_strict_mode_names_the_first_bar_at_the_new_level(tmp_path):
    path = write(tmp_path / "S.csv", shifted(300, 100))
    with pytest.raises(DataError, match=r"S\.csv: row 102: level_shift: prices jump by a factor"):
        load(path, mode="strict")


@pytest.mark.parametrize("bad", [1.0, 0.5, -3, "x", True])
def test_bad_level_shift_factor_names_the_key(bad):
    with pytest.raises(DataError, match="data.cleaning.level_shift_factor"):
        CleaningPolicy(level_shift_factor=bad)


def test_no_return_across_the_shift_reaches_the_bars(tmp_path):
    bars, _ = load(write(tmp_path / "X.csv", shifted()))
    assert np.abs(np.diff(np.log(bars.close[:, 0]))).max() < 0.05
