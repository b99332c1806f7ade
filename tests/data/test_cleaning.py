"""Each cleaning rule on a tiny crafted file: repaired and reported, or refused in strict mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adan.data.report import DataError
from adan.data.sources import FileSource

HEADER = "timestamp,open,high,low,close,volume\n"


def hourly(n: int, start: str = "2024-01-01 00:00", price: float = 100.0) -> list[list]:
    """n clean hourly rows of a gentle random walk, as [timestamp, o, h, l, c, v] lists."""
    rng = np.random.default_rng(0)
    ts = np.datetime64(start) + np.arange(n) * np.timedelta64(1, "h")
    close = price * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    opens = np.concatenate([[price], close[:-1]])
    return [
        [str(t).replace("T", " "), o, max(o, c) * 1.001, min(o, c) * 0.999, c, 10.0 + i]
        for i, (t, o, c) in enumerate(zip(ts, opens, close, strict=True))
    ]


def write(path: Path, rows: list[list], header: str = HEADER) -> Path:
    path.write_text(header + "".join(",".join(str(x) for x in r) + "\n" for r in rows))
    return path


def load(path: Path, mode: str = "repair", report_dir: Path | None = None, **cleaning):
    report = (report_dir or path.parent) / "report.json"
    src = FileSource(str(path), cleaning=dict(mode=mode, **cleaning), report_path=str(report))
    bars = src.generate()
    return bars, json.loads(report.read_text())


def defects(report: dict, rule: str) -> list[dict]:
    return [d for d in report["defects"] if d["rule"] == rule]


def test_clean_file_has_no_defects(tmp_path):
    bars, report = load(write(tmp_path / "X.csv", hourly(50)))
    assert len(bars) == 50 and report["defects"] == []
    assert not bars.filled.any()


def test_duplicate_timestamps_keep_first_row(tmp_path):
    rows = hourly(20)
    dup = list(rows[5])
    dup[4] = 999.0  # a conflicting close for the same hour
    rows.insert(6, dup)
    bars, report = load(write(tmp_path / "X.csv", rows))
    (d,) = defects(report, "duplicate_timestamp")
    assert d["count"] == 1 and d["rows"] == [8]  # header is line 1; the copy is line 8
    assert len(bars) == 20 and bars.close[5, 0] == pytest.approx(rows[5][4])


def test_unsorted_rows_are_sorted(tmp_path):
    rows = hourly(20)
    bars, report = load(write(tmp_path / "X.csv", rows[::-1]))
    (d,) = defects(report, "unsorted_rows")
    assert "newest first" in d["detail"]
    assert np.all(np.diff(bars.timestamps.astype(np.int64)) > 0)
    assert bars.close[0, 0] == pytest.approx(rows[0][4])


def test_short_gap_is_filled_and_flagged(tmp_path):
    rows = hourly(30)
    del rows[10:13]
    bars, report = load(write(tmp_path / "X.csv", rows))
    (d,) = defects(report, "gap")
    assert "3 missing bars" in d["detail"] and d["rows"] == [12]
    assert len(bars) == 30 and bars.filled[:, 0].sum() == 3 and bars.filled[10:13, 0].all()
    assert np.all(bars.close[10:13, 0] == rows[9][4]) and np.all(bars.volume[10:13, 0] == 0)


def test_long_gap_splits_and_keeps_longest_segment(tmp_path):
    rows = hourly(100)
    del rows[20:40]  # 20 missing bars > max_fill_bars=5
    bars, report = load(write(tmp_path / "X.csv", rows), max_fill_bars=5)
    assert defects(report, "long_gap_segment_dropped")
    assert len(bars) == 60 and str(bars.timestamps[0]).startswith("2024-01-02T16")


@pytest.mark.parametrize("bad", ["NULL", "", "nan", "inf"])
def test_missing_and_nonfinite_values_become_flagged_gaps(tmp_path, bad):
    rows = hourly(20)
    rows[7][2] = bad
    bars, report = load(write(tmp_path / "X.csv", rows))
    (d,) = defects(report, "missing_or_nonfinite")
    assert d["rows"] == [9]
    assert bars.filled[7, 0] and np.isfinite(bars.high).all()


def test_text_in_a_number_column_is_reported(tmp_path):
    rows = hourly(20)
    rows[15][5] = "lots"
    bars, report = load(write(tmp_path / "X.csv", rows))
    assert defects(report, "non_numeric_value")[0]["rows"] == [17]
    assert bars.filled[15, 0]


def test_non_positive_price_and_negative_volume(tmp_path):
    rows = hourly(20)
    rows[3][4] = -1.0
    rows[12][5] = -5.0
    bars, report = load(write(tmp_path / "X.csv", rows))
    assert defects(report, "non_positive_price")[0]["rows"] == [5]
    assert defects(report, "negative_volume")[0]["rows"] == [14]
    assert bars.filled[3, 0] and bars.filled[12, 0] and (bars.close > 0).all()


def test_ohlc_inconsistency_is_repaired(tmp_path):
    rows = hourly(20)
    rows[4][2] = rows[4][1] * 0.99  # high below open
    bars, report = load(write(tmp_path / "X.csv", rows))
    assert defects(report, "ohlc_inconsistent")[0]["rows"] == [6]
    assert (bars.high >= np.maximum(bars.open, bars.close)).all()
    assert (bars.low <= np.minimum(bars.open, bars.close)).all()


def test_outlier_open_is_repaired_but_a_real_jump_is_kept(tmp_path):
    rows = hourly(200)
    rows[50][1] = rows[50][1] * 3  # a bad print: the open alone jumps, the close does not
    rows[50][2] = rows[50][1]
    # a real move: the close jumps 8 % and the next bar opens there
    for r in rows[120:]:
        r[1:5] = [x * 1.08 for x in r[1:5]]
    rows[119][4] = rows[120][1]
    rows[119][2] = max(rows[119][2], rows[119][4])
    bars, report = load(write(tmp_path / "X.csv", rows))
    (d,) = defects(report, "outlier_price")
    assert d["rows"] == [52]
    assert bars.open[50, 0] == pytest.approx(rows[49][4], rel=0.01)
    assert bars.close[119, 0] == pytest.approx(rows[119][4])


def test_stale_outage_bars_become_flagged_gaps(tmp_path):
    rows = hourly(40)
    for r in rows[20:25]:
        c = rows[19][4]
        r[1:6] = [c, c, c, c, 0.0]
    bars, report = load(write(tmp_path / "X.csv", rows))
    assert defects(report, "stale_bars")[0]["count"] == 5
    assert bars.filled[20:25, 0].all() and bars.filled.sum() == 5


def test_unparseable_timestamp_row_dropped(tmp_path):
    rows = hourly(20)
    rows[6][0] = "not a date"
    bars, report = load(write(tmp_path / "X.csv", rows))
    (d,) = defects(report, "unparseable_timestamp")
    assert d["rows"] == [8] and "not a date" in d["detail"]
    assert bars.filled[6, 0]


def test_missing_required_column_names_file_and_fix(tmp_path):
    path = tmp_path / "X.csv"
    path.write_text("timestamp,open,high,low,close\n2024-01-01,1,1,1,1\n")
    with pytest.raises(DataError, match=r"X\.csv: missing required column 'volume'.*columns\."):
        FileSource(str(path), report_path=None).generate()


def test_empty_file_is_refused(tmp_path):
    for text in ("", HEADER):
        path = tmp_path / "E.csv"
        path.write_text(text)
        with pytest.raises(DataError, match=r"E\.csv: (the file is empty|no data rows)"):
            FileSource(str(path), report_path=None).generate()


def test_strict_mode_refuses_first_defect_with_file_and_row(tmp_path):
    rows = hourly(20)
    rows[7][4] = "NULL"
    path = write(tmp_path / "S.csv", rows)
    with pytest.raises(DataError, match=r"S\.csv: row 9: missing_or_nonfinite.*mode=repair"):
        load(path, mode="strict")
    write(tmp_path / "ok.csv", hourly(20))
    bars, report = load(tmp_path / "ok.csv", mode="strict")
    assert len(bars) == 20 and report["mode"] == "strict"


def test_bad_cleaning_option_names_key(tmp_path):
    path = write(tmp_path / "X.csv", hourly(5))
    with pytest.raises(DataError, match="data.cleaning.mode"):
        load(path, mode="fix")


# ------------------------------------------------------------------- the real dirty dump
DUMP = Path(__file__).parent / "files" / "Binance_BTCUSDT_1h.csv"


def test_dirty_binance_dump_loads_and_reports_its_defects(tmp_path):
    bars, report = load(DUMP, report_dir=tmp_path)  # not beside the shipped file
    rules = {d["rule"]: d for d in report["defects"]}
    # the defects the dump is known for
    assert "28584 in s, 7478 in ms" in rules["mixed_epoch_units"]["detail"]
    assert "newest first" in rules["unsorted_rows"]["detail"]
    assert rules["duplicate_timestamp"]["count"] == 2649
    assert rules["outlier_price"]["rows"] == [36063]  # the 2017-08-17 04:00 open of 16199.91
    assert "level_shift" not in rules  # the 2018-10-15 rally is a real move, kept as it is
    assert rules["stale_bars"]["count"] > 30  # the 2018-02-08 outage written as flat bars
    assert "gap" in rules
    (info,) = report["files"]
    assert info["columns"]["timestamp"] == "unix" and info["columns"]["volume"] == "Volume BTC"
    assert {"tradecount", "Volume USDT"} <= set(info["ignored_columns"])
    assert bars.assets == ("BTCUSDT",)
    assert np.isfinite(bars.close).all() and (bars.low > 0).all()
    assert (bars.high >= np.maximum(bars.open, bars.close)).all()
    assert np.all(np.diff(bars.timestamps.astype(np.int64)) == 3600 * 10**9)
    assert report["summary"]["calendar"]["calendar"] == "24x7" and bars.calendar == "24x7"
