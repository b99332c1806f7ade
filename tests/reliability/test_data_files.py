"""Crafted files that real users bring: European number formats, gzip under a .csv name,
binary files under a .csv name, a 10x redenomination, and markets that close (FX weekends,
equity nights). Each is generated in ``tmp_path`` and read through ``FileSource`` /
``FileMarket`` as a run would read it."""

from __future__ import annotations

import gzip
import io
import json
import logging
import zipfile

import numpy as np
import pandas as pd
import pytest

from adan.data import DataError, FileMarket, FileSource
from adan.data.features import DEFAULT_FEATURES

HEADER = ["timestamp", "open", "high", "low", "close", "volume"]


def walk(stamps: pd.DatetimeIndex, price: float = 1234.5, seed: int = 0) -> pd.DataFrame:
    """OHLCV bars of a gentle random walk at ``stamps``."""
    rng = np.random.default_rng(seed)
    n = len(stamps)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    opens = np.concatenate([[price], close[:-1]])
    return pd.DataFrame(
        {
            "timestamp": stamps.strftime("%Y-%m-%d %H:%M"),
            "open": opens,
            "high": np.maximum(opens, close) * 1.001,
            "low": np.minimum(opens, close) * 0.999,
            "close": close,
            "volume": rng.uniform(1000, 5000, n),
        }
    )


def hourly(n: int, start: str = "2024-01-01", **kw) -> pd.DataFrame:
    return walk(pd.date_range(start, periods=n, freq="h"), **kw)


def read(path, **kw):
    """(bars, report dict) of one file read as a run reads it."""
    src = FileSource(str(path), report_path=str(path.parent / "report.json"), **kw)
    bars = src.generate()
    return bars, json.loads((path.parent / "report.json").read_text())


def rules(report: dict) -> dict[str, dict]:
    return {d["rule"]: d for d in report["defects"]}


# ------------------------------------------------------------------ 1. CSV dialects
def european(x: float) -> str:
    """1234.5 -> '1.234,50' (thousands dots, decimal comma), as German exports write."""
    return f"{x:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def test_decimal_comma_file_with_thousands_dots_reads_the_right_numbers(tmp_path):
    df = hourly(60)
    lines = [";".join(HEADER)]
    for i, r in df.iterrows():  # alternate '1234,56' and '1.234,56'
        fmt = european if i % 2 else (lambda x: f"{x:.2f}".replace(".", ","))
        lines.append(";".join([r.timestamp, *(fmt(r[k]) for k in HEADER[1:])]))
    path = tmp_path / "DAX.csv"
    path.write_text("\n".join(lines) + "\n")
    bars, report = read(path)
    assert report["defects"] == []
    np.testing.assert_allclose(bars.close[:, 0], df.close, atol=0.006)
    np.testing.assert_allclose(bars.volume[:, 0], df.volume, atol=0.006)
    dialect = report["files"][0]["dialect"]
    assert dialect["delimiter"] == ";" and dialect["decimal"] == ","
    assert dialect["thousands"] == "."


def test_quoted_thousands_in_a_comma_file_read_the_right_numbers(tmp_path):
    df = hourly(60)
    path = tmp_path / "US.csv"
    body = ",".join(HEADER) + "\n"
    for _, r in df.iterrows():
        body += r.timestamp + "," + ",".join(f'"{r[k]:,.2f}"' for k in HEADER[1:]) + "\n"
    path.write_text(body)
    bars, report = read(path)
    assert report["defects"] == []
    np.testing.assert_allclose(bars.close[:, 0], df.close, atol=0.006)
    dialect = report["files"][0]["dialect"]
    assert dialect["delimiter"] == "," and dialect["decimal"] == "."
    assert dialect["thousands"] == ","


