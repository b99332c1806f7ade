"""A local stand-in for binance's public spot REST API, for the live-trading tests.

It answers the two endpoints ccxt's ``binance.fetch_ohlcv`` needs (``/api/v3/exchangeInfo``
for ``load_markets`` and ``/api/v3/klines``) from an in-memory table of bars per symbol that
the test controls, on 127.0.0.1, so no test touches the network. The test can make it fail
(HTTP 500/503), stall (answer later than the client's timeout), reject (HTTP 400, binance's
"Invalid symbol"), or serve malformed klines, a given number of times or until told otherwise.

    with KlineServer(["BTCUSDT", "ETHUSDT"]) as server:
        server.add_bars("BTCUSDT", hourly_rows("2024-01-01", 48))
        feed = ExchangeFeed("binance", ["BTC/USDT"], api_url=server.api_url)
        server.set_mode("fail", times=2, status=503)
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

HOUR_MS = 3_600_000
INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": HOUR_MS, "4h": 4 * HOUR_MS}
MODES = ("ok", "fail", "stall", "malformed", "reject")
# what the "malformed" mode serves as klines: rows that are not binance's 12-field arrays
MALFORMED_KLINES: list[Any] = [["not-a-time", "1", "2", "0.5", "1.5", "10"], "garbage"]

Row = tuple  # (open_time, open, high, low, close, volume)


def to_ms(t: Any) -> int:
    """Milliseconds since the epoch of an int (taken as ms already), a string, a datetime or
    a numpy datetime64 (naive = UTC)."""
    if isinstance(t, int | np.integer):
        return int(t)
    return int(np.datetime64(t, "ms").astype(np.int64))


def hourly_rows(
    start: Any, count: int, *, price: float = 100.0, step_ms: int = HOUR_MS
) -> list[Row]:
    """``count`` well-formed bars from ``start`` (ms or datetime-like) every ``step_ms``;
    prices drift up by 1 a bar so each bar is recognisable by its close."""
    t0 = to_ms(start)
    out = []
    for i in range(count):
        o = price + i
        out.append((t0 + i * step_ms, o, o + 2.0, o - 1.0, o + 1.0, 10.0 + i))
    return out


def forming_row(now_ms: int, *, price: float = 100.0, age_ms: int = 600_000) -> Row:
    """A bar still forming at ``now_ms``: opened ``age_ms`` (10 min) ago."""
    return (now_ms - age_ms, price, price + 1.0, price - 1.0, price + 0.5, 1.0)


@contextlib.contextmanager
def loopback_only() -> Iterator[list]:
    """Within the block, a name lookup or a connection for anything but 127.0.0.1 raises
    ``AssertionError`` (no test reaches the network by mistake, not even DNS); yields the
    addresses connected to."""
    seen: list = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> None:
        seen.append(address)
        if not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
            raise AssertionError(f"a test tried to reach the network: {address!r}")
        real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", b"127.0.0.1"):
            raise AssertionError(f"a test tried to look up a host: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    try:
        yield seen
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo


def _kline(row: Row, interval_ms: int) -> list:
    """Binance's 12-field kline: times as ints, prices and volumes as strings (None as null,
    strings as given, so a test can serve ``"abc"`` or ``"NaN"``)."""
    t, *values = row
    t = to_ms(t)
    o, h, low, c, v = (x if x is None or isinstance(x, str) else f"{float(x):.8f}" for x in values)
    return [t, o, h, low, c, v, t + interval_ms - 1, "0", 1, "0", "0", "0"]


def _symbol_info(symbol: str) -> dict:
    """A minimal exchangeInfo entry ccxt parses into a spot market."""
    quote = next((q for q in ("USDT", "USDC", "BUSD", "BTC", "ETH") if symbol.endswith(q)), None)
    quote = quote if quote and quote != symbol else symbol[-3:]
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": symbol[: -len(quote)],
        "quoteAsset": quote,
        "baseAssetPrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01",
                "maxPrice": "1000000",
                "tickSize": "0.01",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001",
                "maxQty": "9000",
                "stepSize": "0.00001",
            },
        ],
    }


class KlineServer:
    """Binance-like kline server on a free port of 127.0.0.1 (a context manager).

    ``url`` is the server's root, ``api_url`` what ccxt's binance takes as its public API URL
    (``url + "/api/v3"``). ``requests`` counts every request answered (or failed, stalled),
    ``kline_requests`` the kline ones; ``paths`` lists each request's path and query,
    ``clients`` the address each came from. exchangeInfo lists ``symbols`` and every symbol
    given bars. The bars are served as stored whatever ``interval`` a request asks;
    ``interval`` only sets the klines' close time.
    """

    def __init__(self, symbols: Iterable[str] = (), interval: str = "1h") -> None:
        self.interval_ms = INTERVAL_MS[interval]
        self._lock = threading.Lock()
        self._bars: dict[str, dict[int, Row]] = {s: {} for s in symbols}
        self._mode, self._times, self._status, self._stall_s = "ok", None, 500, 5.0
        self._released = threading.Event()
        self.paths: list[str] = []
        self.clients: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> KlineServer:
        """Listen on 127.0.0.1 (a free port) and serve from a background thread."""
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._released.clear()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalled requests, stop serving and close the socket."""
        self._released.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> KlineServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "KlineServer is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/v3"

    # ------------------------------------------------------------------ control
    def add_bars(self, symbol: str, rows: Iterable[Sequence]) -> None:
        """Add (or replace, by open time) bars ``(open_time, open, high, low, close, volume)``
        of ``symbol`` (binance id, e.g. ``BTCUSDT``); open_time in ms or datetime-like, values
        may be None (served as null) or anything ``float`` takes."""
        with self._lock:
            table = self._bars.setdefault(symbol, {})
            for row in rows:
                if len(row) != 6:
                    raise ValueError(f"a bar row has 6 fields, got {row!r}")
                table[to_ms(row[0])] = tuple(row)

    def remove_bars(self, symbol: str, open_times: Iterable[Any]) -> None:
        """Drop bars of ``symbol`` by open time (to make a gap, or drop a forming bar)."""
        with self._lock:
            for t in open_times:
                self._bars.get(symbol, {}).pop(to_ms(t), None)

    def set_mode(
        self,
        mode: str,
        times: int | None = None,
        *,
        status: int = 500,
        seconds: float = 5.0,
    ) -> None:
        """Answer the next ``times`` requests, of any endpoint (None: all, until changed) in
        ``mode``: ``ok``; ``fail`` (HTTP ``status``, 500 or 503..., a plain-text body as a load
        balancer sends); ``stall`` (wait ``seconds``, or until ``stop``, then answer normally:
        make it longer than the client's timeout); ``reject`` (HTTP 400, binance code -1121
        "Invalid symbol"); ``malformed`` (kline requests only, counted alone: rows that are
        not 12-field arrays, ``MALFORMED_KLINES``; ccxt parses them into candles without an
        open time, and drops those when asked with ``since``). After ``times`` requests the
        server is back to ``ok``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        with self._lock:
            self._mode, self._times, self._status, self._stall_s = mode, times, status, seconds

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def requests(self) -> int:
        return len(self.paths)

    @property
    def kline_requests(self) -> int:
        return sum(p.startswith("/api/v3/klines") for p in self.paths)

    # ------------------------------------------------------------------ serving
    def _take_mode(self, path: str) -> tuple[str, int, float]:
        """Record a request and consume one use of the current mode."""
        with self._lock:
            self.paths.append(path)
            mode = self._mode
            if mode == "malformed" and not path.startswith("/api/v3/klines"):
                mode = "ok"  # malformed only concerns klines; markets load as usual
            elif self._times is not None:
                self._times -= 1
                if self._times <= 0:
                    self._mode, self._times = "ok", None
            return mode, self._status, self._stall_s

    def _klines(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        """Binance semantics: rows with startTime <= open time <= endTime, the first ``limit``
        of them (the last ``limit`` when only endTime or neither is given)."""
        symbol = query.get("symbol", [""])[0]
        with self._lock:
            if symbol not in self._bars:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            rows = [self._bars[symbol][t] for t in sorted(self._bars[symbol])]
        limit = min(int(query.get("limit", ["500"])[0]), 1000)
        start = int(query["startTime"][0]) if "startTime" in query else None
        end = int(query["endTime"][0]) if "endTime" in query else None
        rows = [
            r
            for r in rows
            if (start is None or to_ms(r[0]) >= start) and (end is None or to_ms(r[0]) <= end)
        ]
        rows = rows[:limit] if start is not None else rows[-limit:]
        return 200, [_kline(r, self.interval_ms) for r in rows]

    def _exchange_info(self) -> dict:
        with self._lock:
            symbols = list(self._bars)
        return {
            "timezone": "UTC",
            "serverTime": 0,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [_symbol_info(s) for s in symbols],
        }


class _Handler(BaseHTTPRequestHandler):
    server_ref: KlineServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass

    def _send(self, status: int, body: Any) -> None:
        text = isinstance(body, str)
        data = body.encode() if text else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (a stalled request): nothing to answer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        srv = self.server_ref
        parts = urlsplit(self.path)
        srv.clients.append(self.client_address[0])
        mode, status, stall_s = srv._take_mode(self.path)
        if mode == "stall":
            srv._released.wait(stall_s)
            self.close_connection = True
        elif mode == "fail":
            self._send(status, f"{status} gateway error")  # what a load balancer answers
            return
        elif mode == "reject":
            self._send(400, {"code": -1121, "msg": "Invalid symbol."})
            return
        if parts.path == "/api/v3/exchangeInfo":
            self._send(200, srv._exchange_info())
        elif parts.path == "/api/v3/klines":
            if mode == "malformed":
                self._send(200, MALFORMED_KLINES)
            else:
                self._send(*srv._klines(parse_qs(parts.query)))
        else:
            self._send(404, {"code": -1, "msg": f"not served here: {parts.path}"})
