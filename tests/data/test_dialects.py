"""CSV dialects in detail: how the decimal mark is proven, numbers that do not fit it, gzip by
name and by content, and files that are not what their name says."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from adan.data import DataError, FileSource
from adan.data.dialect import parse_numbers, sniff_decimal, sniff_layout
from adan.data.sources import asset_from_path
from tests.reliability.test_data_files import HEADER, hourly


def read(path, **kw):
    src = FileSource(str(path), report_path=str(path.parent / "report.json"), **kw)
    bars = src.generate()
    return bars, json.loads((path.parent / "report.json").read_text())


def sniff(rows: list[str], delimiter: str = ";", forced=None):
    lines = [delimiter.join(HEADER), *rows]
    return sniff_decimal("X.csv", lines, 1, delimiter, [1, 2, 3, 4, 5], forced)


def row(*numbers: str, delimiter: str = ";") -> str:
    return delimiter.join(["2024-01-01 00:00", *numbers])


@pytest.mark.parametrize(
    "numbers, expected",
    [
        (["151.234", "151.3", "151.1", "151.2", "7"], (".", None)),  # JPY: 3 decimals, a point
        (["1.234.567", "1", "1", "1", "1"], (",", ".")),  # repeated dots group thousands
        (["1,234,567", "1", "1", "1", "1"], (".", ",")),
        (["0,125", "0,126", "0,124", "0,125", "5"], (",", None)),  # 0,125 is no thousands
        (["1234,5", "1.234,50", "1", "1", "1"], (",", ".")),
        (["12", "13", "11", "12", "5"], (".", None)),  # integers: nothing to prove
    ],
)
def test_decimal_mark_is_proven_by_numbers_that_read_one_way_only(numbers, expected):
    assert sniff([row(*numbers)]) == expected


def test_contradicting_marks_and_ambiguous_commas_ask_for_data_decimal():
    with pytest.raises(DataError, match=r"X\.csv: .*decimal point \(line 2: '12\.5'\).*line 3"):
        sniff([row("12.5", "1", "1", "1", "1"), row("12,5", "1", "1", "1", "1")])
    with pytest.raises(DataError, match=r"cannot tell.*'1,500' \(line 2\)"):
        sniff([row("1,500", "1", "1", "1", "1")])
    assert sniff([row("1,500", "1", "1", "1", "1")], forced=",") == (",", None)


def test_sniff_layout_prefers_the_delimiter_that_splits_the_header():
    lines = ["timestamp;open;close", "2024-01-01;1,5;2,5", "2024-01-02;1,6;2,6"]
    assert sniff_layout(lines) == (";", 0)
    quoted = ["ts,open,close", 'a,"1,234.5","1,235.0"', 'b,"1,236.5",7']
    assert sniff_layout(quoted) == (",", 0)


def test_parse_numbers_refuses_what_does_not_fit_the_mark():
    col = pa.array(["1.234,5", "12,5", "1.5", "1,5e3", "inf", None, "abc", " 7 "])
    values, text = parse_numbers(col, ",")
    np.testing.assert_array_equal(values[[0, 1, 3, 4, 7]], [1234.5, 12.5, 1500.0, np.inf, 7.0])
    assert list(text) == [2, 6]  # '1.5' is not a decimal-comma number: never read as 15
    values, text = parse_numbers(pa.array(["1,234.5", "1,23", "-0.5"]), ".")
    assert values[0] == 1234.5 and values[2] == -0.5 and list(text) == [1]


def test_a_bad_number_in_a_decimal_comma_file_is_reported_with_its_line(tmp_path):
    df = hourly(30)
    lines = [";".join(HEADER)]
    for _, r in df.iterrows():
        lines.append(
            ";".join([r.timestamp, *(f"{r[k]:.2f}".replace(".", ",") for k in HEADER[1:])])
        )
    lines[8] = lines[8].replace(lines[8].split(";")[4], "1.5")  # the close of line 9
    (tmp_path / "X.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"decimal point \(line 9: '1\.5'\)"):
        read(tmp_path / "X.csv")  # sniffing sees both marks
    bars, report = read(tmp_path / "X.csv", decimal="comma")
    (bad,) = [d for d in report["defects"] if d["rule"] == "non_numeric_value"]
    assert bad["rows"] == [9] and bars.filled[7, 0]


def test_quoted_thousands_after_the_sniffed_head_are_read(tmp_path):
    df = hourly(3000, price=800.0)
    ramp = np.linspace(1.0, 1.5, len(df))  # crosses 1000 near bar 1500, past the sniffed head
    for k in ("open", "high", "low", "close"):
        df[k] *= ramp
    body = io.StringIO()
    body.write(",".join(HEADER) + "\n")
    for _, r in df.iterrows():  # plain at first; quoted thousands beyond the first 64 KiB
        cells = [f'"{r[k]:,.2f}"' if r[k] >= 1000 else f"{r[k]:.2f}" for k in HEADER[1:]]
        body.write(",".join([r.timestamp, *cells]) + "\n")
    (tmp_path / "X.csv").write_text(body.getvalue())
    bars, report = read(tmp_path / "X.csv")
    assert "non_numeric_value" not in {d["rule"] for d in report["defects"]}
    np.testing.assert_allclose(bars.close[:, 0], df.close, atol=0.006)


# ------------------------------------------------------------------ gzip
@pytest.mark.parametrize("name", ["A.csv.gz", "A.txt.gz", "A.gz", "A.csv"])
def test_gzip_is_read_by_content_under_any_name(tmp_path, name):
    df = hourly(40)
    (tmp_path / name).write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    bars, report = read(tmp_path / name)
    assert bars.assets == ("A",) and len(bars) == 40
    assert report["files"][0]["dialect"]["compression"] == "gzip"


def test_a_plain_file_named_gz_is_read_as_text(tmp_path):
    hourly(20).to_csv(tmp_path / "A.csv.gz", index=False, compression=None)
    bars, report = read(tmp_path / "A.csv.gz")
    assert len(bars) == 20 and report["files"][0]["dialect"]["compression"] is None


def test_truncated_gzip_and_gzipped_binary_are_refused(tmp_path):
    whole = gzip.compress(hourly(2000).to_csv(index=False).encode())
    (tmp_path / "T.csv").write_bytes(whole[: len(whole) // 3])
    with pytest.raises(DataError, match=r"T\.csv: .*gzip data may be truncated"):
        read(tmp_path / "T.csv")
    (tmp_path / "P.csv.gz").write_bytes(gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(300)))
    with pytest.raises(DataError, match=r"P\.csv\.gz: not a text/CSV file: after gzip.*PNG"):
        read(tmp_path / "P.csv.gz")


def test_asset_names_drop_compressed_extensions():
    from pathlib import Path

    assert [asset_from_path(Path(n)) for n in ("a.csv.gz", "b.txt.gz", "c.gz", "d.tsv")] == [
        "a",
        "b",
        "c",
        "d",
    ]


# ------------------------------------------------------------------ not what the name says
def test_utf16_text_gets_the_encoding_to_set_and_reads_with_it(tmp_path):
    path = tmp_path / "W.csv"
    path.write_bytes(hourly(20).to_csv(index=False).encode("utf-16"))
    with pytest.raises(DataError, match=r"W\.csv: UTF-16 text.*data\.encoding=utf-16"):
        read(path)
    bars, _ = read(path, encoding="utf-16")
    assert len(bars) == 20


def test_latin1_text_still_gets_the_latin1_advice(tmp_path):
    path = tmp_path / "L.csv"
    body = "timestamp,open,high,low,close,volume,Börse\n"
    body += "".join(",".join(map(str, r)) + ",Zürich\n" for r in hourly(5).itertuples(index=False))
    path.write_bytes(body.encode("latin-1"))
    with pytest.raises(DataError, match=r"not utf8 text.*data\.encoding=latin-1"):
        read(path)


def test_text_named_parquet_is_refused_as_not_parquet(tmp_path):
    hourly(10).to_csv(tmp_path / "X.parquet", index=False)
    with pytest.raises(DataError, match=r"X\.parquet: not a Parquet file: it looks like text.*"):
        read(tmp_path / "X.parquet")


def test_bad_decimal_setting_names_the_key(tmp_path):
    hourly(10).to_csv(tmp_path / "X.csv", index=False)
    with pytest.raises(DataError, match="data.decimal must be auto, point or comma"):
        FileSource(str(tmp_path / "X.csv"), decimal="dot")
    with pytest.raises(DataError, match="data.calendar must be one of"):
        FileSource(str(tmp_path / "X.csv"), calendar="crypto")


def test_config_refuses_bad_decimal_calendar_and_level_shift_keys():
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from adan.errors import ConfigError
    from adan.tasks.registry import register_configs, validate_config

    register_configs()
    conf = str(Path(__file__).resolve().parents[2] / "conf")
    with initialize_config_dir(conf, version_base="1.3"):

        def cfg(*extra):
            base = ["paths.output_dir=/tmp/adan-run", "data=csv", "data.path=x.csv"]
            return compose("train", overrides=[*base, *extra])

        validate_config(cfg("data.decimal=comma", "data.calendar=fx"))
        for override, key in (
            ("data.decimal=dot", "data.decimal"),
            ("data.calendar=weekdays", "data.calendar"),
        ):
            with pytest.raises(ConfigError, match=key):
                validate_config(cfg(override))
        with pytest.raises(DataError, match="data.cleaning.level_shift_factor"):
            validate_config(cfg("data.cleaning.level_shift_factor=1.0"))
        assert cfg().data.calendar == "auto" and cfg().data.decimal == "auto"


def test_decimal_comma_epochs_and_dates_stay_times(tmp_path):
    df = hourly(30)
    epochs = pd.to_datetime(df.timestamp).values.astype("datetime64[s]").astype(np.int64)
    lines = [";".join(HEADER)]
    for e, (_, r) in zip(epochs, df.iterrows(), strict=True):
        lines.append(";".join([str(e), *(f"{r[k]:.3f}".replace(".", ",") for k in HEADER[1:])]))
    (tmp_path / "E.csv").write_text("\n".join(lines) + "\n")
    bars, report = read(tmp_path / "E.csv")
    assert report["defects"] == [] and bars.timestamps[0] == np.datetime64("2024-01-01")
    np.testing.assert_allclose(bars.open[:, 0], df.open, atol=0.0006)
