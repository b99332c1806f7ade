"""Closed bars from a crypto exchange's public OHLCV API, through ccxt (``feed=exchange``).

Only the public market-data API is used (``fetch_ohlcv``, and ``load_markets`` once): no API
keys, nothing is traded here. Each call goes through the feed's :class:`ServiceGuard` when one
is given (retries, circuit breaker); ccxt's errors become ``FeedError``: retryable for network
trouble (timeouts, 5xx, rate limits), not retryable for what retrying cannot fix (an unknown
symbol, a refused request).

A bar is handed over once it is closed: a candle whose open time + timeframe is later than the
clock is the forming bar and is never returned. Bars of several symbols are aligned on the
timestamps every symbol has. Values are converted, not repaired: a missing, non-finite or
negative value becomes NaN for the live loop's bar gate to judge; a candle that is not six
numbers raises ``LiveDataError``.

    feed:
      exchange: binance
      symbols: [BTC/USDT, ETH/USDT]
      timeframe: 1h
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from adan.config.secrets import mask_password
from adan.data.bars import Bars
from adan.errors import FeedError, LiveConfigError, LiveDataError
from adan.ops.feeds.base import FIELDS, FeedBar
from adan.ops.resilience import ServiceGuard

log = logging.getLogger("adan.trade.feed")

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIMEFRAME = re.compile(r"^([1-9][0-9]*)([smhdw])$")
# what ccxt needs per exchange to stay on the public spot API (merged under ``options``)
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},  # exchangeInfo of spot only (not fapi/dapi)
        "fetchCurrencies": False,  # a private endpoint on binance
    },
}
_HISTORY_ROUNDS = 4  # windows history() fetches at most to find ``bars`` bars despite gaps
_USERINFO = re.compile(r"(://[^/\s:@]*):[^@\s/]*@")


def _masked(text: str) -> str:
    """``text`` with any ``scheme://user:password@`` password replaced by ``***``."""
    return _USERINFO.sub(r"\1:***@", text)


def timeframe_ms(timeframe: str, key: str = "feed.timeframe") -> int:
    """Milliseconds of a ccxt timeframe (``1m``, ``15m``, ``1h``, ``4h``, ``1d``, ``1w``);
    months and years have no fixed length and are refused."""
    m = _TIMEFRAME.match(timeframe) if isinstance(timeframe, str) else None
    if m is None:
        raise LiveConfigError(
            f"{key} must be a count and a unit among s, m, h, d, w (e.g. 1h, 15m), "
            f"got {timeframe!r}"
        )
    return int(m.group(1)) * _UNIT_S[m.group(2)] * 1000


def _require(ok: bool, key: str, rule: str, value: object) -> None:
    if not ok:
        raise LiveConfigError(f"{key} {rule}, got {value!r}")


@dataclass(frozen=True)
class ExchangeFeedConfig:
    """The ``feed:`` block of ``feed=exchange``, validated; messages name the ``feed.`` key.

    ``history_bars`` caps what ``history`` fetches, ``limit`` is the candles asked per
    request (binance serves up to 1000), ``timeout_s`` the HTTP timeout of one request,
    ``api_url`` replaces the exchange's public REST URL (a mirror, a test server), ``options``
    go to ccxt's exchange ``options`` over :data:`DEFAULT_OPTIONS`."""

    exchange: str = "binance"
    symbols: tuple[str, ...] = ()
    timeframe: str = "1h"
    api_url: str | None = None
    history_bars: int = 500
    limit: int = 100
    timeout_s: float = 10.0
    options: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _require(
            isinstance(self.exchange, str) and bool(self.exchange),
            "feed.exchange",
            "must be a ccxt exchange id (e.g. binance)",
            self.exchange,
        )
        symbols = self.symbols
        _require(
            isinstance(symbols, Sequence) and not isinstance(symbols, str) and len(symbols) > 0,
            "feed.symbols",
            "must be a non-empty list of symbols like BTC/USDT",
            symbols,
        )
        for s in symbols:
            _require(
                isinstance(s, str) and re.fullmatch(r"[^/\s]+/[^/\s]+", s) is not None,
                "feed.symbols",
                "must hold ccxt symbols BASE/QUOTE (e.g. BTC/USDT)",
                s,
            )
        assets = [s.replace("/", "") for s in symbols]
        _require(
            len(set(assets)) == len(assets),
            "feed.symbols",
            "must not repeat a symbol",
            list(symbols),
        )
        object.__setattr__(self, "symbols", tuple(symbols))
        timeframe_ms(self.timeframe)
        _require(
            self.api_url is None
            or (
                isinstance(self.api_url, str)
                and re.match(r"^https?://[^/\s]+", self.api_url) is not None
            ),
            "feed.api_url",
            "must be an http(s) URL or null",
            mask_password(self.api_url),
        )
        for name in ("history_bars", "limit"):
            v = getattr(self, name)
            _require(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                f"feed.{name}",
                "must be an integer >= 1",
                v,
            )
        t = self.timeout_s
        _require(
            isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t > 0,
            "feed.timeout_s",
            "must be a number of seconds > 0",
            t,
        )
        _require(
            self.options is None or isinstance(self.options, Mapping),
            "feed.options",
            "must be a mapping or null",
            self.options,
        )

    @classmethod
    def from_mapping(
        cls, d: Mapping[str, Any], *, ignore: Sequence[str] = ()
    ) -> ExchangeFeedConfig:
        """From the ``feed`` mapping; a key that is not a setting (other than ``ignore``,
        the group's own markers) is refused with the valid ones listed."""
        _require(isinstance(d, Mapping), "feed", "must be a mapping", d)
        valid = [f.name for f in fields(cls)]
        for k in d:
            if k not in valid and k not in ignore:
                raise LiveConfigError(f"feed.{k} is not a setting; valid keys: {', '.join(valid)}")
        values = {k: v for k, v in d.items() if k in valid}
        if isinstance(values.get("symbols"), Sequence) and not isinstance(values["symbols"], str):
            values["symbols"] = tuple(values["symbols"])
        if isinstance(values.get("options"), Mapping):
            values["options"] = _plain(values["options"])
        return cls(**values)