def test_data_decimal_decides_what_sniffing_cannot(tmp_path):
    path = tmp_path / "AMB.csv"  # every number is n,nnn: 1234 or 1.234?
    rows = [
        f"2024-01-01 {h:02d}:00;1,{200 + h:03d};1,{210 + h:03d};1,{190 + h:03d};1,{201 + h:03d};5"
        for h in range(24)
    ]
    path.write_text(";".join(HEADER) + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(
        DataError, match=r"AMB\.csv: cannot tell.*'1,200' \(line 2\).*data\.decimal=comma"
    ):
        read(path)
    comma, report = read(path, decimal="comma")
    assert comma.close[0, 0] == pytest.approx(1.201)
    assert report["files"][0]["dialect"]["decimal"] == ","
    point, _ = read(path, decimal="point")
    assert point.close[0, 0] == pytest.approx(1201.0)
    with pytest.raises(DataError, match="data.decimal"):
        FileSource(str(path), decimal="dot", report_path=None)


# ------------------------------------------------------------------ 2. gzip
def test_gzip_named_csv_is_read_and_reported_as_gzip(tmp_path, caplog):
    df = hourly(50)
    path = tmp_path / "G.csv"
    path.write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    with caplog.at_level(logging.INFO):
        bars, report = read(path)
    np.testing.assert_allclose(bars.close[:, 0], df.close)
    assert report["defects"] == []
    assert report["files"][0]["dialect"]["compression"] == "gzip"
    assert "G.csv" in caplog.text and "gzip" in caplog.text


# ------------------------------------------------------------------ 3. binary files
def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data.csv", hourly(5).to_csv(index=False))
    return buf.getvalue()


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    hourly(5).to_parquet(buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    "content, looks_like",
    [
        (np.random.default_rng(0).bytes(4096), "binary"),
        (b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).bytes(500), "PNG"),
        (_zip_bytes(), "zip"),
        (_parquet_bytes(), "Parquet"),
    ],
    ids=["random", "png", "zip", "parquet"],
)
def test_binary_file_named_csv_is_refused_as_not_text(tmp_path, content, looks_like):
    path = tmp_path / "B.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        FileSource(str(path), report_path=None).generate()
    message = str(err.value)
    assert "B.csv" in message and "not a text/CSV file" in message and looks_like in message
    assert "latin-1" not in message and "encoding" not in message


# ------------------------------------------------------------------ 4. level shifts
def redenominated(tmp_path, n: int = 300, at: int = 200, factor: float = 10.0):
    df = hourly(n, price=100.0)
    for k in ("open", "high", "low", "close"):
        df.loc[at:, k] = df.loc[at:, k] / factor
    path = tmp_path / "R.csv"
    df.to_csv(path, index=False)
    return path, df


def test_redenomination_is_a_level_shift_split_not_repaired_with_invented_prices(tmp_path):
    path, df = redenominated(tmp_path)
    bars, report = read(path)
    found = rules(report)
    assert "outlier_price" not in found  # no invented prices around the shift
    shift = found["level_shift"]
    assert shift["rows"] == [202]  # the first bar at the new level (file line 202)
    assert "10" in shift["detail"]
    # the history is split at the shift: the longer stretch, before it, is kept
    assert len(bars) == 200 and bars.timestamps[-1] == np.datetime64("2024-01-09T07:00")
    np.testing.assert_allclose(bars.close[:, 0], df.close[:200])
    assert np.abs(np.diff(np.log(bars.close[:, 0]))).max() < 0.05  # no fake -90 % bar


def test_redenomination_is_refused_in_strict_mode_with_its_row(tmp_path):
    path, _ = redenominated(tmp_path)
    with pytest.raises(DataError, match=r"R\.csv: row 202: level_shift.*10"):
        read(path, cleaning={"mode": "strict"})


# ------------------------------------------------------------------ 5. calendars
def fx_stamps(weeks: int = 6) -> pd.DatetimeIndex:
    """Hourly FX bars: Sunday 22:00 to Friday 21:00 UTC (winter), no weekend bars."""
    every = pd.date_range("2024-01-07 22:00", periods=weeks * 168, freq="h")
    weekday, hour = every.day_of_week, every.hour  # Monday = 0
    closed = ((weekday == 4) & (hour >= 22)) | (weekday == 5) | ((weekday == 6) & (hour < 22))
    return every[~closed]


def equity_stamps(weeks: int = 6) -> pd.DatetimeIndex:
    """Hourly bars of a 14:30-21:00 UTC session, Monday to Friday."""
    days = pd.bdate_range("2024-01-08", periods=weeks * 5)
    return pd.DatetimeIndex(
        [
            d + pd.Timedelta(hours=14, minutes=30) + pd.Timedelta(hours=h)
            for d in days
            for h in range(7)
        ]
    )


