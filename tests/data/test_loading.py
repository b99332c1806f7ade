"""Loading OHLCV files: formats, column aliases, timestamps, long files, alignment of assets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adan.data.loading import normalise_name, resolve_columns
from adan.data.report import DataError
from adan.data.sources import FileSource
from adan.data.timestamps import NAT, parse_timestamps
from tests.data.test_cleaning import hourly, load, write


def frame(n: int, start: str = "2024-01-01 00:00", price: float = 100.0) -> pd.DataFrame:
    return pd.DataFrame(
        hourly(n, start, price), columns=["timestamp", "open", "high", "low", "close", "volume"]
    )


def ns(s: str) -> int:
    return pd.Timestamp(s).value


def test_epochs_in_seconds_and_milliseconds_detected_per_row():
    p = parse_timestamps(np.array([1_700_000_000, 1_700_003_600_000, 1_700_007_200.0]))
    assert list(p.ns) == [
        ns("2023-11-14 22:13:20"),
        ns("2023-11-14 23:13:20"),
        ns("2023-11-15 00:13:20"),
    ]
    assert set(p.units) == {"s", "ms"}


def test_iso_strings_with_offsets_become_utc():
    p = parse_timestamps(np.array(["2024-01-01T02:00:00+02:00", "2024-01-01 01:00:00Z"], object))
    assert list(p.ns) == [ns("2024-01-01 00:00"), ns("2024-01-01 01:00")]


def test_naive_strings_read_in_configured_zone_and_dayfirst():
    p = parse_timestamps(
        np.array(["02/01/2024 10:00"], object), dayfirst=True, timezone="Europe/Paris"
    )
    assert list(p.ns) == [ns("2024-01-02 09:00")]
    p = parse_timestamps(np.array(["02/01/2024 10:00"], object))
    assert list(p.ns) == [ns("2024-02-01 10:00")]


def test_unparseable_strings_are_flagged_not_guessed():
    p = parse_timestamps(np.array(["2024-01-01 00:00", "yesterday-ish", None], object))
    assert p.ns[0] == ns("2024-01-01") and p.ns[1] == NAT and list(p.bad) == [1, 2]


def test_column_aliases_case_insensitive_and_base_volume():
    names = ["Date", "OPEN", "High", "low", "Close", "Volume BTC", "Volume USDT", "tradecount"]
    mapping, ignored = resolve_columns("f.csv", names)
    assert mapping["timestamp"] == "Date" and mapping["volume"] == "Volume BTC"
    assert ignored == ["Volume USDT", "tradecount"]
    assert normalise_name(" Volume-BTC ") == "volume_btc"


def test_column_mapping_override_and_error(tmp_path):
    df = frame(10).rename(columns={"timestamp": "when", "volume": "qty"})
    path = tmp_path / "X.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="missing required column 'timestamp'"):
        FileSource(str(path), report_path=None).generate()
    bars = FileSource(
        str(path), columns={"timestamp": "when", "volume": "qty"}, report_path=None
    ).generate()
    assert len(bars) == 10 and bars.volume[3, 0] == df.qty[3]
    with pytest.raises(DataError, match="columns.volume='nope' is not a column"):
        FileSource(str(path), columns={"volume": "nope"}, report_path=None).generate()


def test_parquet_with_timestamp_type_matches_csv(tmp_path):
    df = frame(48)
    df.to_csv(tmp_path / "A.csv", index=False)
    pq = df.assign(timestamp=pd.to_datetime(df.timestamp).dt.tz_localize("Asia/Tokyo"))
    pq.to_parquet(tmp_path / "A.parquet")
    a = FileSource(str(tmp_path / "A.csv"), report_path=None).generate()
    b = FileSource(str(tmp_path / "A.parquet"), report_path=None).generate()
    np.testing.assert_array_equal(a.close, b.close)
    # the Tokyo wall-clock times are 9 hours ahead of UTC
    assert b.timestamps[0] == a.timestamps[0] - np.timedelta64(9, "h")


def test_long_file_with_symbol_column_gives_one_asset_per_symbol(tmp_path):
    btc, eth = frame(30, price=100.0).assign(symbol="BTC/USDT"), frame(30, price=5.0)
    long = pd.concat([btc, eth.assign(symbol="ETH/USDT")]).sample(frac=1, random_state=0)
    long.to_csv(tmp_path / "long.csv", index=False)
    bars, report = load(tmp_path / "long.csv")
    assert bars.assets == ("BTCUSDT", "ETHUSDT")
    np.testing.assert_allclose(bars.close[:, 1], eth.close.to_numpy())
    assert report["defects"][0]["rule"] == "unsorted_rows"


def test_glob_of_files_aligned_from_the_last_listing(tmp_path):
    write(tmp_path / "AAA.csv", hourly(50))
    write(tmp_path / "BBB.csv", hourly(40, start="2024-01-01 10:00", price=2.0))
    bars, report = load(tmp_path / "*.csv")
    assert bars.assets == ("AAA", "BBB") and len(bars) == 40
    assert str(bars.timestamps[0]).startswith("2024-01-01T10")
    info = report["summary"]["alignment"]
    assert info["assets"]["AAA"]["bars_before_common_start"] == 10
    assert "different dates" in info["note"]


def test_gap_in_one_asset_is_filled_on_the_common_clock(tmp_path):
    write(tmp_path / "AAA.csv", hourly(30))
    rows = hourly(30, price=2.0)
    del rows[12]
    write(tmp_path / "BBB.csv", rows)
    bars, _ = load(tmp_path / "*.csv")
    assert len(bars) == 30
    assert bars.filled[:, 1].sum() == 1 and bars.filled[12, 1] and not bars.filled[:, 0].any()


def test_files_of_one_asset_are_joined(tmp_path):
    rows = hourly(40)
    write(tmp_path / "y1.csv", rows[:25])
    write(tmp_path / "y2.csv", rows[20:])  # 5 bars overlap
    src = FileSource(
        [str(tmp_path / "y1.csv"), str(tmp_path / "y2.csv")],
        assets=["BTC", "BTC"],
        report_path=str(tmp_path / "r.json"),
    )
    bars = src.generate()
    assert bars.assets == ("BTC",) and len(bars) == 40
    assert src.report.count("duplicate_timestamp") == 5


def test_missing_path_is_named(tmp_path):
    with pytest.raises(DataError, match="no file matches 'nowhere/\\*.csv'"):
        FileSource("nowhere/*.csv", report_path=None)


def test_gzipped_csv_reads(tmp_path):
    frame(20).to_csv(tmp_path / "Z.csv.gz", index=False)
    bars = FileSource(str(tmp_path / "Z.csv.gz"), report_path=None).generate()
    assert len(bars) == 20 and bars.assets == ("Z",)


def test_parallel_loading_matches_serial(tmp_path):
    for i, name in enumerate(("AAA", "BBB", "CCC")):
        write(tmp_path / f"{name}.csv", hourly(60, price=10.0 + i))
    one = FileSource(str(tmp_path / "*.csv"), report_path=None).generate()
    two = FileSource(str(tmp_path / "*.csv"), report_path=None, n_jobs=2).generate()
    np.testing.assert_array_equal(one.close, two.close)
    assert one.assets == two.assets
