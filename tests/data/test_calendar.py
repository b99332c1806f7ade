"""Market calendars: bars per year, inference from the data, closures versus gaps, and the clock
every ``MarketData`` carries in its meta (all splits, walk-forward folds, the cache)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from adan.data import DataError, FileMarket, FileSource, MarketPipeline, SyntheticMarket
from adan.data.calendar import (
    DAY,
    HOUR,
    bars_per_year,
    clock_meta,
    fit_calendar,
    interval_string,
    session_bars,
)
from adan.data.features import DEFAULT_FEATURES
from tests.reliability.test_data_files import equity_stamps, fx_stamps, walk


def ns(stamps) -> np.ndarray:
    return pd.DatetimeIndex(stamps).values.astype("datetime64[ns]").view(np.int64)


# ------------------------------------------------------------------ bars per year
@pytest.mark.parametrize(
    "bar, calendar, session, expected",
    [
        ("1h", "24x7", None, 8760),  # hourly crypto
        ("1d", "equity", None, 252),  # daily equity
        ("1h", "fx", None, 6240),  # hourly FX: 260 days x 24
        ("4h", "24x7", None, 2190),
        ("4h", "fx", None, 1560),
        ("15min", "24x7", None, 35040),
        ("15min", "equity", None, 252 * 26),  # a 6.5 h session makes 26 bars
        ("1h", "equity", None, 252 * 7),  # 9:30 .. 15:30: 7 hourly bars
        ("1h", "equity", 8.0, 252 * 8),  # the data's own session wins
        ("1d", "24x7", None, 365),
        ("1d", "fx", None, 260),
        ("7d", "equity", None, 365 / 7),  # weekly bars count weeks on any calendar
    ],
)
def test_bars_per_year(bar, calendar, session, expected):
    assert bars_per_year(bar, calendar, session) == pytest.approx(expected, rel=1e-12)


def test_bars_per_year_takes_seconds_and_timedeltas_and_refuses_nonsense():
    assert bars_per_year(3600) == bars_per_year(pd.Timedelta("1h")) == 8760.0
    with pytest.raises(ValueError, match="calendar"):
        bars_per_year("1h", "weekdays")
    with pytest.raises(ValueError, match="positive"):
        bars_per_year("0h")


@pytest.mark.parametrize(
    "bar, text", [("1h", "1h"), ("1d", "1d"), ("15min", "15min"), ("36h", "36h"), ("90s", "90s")]
)
def test_interval_string_is_a_pandas_alias(bar, text):
    assert interval_string(pd.Timedelta(bar).value) == text
    assert pd.Timedelta(text) == pd.Timedelta(bar)


# ------------------------------------------------------------------ inference
def test_hourly_crypto_is_24x7():
    cal = fit_calendar(ns(pd.date_range("2024-01-01", periods=2000, freq="h")), HOUR)
    assert cal.name == "24x7" and "weekends" in cal.reason


def test_hourly_fx_and_equity_are_told_apart():
    fx = fit_calendar(ns(fx_stamps()), HOUR)
    eq = fit_calendar(ns(equity_stamps()), HOUR)
    assert fx.name == "fx" and "around the clock" in fx.reason
    assert eq.name == "equity" and "session" in eq.reason and eq.bars_per_session == 7


def test_daily_bars_closed_at_weekends_are_equity_when_holidays_are_missing():
    days = pd.bdate_range("2022-01-03", "2023-12-29")
    holidays = days[::25]  # ~10 weekdays a year missing, as on an exchange
    eq = fit_calendar(ns(days.difference(holidays)), DAY)
    fx = fit_calendar(ns(days), DAY)
    assert eq.name == "equity" and "holidays" in eq.reason
    assert fx.name == "fx"


def test_too_few_weekends_cannot_tell_and_says_so():
    cal = fit_calendar(ns(fx_stamps(weeks=2)), HOUR)
    assert cal.name == "24x7" and cal.reason.startswith("cannot tell")
    mixed = pd.date_range("2024-01-01", periods=24 * 7 * 6, freq="h")
    mixed = mixed[~((mixed.day_of_week >= 5) & (mixed >= "2024-01-15"))]  # weekends at first only
    cal = fit_calendar(ns(mixed), HOUR)
    assert cal.name == "24x7" and "some weekends" in cal.reason


def test_forced_calendar_wins_over_inference():
    cal = fit_calendar(ns(fx_stamps(weeks=2)), HOUR, "fx")
    assert cal.name == "fx" and cal.reason == "set by data.calendar"
    closure, missing = cal.judge(ns(fx_stamps(weeks=2)))
    assert closure.sum() == 1 and missing.sum() == 0  # the one weekend inside the data
    with pytest.raises(DataError, match="data.calendar must be one of"):
        fit_calendar(ns(fx_stamps()), HOUR, "weekdays")


def test_session_bars_cut_the_day_in_the_night():
    # a session crossing midnight UTC (22:00 .. 04:00): one trading day, not two halves
    days = pd.bdate_range("2024-01-08", periods=20)
    stamps = [d + pd.Timedelta(hours=22 + h) for d in days for h in range(7)]
    assert session_bars(ns(stamps), HOUR) == 7


# ------------------------------------------------------------------ closures versus gaps
def test_fx_holiday_next_to_a_weekend_is_a_closure_but_a_long_outage_is_a_gap():
    stamps = fx_stamps()
    late = (stamps >= "2024-01-14 00:00") & (stamps < "2024-01-15 12:00")  # opens Monday noon
    cal = fit_calendar(ns(stamps), HOUR)
    closure, missing = cal.judge(ns(stamps[~late]))
    assert closure.sum() == 5 and missing.sum() == 0  # weekend + half a holiday: a closure
    long = (stamps >= "2024-01-14 00:00") & (stamps < "2024-01-17 00:00")  # to Wednesday
    closure, missing = cal.judge(ns(stamps[~long]))
    assert closure.sum() == 4 and missing.sum() == 2 + 48  # open hours count, the weekend not
    outage = (stamps >= "2024-01-23 00:00") & (stamps < "2024-01-25 00:00")  # Tue-Wed
    closure, missing = cal.judge(ns(stamps[~outage]))
    assert closure.sum() == 5 and missing.sum() == 48


def test_daily_equity_holidays_are_closures_but_a_missing_week_is_a_gap():
    days = pd.bdate_range("2022-01-03", "2023-12-29")
    holidays = days[::25]
    kept = days.difference(holidays[holidays.month != 6])
    cal = fit_calendar(ns(kept), DAY)
    closure, missing = cal.judge(ns(kept))
    assert missing.sum() == 0
    week = (kept >= "2023-06-05") & (kept <= "2023-06-09")
    _, missing = cal.judge(ns(kept[~week]))
    assert missing.sum() == 5


# ------------------------------------------------------------------ meta of every split
CLOCK = {"bar_interval": "1h", "bar_seconds": 3600, "calendar": "24x7", "bars_per_year": 8760}


def test_synthetic_splits_and_folds_carry_the_clock():
    pipe = MarketPipeline(SyntheticMarket(n_bars=3000, seed=5), DEFAULT_FEATURES)
    for split in pipe.build().values():
        assert {k: split.meta[k] for k in CLOCK} == CLOCK
    for fold in pipe.build_walk_forward(n_folds=2, val_bars=400, train_bars=1000):
        for split in fold.values():
            assert {k: split.meta[k] for k in CLOCK} == CLOCK
    assert clock_meta(SyntheticMarket(n_bars=100, freq="15min").generate().timestamps) == {
        "bar_interval": "15min",
        "bar_seconds": 900,
        "calendar": "24x7",
        "bars_per_year": 35040,
    }


def equity_market(tmp_path, **kw) -> FileMarket:
    walk(equity_stamps(weeks=12)).to_csv(tmp_path / "SPY.csv", index=False)
    return FileMarket(
        path=str(tmp_path / "SPY.csv"),
        features=DEFAULT_FEATURES,
        report_path=None,
        split={"train": 0.6, "val": 0.2, "test": 0.2},
        cleaning={"max_fill_bars": 80},  # forced 24x7 fills the weekends instead of splitting
        **kw,
    )


def test_equity_file_meta_and_the_cache_key_follows_the_calendar(tmp_path, caplog):
    cache = tmp_path / "cache"
    out = equity_market(tmp_path, cache_dir=str(cache)).build()
    for split in out.values():
        assert split.meta["calendar"] == "equity" and split.meta["bars_per_year"] == 252 * 7
    with caplog.at_level(logging.INFO):
        again = equity_market(tmp_path, cache_dir=str(cache)).build()
    assert "cache hit" in caplog.text and again["test"].meta["calendar"] == "equity"
    caplog.clear()
    with caplog.at_level(logging.INFO):
        forced = equity_market(tmp_path, cache_dir=str(cache), calendar="24x7")
        bars = forced.source.generate()
    assert forced.source.fingerprint()["calendar"] == "24x7"
    assert bars.calendar == "24x7" and bars.filled.any()  # nights are now gaps, filled
    assert len(list(cache.glob("*.npz"))) == 1  # only the equity entry so far
    forced.build()
    assert "cache hit" not in caplog.text and len(list(cache.glob("*.npz"))) == 2


def test_held_out_test_period_gets_the_history_clock_or_an_error(tmp_path):
    stamps = fx_stamps(weeks=14)
    walk(stamps[:1000]).to_csv(tmp_path / "hist.csv", index=False)
    walk(stamps[1100:]).to_csv(tmp_path / "test.csv", index=False)
    kw = dict(
        features=DEFAULT_FEATURES,
        assets=["EURUSD"],
        report_path=None,
        split={"train": 0.8, "val": 0.2, "test": 0.0},
    )
    out = FileMarket(
        path=str(tmp_path / "hist.csv"), test_path=str(tmp_path / "test.csv"), **kw
    ).build()
    assert out["test"].meta["calendar"] == out["train"].meta["calendar"] == "fx"
    walk(stamps[-24 * 6 :]).to_csv(tmp_path / "short.csv", index=False)  # one weekend: 24x7
    with pytest.raises(ValueError, match="test period's calendar is '24x7'.*data.calendar"):
        FileMarket(
            path=str(tmp_path / "hist.csv"), test_path=str(tmp_path / "short.csv"), **kw
        ).build()


def test_assets_on_different_calendars_share_the_most_open_clock(tmp_path):
    stamps = fx_stamps()
    walk(stamps).to_csv(tmp_path / "EURUSD.csv", index=False)
    crypto = pd.date_range(stamps[0], stamps[-1], freq="h")
    walk(crypto, price=40000.0).to_csv(tmp_path / "BTC.csv", index=False)
    src = FileSource(str(tmp_path / "*.csv"), report_path=str(tmp_path / "r.json"))
    bars = src.generate()
    report = json.loads((tmp_path / "r.json").read_text())
    cal = report["summary"]["calendar"]
    assert cal["calendar"] == "24x7" and "different calendars" in cal["note"]
    assert bars.calendar == "24x7" and len(bars) == len(crypto)  # no split at weekends
    eur = bars.assets.index("EURUSD")
    weekend = ~np.isin(bars.timestamps, stamps.values)
    assert bars.filled[weekend, eur].all() and not bars.filled[~weekend, eur].any()
    assert "gap" not in {d["rule"] for d in report["defects"]}
    info = report["summary"]["alignment"]["assets"]["EURUSD"]
    assert info["filled_bars"] == 0 and info["closed_bars_filled"] == weekend.sum()


def test_the_report_and_log_say_which_calendar_and_why(tmp_path):
    walk(fx_stamps()).to_csv(tmp_path / "EURUSD.csv", index=False)
    src = FileSource(str(tmp_path / "EURUSD.csv"), report_path=None)
    src.generate()
    text = src.report.describe()
    assert "calendar fx" in text and "5 market closure(s), not gaps" in text