def test_fx_weekends_are_closures_not_gaps(tmp_path):
    df = walk(fx_stamps())
    df.to_csv(tmp_path / "EURUSD.csv", index=False)
    bars, report = read(tmp_path / "EURUSD.csv", cleaning={"mode": "strict"})
    assert report["defects"] == []
    assert len(bars) == len(df) and not bars.filled.any()  # nothing filled, nothing split
    cal = report["summary"]["calendar"]
    assert cal["calendar"] == "fx" and cal["assets"]["EURUSD"]["closures"] == 5


def test_a_real_gap_in_fx_trading_hours_is_still_a_gap(tmp_path):
    df = walk(fx_stamps()).drop(index=[100, 101, 102])  # a Wednesday morning
    df.to_csv(tmp_path / "EURUSD.csv", index=False)
    bars, report = read(tmp_path / "EURUSD.csv")
    (gap,) = [d for d in report["defects"] if d["rule"] == "gap"]
    assert "3 missing bars in 1 gap" in gap["detail"] and bars.filled.sum() == 3


def test_equity_nights_and_weekends_are_closures_not_gaps(tmp_path):
    df = walk(equity_stamps())
    df = df.drop(index=range(7 * 10, 7 * 11))  # a holiday: no session on the 11th day
    df = df.drop(index=[7 * 20 + 3])  # a bar missing inside a session: a real gap
    df.to_csv(tmp_path / "SPY.csv", index=False)
    bars, report = read(tmp_path / "SPY.csv")
    (gap,) = [d for d in report["defects"] if d["rule"] == "gap"]
    assert "1 missing bars in 1 gap" in gap["detail"]
    assert len(bars) == len(df) + 1 and bars.filled.sum() == 1
    cal = report["summary"]["calendar"]
    assert cal["calendar"] == "equity" and cal["assets"]["SPY"]["closures"] == 6 * 5 - 2


def test_fx_market_meta_carries_its_calendar_and_bars_per_year(tmp_path):
    walk(fx_stamps(weeks=8)).to_csv(tmp_path / "EURUSD.csv", index=False)
    market = FileMarket(
        path=str(tmp_path / "EURUSD.csv"),
        features=DEFAULT_FEATURES,
        report_path=None,
        split={"train": 0.6, "val": 0.2, "test": 0.2},
    )
    for split in market.build().values():
        assert split.meta["calendar"] == "fx" and split.meta["bar_interval"] == "1h"
        assert split.meta["bar_seconds"] == 3600 and split.meta["bars_per_year"] == 260 * 24


def test_a_european_fx_file_through_the_run_config(tmp_path):
    """What ``python train.py data=csv data.path=<file>`` builds, in-process: the config keys
    compose and validate, and the market reads the dialect and the calendar."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from adan.tasks.registry import register_configs, validate_config

    df = walk(fx_stamps(weeks=8), price=1.0850)
    lines = [";".join(HEADER)]
    for _, r in df.iterrows():
        lines.append(
            ";".join([r.timestamp, *(f"{r[k]:.5f}".replace(".", ",") for k in HEADER[1:])])
        )
    path = tmp_path / "EURUSD.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    register_configs()
    conf = str(Path(__file__).resolve().parents[2] / "conf")
    with initialize_config_dir(conf, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.output_dir={tmp_path}",
                "data=csv",
                f"data.path={path}",
                "data.cache_dir=null",
                "data.cleaning.mode=strict",
            ],
        )
    validate_config(cfg)
    out = instantiate(cfg.data).build()
    report = json.loads((tmp_path / "cleaning_report.json").read_text())
    assert report["defects"] == [] and report["files"][0]["dialect"]["decimal"] == ","
    by_time = df.set_index(pd.to_datetime(df.timestamp).values.astype("datetime64[ns]")).close
    train = out["train"]
    np.testing.assert_allclose(train.close[:, 0], by_time[train.timestamps], atol=6e-6)
    assert out["train"].meta["calendar"] == "fx" and out["train"].meta["bars_per_year"] == 6240
