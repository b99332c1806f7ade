"""``ExchangeFeed`` against a local binance-like kline server: closed bars only, aligned across
symbols, each once; ccxt's errors mapped to ``FeedError``; values converted, never repaired;
every request to 127.0.0.1."""

from __future__ import annotations

import math
import re
import socket

import numpy as np
import pytest

pytest.importorskip("ccxt")

from adan.errors import FeedError, LiveConfigError, LiveDataError  # noqa: E402
from adan.ops.feeds.base import Feed  # noqa: E402
from adan.ops.feeds.exchange import ExchangeFeed, ExchangeFeedConfig, timeframe_ms  # noqa: E402
from tests.ops.kline_server import (  # noqa: E402
    HOUR_MS,
    KlineServer,
    forming_row,
    hourly_rows,
    loopback_only,
    to_ms,
)

pytestmark = pytest.mark.timeout(60)

T0 = to_ms("2024-01-01T00:00")
H = HOUR_MS


class Clock:
    """The feed's clock, in seconds; starts 10 minutes into the bar after ``bars`` hours."""

    def __init__(self, bars: int) -> None:
        self.ms = T0 + bars * H + 600_000

    def __call__(self) -> float:
        return self.ms / 1000

    def advance(self, hours: int = 1) -> None:
        self.ms += hours * H


@pytest.fixture(autouse=True)
def connections():
    """Every test: no connection but to 127.0.0.1; the addresses connected to."""
    with loopback_only() as seen:
        yield seen


@pytest.fixture
def server():
    """BTCUSDT and ETHUSDT, 48 closed hourly bars each from T0, plus each one's forming bar."""
    with KlineServer() as srv:
        clock = Clock(48)
        srv.add_bars("BTCUSDT", hourly_rows(T0, 48, price=100.0) + [forming_row(clock.ms)])
        srv.add_bars("ETHUSDT", hourly_rows(T0, 48, price=10.0) + [forming_row(clock.ms)])
        srv.clock = clock
        yield srv


def make_feed(srv, symbols=("BTC/USDT", "ETH/USDT"), **kw) -> ExchangeFeed:
    kw.setdefault("limit", 10)
    kw.setdefault("timeout_s", 2.0)
    return ExchangeFeed("binance", list(symbols), api_url=srv.api_url, clock=srv.clock, **kw)


def ms(ts) -> int:
    return int(np.datetime64(ts, "ms").astype(np.int64))


# ----------------------------------------------------------------------------- history
def test_history_returns_closed_aligned_bars_through_127_0_0_1(server, connections):
    feed = make_feed(server)
    assert isinstance(feed, Feed)
    assert feed.assets == ("BTCUSDT", "ETHUSDT")
    bars = feed.history(None, 30)
    assert bars.assets == ("BTCUSDT", "ETHUSDT")
    assert bars.calendar == "24x7" and bars.bar_ns == H * 1_000_000
    assert bars.timestamps.dtype == np.dtype("datetime64[ns]")
    assert len(bars) == 30
    # the last closed bar opened at T0 + 47 h; the forming bar (T0 + 47 h 50 min) is left out
    assert ms(bars.timestamps[-1]) == T0 + 47 * H
    assert ms(bars.timestamps[0]) == T0 + 18 * H
    assert np.all(np.diff(bars.timestamps.astype(np.int64)) == H * 1_000_000)
    np.testing.assert_allclose(bars.close[-1], [100.0 + 47 + 1, 10.0 + 47 + 1])
    np.testing.assert_allclose(bars.volume[0], [10.0 + 18, 10.0 + 18])
    # 30 bars at 10 a request: the feed paged through the server
    assert server.kline_requests >= 6
    assert connections and {a[0] for a in connections} == {"127.0.0.1"}
    assert set(server.clients) == {"127.0.0.1"}
    assert "/api/v3/exchangeInfo" in server.paths[0]
    feed.close()


