"""The live loop's parts on their own: the bar gate, the live market (each bar's view equals the
split ``build`` gives), the paper broker (the backtest's desk, bar for bar) and the state file
(atomic per bar, safe to read back, snapshots restored)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from adan.data import SyntheticMarket
from adan.data.pipeline import MarketPipeline
from adan.errors import LiveDataError
from adan.evaluation.backtest import run_backtest
from adan.market.config import TradingConfig
from adan.market.spec import MarketSpec
from adan.ops.bar_gate import BarGate
from adan.ops.broker import PaperBroker
from adan.ops.feeds.base import FeedBar
from adan.ops.feeds.replay import ReplayFeed
from adan.ops.live_market import LiveMarket, bars_from_state, bars_state, take_bars
from adan.ops.state_store import StateStore, decode, dumps, encode, loads, restore

HOUR = np.timedelta64(1, "h")
T0 = np.datetime64("2024-01-01T00:00", "ns")


def bar(k, close=100.0, **kw):
    fields = {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 5.0}
    fields.update(kw)
    return FeedBar.of(T0 + k * HOUR, **{f: [v] for f, v in fields.items()})


# ----------------------------------------------------------------------------- bar gate
def test_gate_drops_duplicates_late_malformed_and_off_clock_bars():
    gate = BarGate(3_600 * 10**9, 1)
    assert gate.check(bar(0)).admitted
    assert gate.check(bar(0)).rejected == "duplicate"
    assert gate.check(bar(1)).admitted
    early = FeedBar.of(
        T0 + np.timedelta64(30, "m"), open=[1], high=[1], low=[1], close=[1], volume=[1]
    )
    assert gate.check(early).rejected == "late"
    assert gate.check(bar(2, close=np.nan)).rejected == "malformed"
    assert gate.check(bar(2, close=-1.0)).rejected == "malformed"
    assert gate.check(bar(2, volume=-5.0)).rejected == "malformed"
    off = FeedBar.of(
        T0 + 2 * HOUR + np.timedelta64(15, "m"), open=[1], high=[1], low=[1], close=[1], volume=[1]
    )
    assert gate.check(off).rejected == "off_clock"
    assert gate.last_time == T0 + HOUR  # nothing rejected moved it


def test_gate_repairs_inconsistent_ohlc_and_fills_short_gaps_flat():
    gate = BarGate(3_600 * 10**9, 1, max_fill_bars=2)
    gate.check(bar(0, close=100.0))
    decision = gate.check(bar(1, close=101.0, high=99.0))  # high below the close
    (fixed, filled), = decision.admitted  # fmt: skip
    assert decision.repaired == "ohlc_inconsistent" and not filled
    assert fixed.high[0] == 101.0 and fixed.low[0] == 99.0
    decision = gate.check(bar(4, close=110.0))
    stamps = [b.timestamp for b, _ in decision.admitted]
    assert stamps == [T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + 4 * HOUR]
    assert [f for _, f in decision.admitted] == [True, True, False]
    gap_bar = decision.admitted[0][0]
    assert gap_bar.close[0] == gap_bar.open[0] == 101.0 and gap_bar.volume[0] == 0.0
    with pytest.raises(LiveDataError, match="max_fill_bars=2"):
        gate.check(bar(10))
    assert len(gate.check(bar(10), fill_any_gap=True).admitted) == 6


# ------------------------------------------------------------------------ live market
@pytest.fixture(scope="module")
def market():
    bars = SyntheticMarket(n_assets=2, n_bars=1500, seed=3).generate()
    pipe = MarketPipeline(bars, ["log_return", "momentum_24", "volatility_24", "rsi_14"],
                          split={"embargo": 5}, cache_dir=None)  # fmt: skip
    built = pipe.build()
    fitted = {k: built["train"].meta[k] for k in ("scaler", "feature_names")}
    fitted["assets"] = list(bars.assets)
    return bars, pipe, built, fitted


def test_each_live_view_is_the_split_build_gives(market):
    bars, pipe, built, fitted = market
    bounds = pipe.history_bounds(bars)
    first = pipe._prepare(bars).first_row
    start = first + bounds["test"][0]
    live = LiveMarket(pipe, fitted, take_bars(bars, start), bounds)
    assert live.start == start
    test = built["test"]
    feed = ReplayFeed(replace(take_bars(bars, first + bounds["test"][1]), regimes=None), 0.0)
    feed.seek(bars.timestamps[start - 1])
    for k in range(40):
        (b,) = feed.poll()
        live.append(b)
        if k in (0, 17, 39):
            view = live.data()
            assert len(view) == k + 1
            assert (view.features == test.features[: k + 1]).all()  # bit for bit
            assert (view.detected_regimes == test.detected_regimes[: k + 1]).all()
            assert (view.close == test.close[: k + 1]).all()
    # the history survives a round trip through the state file's encoding
    again = bars_from_state(loads(dumps(bars_state(live.bars()))))
    assert (again.timestamps == live.bars().timestamps).all()
    assert (again.close == live.bars().close).all()


def test_the_paper_broker_steps_exactly_as_the_backtest(market):
    bars, pipe, built, fitted = market
    test = built["test"]
    trading = TradingConfig(fee_bps=10.0)
    window = 8
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (len(test), 2))
    record = run_backtest(lambda obs, t: actions[t], MarketSpec.of(test, trading, window=window))
    broker = PaperBroker(trading, window)
    broker.start(test.slice(0, window))
    for t in range(window - 1, len(test) - 2):
        fill, _ = broker.on_bar(test.slice(0, t + 2), actions[t][None])
        assert fill.equity == record.equity[t - window + 2, 0]
        assert fill.cost == record.costs[t - window + 1, 0]
    # the state travels through the state file's encoding unchanged
    state = decode(loads(dumps(broker.state_dict())))
    assert dumps(state) == dumps(broker.state_dict())


# ------------------------------------------------------------------------- state file
def test_codec_round_trips_arrays_and_scalars():
    value = {"a": np.arange(6, dtype=np.uint64).reshape(2, 3), "b": [np.float32(1.5), None],
             "c": {"d": np.array([True, False])}, "e": "text"}  # fmt: skip
    back = loads(dumps(value))
    assert back["a"].dtype == np.uint64 and (back["a"] == value["a"]).all()
    assert back["b"] == [1.5, None] and back["c"]["d"].tolist() == [True, False]
    assert encode(np.int64(3)) == 3


def test_a_failed_bar_writes_nothing_and_snapshots_restore(tmp_path):
    store = StateStore(tmp_path / "s.sqlite")
    with store.transaction() as db:
        store.add_bar(db, 0, "2024-01-01T00:00:00", bar(0), False)
        store.save_account(db, 0, "2024-01-01T00:00:00", {"n": 1})
    with pytest.raises(RuntimeError), store.transaction() as db:
        store.add_bar(db, 1, "2024-01-01T01:00:00", bar(1), False)
        store.save_account(db, 1, "2024-01-01T01:00:00", {"n": 2})
        raise RuntimeError("killed mid-bar")
    assert len(store.live_bars()) == 1 and store.account() == {"n": 1}
    snap = store.backup(tmp_path / "snaps" / "one.sqlite")
    with store.transaction() as db:
        store.add_bar(db, 1, "2024-01-01T01:00:00", bar(1), False)
        store.save_account(db, 1, "2024-01-01T01:00:00", {"n": 2})
    store.close()
    restore(snap, tmp_path / "s.sqlite")
    again = StateStore(tmp_path / "s.sqlite")
    assert again.account() == {"n": 1} and len(again.live_bars()) == 1
    kept = sqlite3.connect(tmp_path / "s.sqlite.before-restore")
    assert kept.execute("SELECT COUNT(*) FROM bars").fetchone() == (2,)  # the replaced file
    (tmp_path / "junk").write_bytes(b"not a database")
    with pytest.raises(ValueError, match="not a trade.py state snapshot"):
        restore(tmp_path / "junk", tmp_path / "s.sqlite")
