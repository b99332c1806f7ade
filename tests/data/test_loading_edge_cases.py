"""Files as they come from the wild: other dialects, odd timestamp layouts, misaligned clocks.

Each case either loads correctly or is refused with the file, the row and what to do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adan.data import CleaningPolicy, DataError, FileSource, MarketPipeline, SyntheticMarket
from adan.data.features import DEFAULT_FEATURES
from adan.data.timestamps import NAT, parse_timestamps
from tests.data.test_cleaning import HEADER, hourly, load, write


def text(path, body: str, encoding: str = "utf8"):
    path.write_bytes(body.encode(encoding))
    return path


def csv_lines(rows: list[list], sep: str = ",") -> str:
    return "".join(sep.join(str(x) for x in r) + "\n" for r in rows)


def test_assets_on_different_bar_offsets_are_refused(tmp_path):
    write(tmp_path / "A.csv", hourly(30))
    write(tmp_path / "B.csv", hourly(30, start="2024-01-01 00:30"))
    with pytest.raises(DataError, match=r"A\.csv: row 2: bar at 2024-01-01 00:00:00 is not on"):
        FileSource(str(tmp_path / "*.csv"), report_path=None).generate()


def test_files_of_one_asset_with_other_bar_lengths_are_refused(tmp_path):
    write(tmp_path / "y1.csv", hourly(30))
    quarter = hourly(40, start="2024-01-03 00:00")
    for i, r in enumerate(quarter):
        r[0] = str(pd.Timestamp("2024-01-03") + pd.Timedelta(minutes=15 * i))
    write(tmp_path / "y2.csv", quarter)
    src = FileSource(
        [str(tmp_path / "y1.csv"), str(tmp_path / "y2.csv")], assets=["X", "X"], report_path=None
    )
    with pytest.raises(DataError, match=r"y2\.csv: bars of 0 days 00:15:00"):
        src.generate()


def test_day_first_dates_are_never_guessed_row_by_row(tmp_path):
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    rows = [[d.strftime("%d/%m/%Y"), 1, 1.1, 0.9, 1, 5] for d in days]
    path = write(tmp_path / "D.csv", rows)
    with pytest.raises(DataError, match="look day-first.*dayfirst=true"):
        load(path)
    bars, _ = load(path, dayfirst=True)
    assert len(bars) == 40 and bars.timestamps[1] == np.datetime64("2024-01-02")


def test_date_and_time_columns_are_joined(tmp_path):
    stamps = pd.date_range("2024-01-01", periods=30, freq="h")
    rows = [[t.strftime("%Y.%m.%d"), t.strftime("%H:%M"), 1, 1.1, 0.9, 1, 5] for t in stamps]
    path = write(tmp_path / "MT.csv", rows, header="Date,Time,Open,High,Low,Close,Volume\n")
    bars, report = load(path)
    assert len(bars) == 30 and report["defects"] == []
    assert bars.timestamps[-1] == np.datetime64("2024-01-02T05:00")


def test_a_time_without_a_date_is_not_today():
    p = parse_timestamps(np.array(["00:00", "2024-01-01 01:00"], dtype=object))
    assert p.ns[0] == NAT and p.ns[1] == pd.Timestamp("2024-01-01 01:00").value


def test_yyyymmdd_integers_are_dates():
    p = parse_timestamps(np.array([20240101, 20240102, 20240103]))
    assert list(p.ns) == [pd.Timestamp(f"2024-01-0{d}").value for d in (1, 2, 3)]


def test_one_bad_value_in_an_epoch_column_spoils_only_its_row():
    p = parse_timestamps(np.array(["1704067200000", "1704070800000", "garbage"], dtype=object))
    assert p.ns[0] == pd.Timestamp("2024-01-01").value and list(p.bad) == [2]


def test_integer_epochs_stay_exact():
    ns = 1_704_067_200_000_000_123  # 123 ns past the hour: float64 would lose it
    assert parse_timestamps(np.array([ns])).ns[0] == ns


def test_gap_at_the_common_start_is_filled_from_the_bar_before(tmp_path):
    rows = hourly(30)
    del rows[10]  # A lacks 10:00 exactly where B starts
    write(tmp_path / "A.csv", rows)
    write(tmp_path / "B.csv", hourly(20, start="2024-01-01 10:00", price=2.0))
    bars, _ = load(tmp_path / "*.csv")
    assert bars.filled[0, 0] and bars.close[0, 0] == pytest.approx(rows[9][4])
    assert np.isfinite(bars.close).all()


def test_cache_key_follows_the_file_names(tmp_path):
    write(tmp_path / "BTC.csv", hourly(300))
    cache = tmp_path / "cache"

    def build(name):
        src = FileSource(str(tmp_path / name), report_path=None)
        return MarketPipeline(src, DEFAULT_FEATURES, cache_dir=str(cache)).build()

    assert build("BTC.csv")["train"].assets == ("BTC",)
    (tmp_path / "ETH.csv").write_bytes((tmp_path / "BTC.csv").read_bytes())
    assert build("ETH.csv")["train"].assets == ("ETH",)


def test_symbols_that_collapse_to_one_name_are_refused(tmp_path):
    a = pd.DataFrame(hourly(20), columns=["timestamp", "open", "high", "low", "close", "volume"])
    long = pd.concat([a.assign(symbol="BTC/USDT"), a.assign(symbol="BTC-USDT")])
    long.to_csv(tmp_path / "L.csv", index=False)
    with pytest.raises(DataError, match=r"symbols \['BTC-USDT', 'BTC/USDT'\].*'BTCUSDT'"):
        FileSource(str(tmp_path / "L.csv"), report_path=None).generate()


def test_row_numbers_count_blank_and_malformed_lines(tmp_path):
    rows = hourly(20)
    body = HEADER + csv_lines(rows[:3]) + "\n" + "1,2,3\n" + csv_lines(rows[3:8])
    body += ",".join(str(x) for x in [*rows[8][:4], "oops", rows[8][5]]) + "\n"
    body += csv_lines(rows[9:])
    bars, report = load(text(tmp_path / "X.csv", body))
    by_rule = {d["rule"]: d for d in report["defects"]}
    assert by_rule["empty_row"]["rows"] == [5]
    assert (
        by_rule["malformed_row"]["rows"] == [6] and "'1,2,3'" in by_rule["malformed_row"]["detail"]
    )
    assert by_rule["non_numeric_value"]["rows"] == [12]  # line 12 holds 'oops'
    assert len(bars) == 20 and bars.filled.sum() == 1


def test_keep_last_duplicate(tmp_path):
    rows = hourly(10)
    later = list(rows[4])
    later[4] = rows[4][4] * 1.01
    rows.insert(5, later)
    bars, _ = load(write(tmp_path / "X.csv", rows), keep_duplicate="last")
    assert bars.close[4, 0] == pytest.approx(later[4])


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_delimiters(tmp_path, sep):
    body = HEADER.replace(",", sep) + csv_lines(hourly(20), sep)
    bars, report = load(text(tmp_path / "X.txt", body))
    assert len(bars) == 20 and report["defects"] == []


def test_title_line_before_the_header_is_skipped(tmp_path):
    body = "https://www.example.com/data\n" + HEADER + csv_lines(hourly(20))
    rows = hourly(20)
    rows[3][4] = "NULL"
    body = "https://www.example.com/data\n" + HEADER + csv_lines(rows)
    bars, report = load(text(tmp_path / "X.csv", body))
    assert len(bars) == 20 and report["defects"][0]["rows"] == [6]  # line 6 of the file


def test_text_encoding_error_names_the_setting(tmp_path):
    body = "Zeitstempel,open,high,low,close,volume,Börse\n"
    body += "".join(",".join(str(x) for x in r) + ",Zürich\n" for r in hourly(20))
    path = text(tmp_path / "X.csv", body, encoding="latin-1")
    with pytest.raises(DataError, match="X.csv: not utf8 text.*data.encoding"):
        FileSource(str(path), report_path=None).generate()
    src = FileSource(
        str(path), encoding="latin-1", columns={"timestamp": "Zeitstempel"}, report_path=None
    )
    assert len(src.generate()) == 20


def test_no_usable_rows_says_what_was_wrong(tmp_path):
    rows = hourly(10)
    for r in rows:
        r[5] = "NULL"
    with pytest.raises(DataError, match=r"no usable rows for asset 'X': missing_or_nonfinite x10"):
        FileSource(str(write(tmp_path / "X.csv", rows)), report_path=None).generate()


@pytest.mark.parametrize(
    "setting, key",
    [
        ({"bar": "0h"}, "bar"),
        ({"bar": "banana"}, "bar"),
        ({"outlier_z": "x"}, "outlier_z"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"keep_duplicate": "middle"}, "keep_duplicate"),
        ({"stale_bars": -1}, "stale_bars"),
    ],
)
def test_bad_cleaning_settings_name_the_key(setting, key):
    with pytest.raises(DataError, match=f"data.cleaning.{key}"):
        CleaningPolicy(**setting)


def test_checkpoint_contract_checks_timeframes():
    src = SyntheticMarket(n_bars=2000, seed=4)
    tfs = [{"rule": "4h", "features": ["log_return"], "window": 4}]
    built = MarketPipeline(src, DEFAULT_FEATURES, timeframes=tfs).build()
    contract = {k: built["train"].meta[k] for k in ("scaler", "feature_names", "timeframes")}
    other = [{"rule": "2h", "features": ["log_return"], "window": 4}]
    with pytest.raises(ValueError, match="checkpoint's timeframes"):
        MarketPipeline(src, DEFAULT_FEATURES, timeframes=other).build(fitted=contract)
    with pytest.raises(ValueError, match="feature code version 0"):
        MarketPipeline(src, DEFAULT_FEATURES, timeframes=tfs).build(
            fitted=dict(contract, features_version=0)
        )