def test_history_before_a_time_and_capped_by_history_bars(server):
    feed = make_feed(server, history_bars=5)
    bars = feed.history(np.datetime64(T0 + 20 * H, "ms"), 100)
    assert len(bars) == 5
    assert ms(bars.timestamps[-1]) == T0 + 19 * H  # strictly before ``before``
    assert feed.history(np.datetime64(T0, "ms"), 10) is None  # nothing before the first bar
    assert feed.history(None, 0) is None


def test_history_keeps_only_timestamps_every_symbol_has(server):
    server.remove_bars("ETHUSDT", [T0 + 40 * H])
    bars = make_feed(server).history(None, 10)
    times = [ms(t) for t in bars.timestamps]
    assert T0 + 40 * H not in times
    assert len(bars) == 10 and times[-1] == T0 + 47 * H


# ----------------------------------------------------------------------------- poll
def test_first_poll_returns_the_latest_closed_bar_never_the_forming_one(server):
    feed = make_feed(server)
    bars = feed.poll()
    assert [ms(b.timestamp) for b in bars] == [T0 + 47 * H]
    assert bars[0].close.tolist() == [148.0, 58.0]
    assert feed.poll() == []  # nothing new, and the forming bar stays out


def test_poll_returns_new_bars_once_each_in_order(server):
    feed = make_feed(server)
    feed.history(None, 10)
    assert feed.poll() == []
    clock = server.clock
    for k in range(3):  # three more hours close, one at a time
        server.add_bars("BTCUSDT", hourly_rows(T0 + (48 + k) * H, 1, price=200.0 + k))
        server.add_bars("ETHUSDT", hourly_rows(T0 + (48 + k) * H, 1, price=20.0 + k))
        server.add_bars("BTCUSDT", [forming_row(clock.ms + H)])
        clock.advance()
        polled = feed.poll()
        assert [ms(b.timestamp) for b in polled] == [T0 + (48 + k) * H]
        assert polled[0].open.tolist() == [200.0 + k, 20.0 + k]
        assert feed.poll() == []  # no duplicate


def test_poll_catches_up_on_many_bars_across_pages(server):
    feed = make_feed(server, limit=5)
    feed.seek(np.datetime64(T0 + 20 * H, "ms"))
    polled = feed.poll()
    assert [ms(b.timestamp) for b in polled] == [T0 + h * H for h in range(21, 48)]
    assert feed.poll() == []


def test_poll_waits_until_every_symbol_has_the_bar(server):
    feed = make_feed(server)
    feed.poll()
    server.add_bars("BTCUSDT", hourly_rows(T0 + 48 * H, 1, price=300.0))
    server.remove_bars("ETHUSDT", [T0 + 48 * H])  # ETH's bar (it was forming) is late
    server.clock.advance()
    assert feed.poll() == []  # nothing yet, nothing skipped
    server.add_bars("ETHUSDT", hourly_rows(T0 + 48 * H, 1, price=30.0))
    polled = feed.poll()
    assert [ms(b.timestamp) for b in polled] == [T0 + 48 * H]
    assert polled[0].open.tolist() == [300.0, 30.0]


def test_malformed_values_are_converted_to_nan_not_repaired(server):
    t = T0 + 48 * H
    server.add_bars("BTCUSDT", [(t, None, "NaN", -1.0, "abc", 5.0)])
    server.add_bars("ETHUSDT", [(t, 1.0, 2.0, 0.5, 1.5, -3.0)])
    feed = make_feed(server)
    server.clock.advance()
    (bar,) = feed.poll()
    assert math.isnan(bar.open[0]) and math.isnan(bar.high[0]) and math.isnan(bar.low[0])
    assert math.isnan(bar.close[0]) and bar.volume[0] == 5.0
    assert bar.close[1] == 1.5 and math.isnan(bar.volume[1])


def test_malformed_candles_raise_live_data_error_naming_the_symbol(server):
    feed = make_feed(server)
    feed._load_markets()
    server.set_mode("malformed", times=1)
    # the latest candles (no ``since``): ccxt hands over a candle without an open time as is
    # (asked with ``since``, it drops it: ccxt's filter_by_since_limit)
    with pytest.raises(LiveDataError, match=r"malformed candle for BTC/USDT: \[None, 1\.0,") as e:
        feed.poll()
    assert not e.value.retryable
    assert server.kline_requests == 1  # not retried