def _plain(value: Any) -> Any:
    """Nested mappings and sequences (an OmegaConf node) as dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _import_ccxt() -> Any:
    try:
        import ccxt
    except ImportError as err:  # an optional dependency: pip install 'adan[exchange]'
        raise LiveConfigError(
            "feed=exchange needs ccxt, which is not installed: pip install 'adan[exchange]'"
        ) from err
    return ccxt


class ExchangeFeed:
    """Closed OHLCV bars of ``symbols`` on ``exchange`` (a ccxt id), for the live loop.

    ``assets`` are the symbols without the slash (``BTC/USDT`` -> ``BTCUSDT``), in order.
    ``clock`` gives the time in seconds since the epoch (default ``time.time``); it decides
    which candle is still forming. See :class:`ExchangeFeedConfig` for the other arguments.
    """

    def __init__(
        self,
        exchange: str,
        symbols: Sequence[str],
        timeframe: str = "1h",
        api_url: str | None = None,
        history_bars: int = 500,
        limit: int = 100,
        guard: ServiceGuard | None = None,
        clock: Callable[[], float] | None = None,
        options: Mapping[str, Any] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        cfg = ExchangeFeedConfig(
            exchange=exchange,
            symbols=tuple(symbols) if not isinstance(symbols, str) else symbols,
            timeframe=timeframe,
            api_url=api_url,
            history_bars=history_bars,
            limit=limit,
            timeout_s=timeout_s,
            options=options,
        )
        self.config = cfg
        self.exchange = cfg.exchange
        self.symbols: tuple[str, ...] = cfg.symbols
        self.assets: tuple[str, ...] = tuple(s.replace("/", "") for s in cfg.symbols)
        self.timeframe = cfg.timeframe
        self.bar_ms = timeframe_ms(cfg.timeframe)
        self._guard = guard
        self._clock = clock if clock is not None else time.time
        self._last_ms: int | None = None  # open time of the last bar handed over
        self._markets_loaded = False
        self._ccxt = _import_ccxt()
        self._client = self._make_client()

    @classmethod
    def from_config(
        cls,
        cfg: Mapping[str, Any] | ExchangeFeedConfig,
        *,
        guard: ServiceGuard | None = None,
        clock: Callable[[], float] | None = None,
    ) -> ExchangeFeed:
        """A feed from the ``feed`` config block (validated, keys named ``feed.<key>``)."""
        c = cfg if isinstance(cfg, ExchangeFeedConfig) else ExchangeFeedConfig.from_mapping(cfg)
        return cls(
            c.exchange,
            c.symbols,
            c.timeframe,
            c.api_url,
            c.history_bars,
            c.limit,
            guard=guard,
            clock=clock,
            options=c.options,
            timeout_s=c.timeout_s,
        )

    def _make_client(self) -> Any:
        """The ccxt exchange: public API, short timeout, rate limit on, ``api_url`` set."""
        cfg = self.config
        if cfg.exchange not in self._ccxt.exchanges:
            raise LiveConfigError(
                f"feed.exchange {cfg.exchange!r} is not a ccxt exchange; e.g. binance, kraken, "
                f"okx, bybit (ccxt.exchanges lists all {len(self._ccxt.exchanges)})"
            )
        options = _merge(DEFAULT_OPTIONS.get(cfg.exchange, {}), cfg.options or {})
        client = getattr(self._ccxt, cfg.exchange)(
            {"timeout": int(cfg.timeout_s * 1000), "enableRateLimit": True, "options": options}
        )
        offered = client.timeframes
        if isinstance(offered, dict) and offered and cfg.timeframe not in offered:
            raise LiveConfigError(
                f"feed.timeframe {cfg.timeframe!r} is not offered by {cfg.exchange}; it offers "
                f"{list(offered)}"
            )
        if cfg.api_url is not None:
            url = cfg.api_url.rstrip("/")
            api = client.urls.get("api")
            if isinstance(api, str):
                client.urls["api"] = url
            elif isinstance(api, dict) and ("public" in api or "rest" in api):
                api["public" if "public" in api else "rest"] = url
            else:
                keys = list(api) if isinstance(api, dict) else api
                raise LiveConfigError(
                    f"feed.api_url cannot be applied to {cfg.exchange}: its public REST URL is "
                    f"not under urls['api']['public'] or ['rest'] (its keys: {keys}); leave "
                    "feed.api_url null"
                )
        return client

    # ------------------------------------------------------------------ requests
    def _request(self, what: str, symbol: str | None, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` through the guard, ccxt's errors made ``FeedError``."""
        ccxt = self._ccxt
        where = f"{self.exchange} {what}" + (f" {symbol}" if symbol else "")

        def attempt() -> Any:
            try:
                return fn(*args)
            except ccxt.OperationFailed as err:  # NetworkError (timeout, 5xx, 429), bad reply
                raise FeedError(
                    f"{where} failed: {type(err).__name__}: {_masked(str(err))} (the exchange is "
                    "unreachable, slow or overloaded: retryable)",
                    retryable=True,
                ) from err
            except ccxt.BaseError as err:  # ExchangeError: BadSymbol, AuthenticationError, ...
                raise FeedError(
                    f"{where} refused: {type(err).__name__}: {_masked(str(err))} "
                    f"({self._advice(err)})",
                    retryable=False,
                ) from err
            except OSError as err:
                raise FeedError(f"{where} failed: {type(err).__name__}: {err}") from err

        if self._guard is not None:
            return self._guard.call(attempt)
        return attempt()

    def _advice(self, err: Exception) -> str:
        ccxt = self._ccxt
        if isinstance(err, ccxt.BadSymbol):
            return f"check feed.symbols: is it a spot market of {self.exchange}?"
        if isinstance(err, ccxt.AuthenticationError | ccxt.PermissionDenied):
            return "the feed uses the public API only: check feed.api_url and feed.options"
        return "retrying cannot fix it: check feed.exchange, feed.symbols, feed.api_url"

    def _load_markets(self) -> None:
        """Load the exchange's markets once and check every symbol is one of them."""
        if self._markets_loaded:
            return
        self._request("load_markets", None, self._client.load_markets)
        markets = self._client.markets or {}
        missing = [s for s in self.symbols if s not in markets]
        if missing:
            raise LiveConfigError(
                f"feed.symbols {missing} are not markets of {self.exchange} "
                f"(e.g. {sorted(markets)[:5]})"
            )
        self._markets_loaded = True

    def _fetch(self, symbol: str, since: int | None, limit: int) -> list[list]:
        return self._request(
            "fetch_ohlcv", symbol, self._client.fetch_ohlcv, symbol, self.timeframe, since, limit
        )

    def _candles(self, symbol: str, since: int | None, until: int, max_bars: int) -> dict:
        """Closed candles of ``symbol`` with open time in [since, until] (the latest page when
        ``since`` is None), at most about ``max_bars``, as {open time ms: candle}; page by page
        forward, until caught up."""
        out: dict[int, list] = {}
        pages = -(-max_bars // self.config.limit) + 1
        for _ in range(pages):
            page = self._fetch(symbol, since, self.config.limit)
            if not isinstance(page, list):
                raise LiveDataError(
                    f"{self.exchange} fetch_ohlcv {symbol}: expected a list of candles, got "
                    f"{type(page).__name__}: {str(page)[:200]}"
                )
            last = None
            for candle in page:
                t = self._check_candle(symbol, candle)
                last = t if last is None else max(last, t)
                if (since is None or t >= since) and t <= until:
                    out[t] = candle
            if since is None or last is None or last < since or last >= until:
                break
            since = last + 1
        return out

    def _check_candle(self, symbol: str, candle: Any) -> int:
        """The candle's open time (ms); ``LiveDataError`` unless it is six numbers."""
        ok = (
            isinstance(candle, list | tuple)
            and len(candle) == 6
            and isinstance(candle[0], int)
            and not isinstance(candle[0], bool)
            and all(
                v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                for v in candle[1:]
            )
        )
        if not ok:
            raise LiveDataError(
                f"{self.exchange} sent a malformed candle for {symbol}: {candle!r} (expected "
                "[open time ms, open, high, low, close, volume]); the bar cannot be used"
            )
        return int(candle[0])

    @staticmethod
    def _value(v: Any) -> float:
        """A price or volume as float: missing, non-finite or negative -> NaN (the bar gate
        rejects it)."""
        if v is None:
            return math.nan
        x = float(v)
        return x if math.isfinite(x) and x >= 0 else math.nan

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _closed(self, t: int, now_ms: int) -> bool:
        return t + self.bar_ms <= now_ms

    def _aligned(
        self, per_symbol: list[dict[int, list]], now_ms: int, after: int | None
    ) -> list[int]:
        """Open times of closed bars every symbol has, after ``after``, oldest first."""
        common = set.intersection(*(set(c) for c in per_symbol)) if per_symbol else set()
        return sorted(t for t in common if self._closed(t, now_ms) and (after is None or t > after))

    def _row(self, per_symbol: list[dict[int, list]], t: int) -> dict[str, list[float]]:
        return {
            name: [self._value(c[t][i + 1]) for c in per_symbol] for i, name in enumerate(FIELDS)
        }

    # ------------------------------------------------------------------ Feed protocol
    def history(self, before: np.datetime64 | None, bars: int) -> Bars | None:
        """Up to ``min(bars, history_bars)`` closed bars with open time before ``before``
        (None: now), aligned across symbols (a bar missing on one symbol is left out, and the
        feed reaches further back to make up for it); None when there is none. Later polls
        start after the last bar returned here (or the last polled bar, if later)."""
        n = min(int(bars), self.config.history_bars)
        if n <= 0:
            return None
        self._load_markets()
        now_ms = self._now_ms()
        end = now_ms - self.bar_ms  # latest open time of a closed bar
        if before is not None:
            end = min(end, int(np.datetime64(before, "ms").astype(np.int64)) - 1)
        per_symbol: list[dict[int, list]] = [{} for _ in self.symbols]
        since, want = end - n * self.bar_ms, n + 1
        for _ in range(_HISTORY_ROUNDS):  # gaps on some symbol: reach further back
            got = sum(map(len, per_symbol))
            for candles, symbol in zip(per_symbol, self.symbols, strict=True):
                candles.update(self._candles(symbol, since, end, want))
            short = n - len(self._aligned(per_symbol, now_ms, None))
            if short <= 0 or sum(map(len, per_symbol)) == got:
                break
            end, since, want = since - 1, since - (short + 1) * self.bar_ms, short + 1
        times = self._aligned(per_symbol, now_ms, None)[-n:]
        if not times:
            return None
        values = {k: np.empty((len(times), len(self.symbols))) for k in FIELDS}
        for row, t in enumerate(times):
            for k, v in self._row(per_symbol, t).items():
                values[k][row] = v
        self._last_ms = times[-1] if self._last_ms is None else max(times[-1], self._last_ms)
        return Bars(
            timestamps=np.array(times, dtype="datetime64[ms]").astype("datetime64[ns]"),
            assets=self.assets,
            calendar="24x7",
            bar_ns=self.bar_ms * 1_000_000,
            **values,
        )

    def poll(self) -> list[FeedBar]:
        """Closed bars newer than the last one handed over (by ``poll`` or ``history``),
        oldest first, each once every symbol has it; the first call without any history
        returns the latest closed bar only. Raises ``FeedError`` when the exchange fails."""
        self._load_markets()
        now_ms = self._now_ms()
        until = now_ms - self.bar_ms
        since = None if self._last_ms is None else self._last_ms + 1
        max_bars = self.config.history_bars
        per_symbol = [self._candles(s, since, until, max_bars) for s in self.symbols]
        times = self._aligned(per_symbol, now_ms, self._last_ms)
        if self._last_ms is None:
            times = times[-1:]
        if not times:
            return []
        self._last_ms = times[-1]
        return [FeedBar.of(np.datetime64(t, "ms"), **self._row(per_symbol, t)) for t in times]

    def seek(self, after: np.datetime64 | None) -> None:
        """Hand over, from now on, the bars after ``after`` (the last bar the loop processed,
        from its saved state); None: start again as new (the latest closed bar). ``history``
        moves this mark to its last bar: call ``seek`` after it to replay bars missed while
        the loop was down."""
        self._last_ms = None if after is None else int(np.datetime64(after, "ms").astype(np.int64))

    def close(self) -> None:
        """Close the HTTP session."""
        try:
            self._client.close()
        except Exception as err:  # nothing to lose at shutdown
            log.debug("closing the %s client: %s", self.exchange, err)