# ----------------------------------------------------------------------------- errors
def test_server_errors_and_timeouts_are_retryable_feed_errors(server):
    feed = make_feed(server, timeout_s=0.3)
    feed.poll()
    server.set_mode("fail", times=1, status=503)
    with pytest.raises(FeedError, match="binance fetch_ohlcv BTC/USDT failed") as e:
        feed.poll()
    assert e.value.retryable and "ExchangeNotAvailable" in str(e.value)
    server.set_mode("stall", times=1, seconds=1.0)
    with pytest.raises(FeedError, match="RequestTimeout") as e:
        feed.poll()
    assert e.value.retryable


def test_a_rejected_symbol_is_not_retryable_and_says_what_to_check(server):
    feed = make_feed(server)
    feed.poll()
    server.set_mode("reject")
    with pytest.raises(FeedError, match="BadSymbol") as e:
        feed.poll()
    assert not e.value.retryable and "feed.symbols" in str(e.value)


def test_a_symbol_the_exchange_does_not_list_is_a_config_error(server):
    feed = make_feed(server, symbols=("BTC/USDT", "DOGE/USDT"))
    with pytest.raises(LiveConfigError, match=r"feed\.symbols.*DOGE/USDT"):
        feed.poll()


def test_an_unreachable_exchange_is_a_retryable_feed_error(connections):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    feed = ExchangeFeed(
        "binance", ["BTC/USDT"], api_url=f"http://127.0.0.1:{port}/api/v3", timeout_s=0.5
    )
    with pytest.raises(FeedError, match="load_markets") as e:
        feed.poll()
    assert e.value.retryable


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"exchange": ""}, "feed.exchange"),
        ({"symbols": []}, "feed.symbols"),
        ({"symbols": "BTC/USDT"}, "feed.symbols"),
        ({"symbols": ["BTCUSDT"]}, "feed.symbols"),
        ({"symbols": ["BTC/USDT", "BTC/USDT"]}, "feed.symbols"),
        ({"timeframe": "1M"}, "feed.timeframe"),
        ({"timeframe": "hourly"}, "feed.timeframe"),
        ({"api_url": "ftp://x"}, "feed.api_url"),
        ({"history_bars": 0}, "feed.history_bars"),
        ({"limit": True}, "feed.limit"),
        ({"timeout_s": 0}, "feed.timeout_s"),
        ({"options": ["x"]}, "feed.options"),
        ({"symbol": ["BTC/USDT"]}, "feed.symbol"),
    ],
)
def test_config_errors_name_the_key(values, key):
    d = {"exchange": "binance", "symbols": ["BTC/USDT"], **values}
    with pytest.raises(LiveConfigError, match=rf"^{re.escape(key)}\b"):
        ExchangeFeedConfig.from_mapping(d)


def test_config_from_mapping_and_unknown_exchange():
    cfg = ExchangeFeedConfig.from_mapping(
        {
            "exchange": "binance",
            "symbols": ["BTC/USDT", "ETH/USDT"],
            "timeframe": "4h",
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
    )
    assert cfg.symbols == ("BTC/USDT", "ETH/USDT") and cfg.timeout_s == 10.0
    assert timeframe_ms(cfg.timeframe) == 4 * H
    with pytest.raises(LiveConfigError, match="valid keys: exchange, symbols"):
        ExchangeFeedConfig.from_mapping({"exchange": "binance", "symbols": ["A/B"], "x": 1})
    with pytest.raises(LiveConfigError, match=r"feed\.exchange 'nope' is not a ccxt exchange"):
        ExchangeFeed("nope", ["BTC/USDT"])
    with pytest.raises(LiveConfigError, match=r"feed\.timeframe '2m' is not offered by binance"):
        ExchangeFeed("binance", ["BTC/USDT"], timeframe="2m")
    feed = ExchangeFeed.from_config(cfg)
    assert feed.assets == ("BTCUSDT", "ETHUSDT") and feed.bar_ms == 4 * H
    feed.close()
