"""Health and Prometheus metrics of the paper-trading service, over HTTP on localhost.

:class:`TradingMetrics` holds the service's gauges, counters and latency histograms in a
registry of its own (never prometheus_client's global one, so two services or two tests in one
process do not clash); :class:`HealthServer` serves them in a daemon thread:

- ``GET /health``: the service's status as JSON (``ready``, ``last_bar_time``, ``feed``,
  ``breakers``, ``model_version``, ``equity``, ...), HTTP 200 when ready, 503 when not, 500
  (with the error's class name) when the status itself fails;
- ``GET /metrics``: the Prometheus text exposition of the registry;
- anything else: 404.

It binds 127.0.0.1 unless told otherwise, and refuses an address reachable from other
machines unless ``allow_remote=True``: the endpoints are unauthenticated.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from adan.errors import LiveConfigError
from adan.ops.json_logging import to_jsonable

log = logging.getLogger(__name__)

# adan_breaker_state: pybreaker's state names (and spellings of them) -> the gauge's value
BREAKER_STATES: dict[str, int] = {"closed": 0, "half-open": 1, "open": 2}
_BREAKER_ALIASES = {"half_open": "half-open", "halfopen": "half-open", "half open": "half-open"}

# processing a bar (features over the whole history, the fill, the decision, the commit) takes
# milliseconds to a second; a policy forward takes milliseconds
_BAR_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
_DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

DEFAULT_PORT = 8765


class TradingMetrics:
    """The paper-trading service's Prometheus metrics, in a private registry.

    Gauges: ``adan_equity``, ``adan_cash``, ``adan_drawdown``, ``adan_position_units{asset}``,
    ``adan_position_weight{asset}``, ``adan_exposure``, ``adan_last_bar_timestamp_seconds``,
    ``adan_feed_up``, ``adan_breaker_state{service}`` (0 closed, 1 half-open, 2 open),
    ``adan_ready``. Counters: ``adan_bars_total``, ``adan_orders_total``, ``adan_fills_total``,
    ``adan_alerts_total{rule,severity}``, ``adan_errors_total{kind}``,
    ``adan_bars_rejected_total{reason}``. Histograms: ``adan_bar_latency_seconds`` (bar received
    to state committed), ``adan_decision_latency_seconds`` (policy forward). Thread-safe."""

    def __init__(self, assets: Sequence[str]) -> None:
        self.assets: tuple[str, ...] = tuple(str(a) for a in assets)
        if len(set(self.assets)) != len(self.assets):
            raise ValueError(f"duplicate asset names: {list(self.assets)}")
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.equity = Gauge("adan_equity", "Portfolio equity (quote currency)", registry=r)
        self.cash = Gauge("adan_cash", "Cash held (quote currency)", registry=r)
        self.drawdown = Gauge(
            "adan_drawdown", "Drawdown from the equity peak (fraction, >= 0)", registry=r
        )
        self.position_units = Gauge(
            "adan_position_units", "Units held per asset", ["asset"], registry=r
        )
        self.position_weight = Gauge(
            "adan_position_weight", "Position value / equity per asset", ["asset"], registry=r
        )
        self.exposure = Gauge("adan_exposure", "Gross exposure (sum of |weights|)", registry=r)
        self.last_bar = Gauge(
            "adan_last_bar_timestamp_seconds",
            "Close time of the last bar processed (Unix seconds)",
            registry=r,
        )
        self.feed_up = Gauge("adan_feed_up", "1 when the bar feed answers, else 0", registry=r)
        self.breaker_state = Gauge(
            "adan_breaker_state",
            "Circuit breaker per service: 0 closed, 1 half-open, 2 open",
            ["service"],
            registry=r,
        )
        self.ready = Gauge("adan_ready", "1 when the service is ready to trade, else 0", registry=r)
        self.bars = Counter("adan_bars_total", "Bars processed", registry=r)
        self.orders = Counter("adan_orders_total", "Orders sent", registry=r)
        self.fills = Counter("adan_fills_total", "Fills received", registry=r)
        self.alerts = Counter(
            "adan_alerts_total", "Alerts raised", ["rule", "severity"], registry=r
        )
        self.errors = Counter("adan_errors_total", "Errors by kind", ["kind"], registry=r)
        self.bars_rejected = Counter(
            "adan_bars_rejected_total", "Bars refused, by reason", ["reason"], registry=r
        )
        self.bar_latency = Histogram(
            "adan_bar_latency_seconds",
            "Bar received to its state committed: features, fill, decision (seconds)",
            buckets=_BAR_BUCKETS,
            registry=r,
        )
        self.decision_latency = Histogram(
            "adan_decision_latency_seconds",
            "Policy forward pass (seconds)",
            buckets=_DECISION_BUCKETS,
            registry=r,
        )
        self._latency = {"bar": self.bar_latency, "decision": self.decision_latency}
        for asset in self.assets:  # every asset shows from the start, at 0
            self.position_units.labels(asset=asset).set(0.0)
            self.position_weight.labels(asset=asset).set(0.0)

    def _per_asset(self, name: str, values: Mapping[str, float] | Sequence[float]) -> dict:
        if isinstance(values, Mapping):
            unknown = sorted(set(map(str, values)) - set(self.assets))
            if unknown:
                raise ValueError(f"{name}: unknown assets {unknown} (known: {list(self.assets)})")
            return {str(k): float(v) for k, v in values.items()}
        values = list(values)  # a sequence or a numpy array, in the order of ``assets``
        if len(values) != len(self.assets):
            raise ValueError(f"{name}: {len(values)} values for {len(self.assets)} assets")
        return {a: float(v) for a, v in zip(self.assets, values, strict=True)}

    def on_bar(
        self,
        equity: float,
        cash: float,
        drawdown: float,
        units: Mapping[str, float] | Sequence[float],
        weights: Mapping[str, float] | Sequence[float],
        exposure: float,
        bar_time_s: float,
    ) -> None:
        """The portfolio after a bar; ``units``/``weights`` by asset name or
        in the order of ``assets``; ``bar_time_s`` the bar's close (Unix seconds)."""
        per_units = self._per_asset("units", units)
        per_weights = self._per_asset("weights", weights)
        self.equity.set(float(equity))
        self.cash.set(float(cash))
        self.drawdown.set(float(drawdown))
        for asset, value in per_units.items():
            self.position_units.labels(asset=asset).set(value)
        for asset, value in per_weights.items():
            self.position_weight.labels(asset=asset).set(value)
        self.exposure.set(float(exposure))
        self.last_bar.set(float(bar_time_s))

    def count_bar(self, bar_time_s: float) -> None:
        """A bar was traded (warm-up and gap-filled bars too, unlike ``on_bar``, which needs
        a book to show)."""
        self.last_bar.set(float(bar_time_s))
        self.bars.inc()

    def on_order(self, n: int = 1) -> None:
        self.orders.inc(n)

    def on_fill(self, n: int = 1) -> None:
        self.fills.inc(n)

    def on_alert(self, rule: str, severity: str) -> None:
        self.alerts.labels(rule=str(rule), severity=str(severity)).inc()

    def on_error(self, kind: str) -> None:
        """An error of ``kind`` (e.g. the exception's class name, or ``feed``/``broker``)."""
        self.errors.labels(kind=str(kind)).inc()

    def on_rejected(self, reason: str) -> None:
        """A bar refused (``stale``, ``nan``, ``out_of_order``, ...)."""
        self.bars_rejected.labels(reason=str(reason)).inc()

    def set_breaker(self, service: str, state_str: str) -> None:
        """``service``'s circuit breaker is ``closed``, ``half-open`` or ``open`` (pybreaker's
        ``current_state`` names; ``half_open`` also accepted)."""
        state = str(state_str).strip().lower()
        state = _BREAKER_ALIASES.get(state, state)
        if state not in BREAKER_STATES:
            raise ValueError(
                f"breaker state {state_str!r} for {service!r}: expected one of "
                f"{', '.join(BREAKER_STATES)}"
            )
        self.breaker_state.labels(service=str(service)).set(BREAKER_STATES[state])

    def set_feed_up(self, up: bool) -> None:
        self.feed_up.set(1.0 if up else 0.0)

    def set_ready(self, ready: bool) -> None:
        self.ready.set(1.0 if ready else 0.0)

    def observe_latency(self, kind: str, seconds: float) -> None:
        """``kind``: ``bar`` (bar received to its state committed) or ``decision`` (policy forward)."""
        try:
            histogram = self._latency[kind]
        except KeyError:
            raise ValueError(
                f"latency kind {kind!r}: expected one of {', '.join(self._latency)}"
            ) from None
        histogram.observe(max(0.0, float(seconds)))

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry (what ``/metrics`` serves)."""
        return generate_latest(self.registry)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another name: it may resolve to anything


def _check_host(host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback(host):
        raise LiveConfigError(
            f"health.host={host!r} is not a loopback address: /health and /metrics have no "
            "authentication, so they bind 127.0.0.1 unless health.allow_remote=true "
            "(then put them behind a firewall or an authenticating proxy)"
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: HealthServer) -> None:
        self.owner = owner
        host = address[0].strip("[]")
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, address[1]), _Handler)

    def server_bind(self) -> None:
        # HTTPServer's looks the host's name up (socket.getfqdn), which can stall on DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up mid-answer: a debug line, not a traceback on stderr
        log.debug("health: error answering %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that connects and sends nothing does not hold a thread forever
    server_version = "adan-health"
    sys_version = ""

    def do_GET(self) -> None:  # http.server's name
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        owner = self.server.owner
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if path == "/health":
            status, body, ctype = owner._health()
        elif path == "/metrics":
            status, body, ctype = owner._metrics()
        else:
            status, body, ctype = HTTPStatus.NOT_FOUND, _json({"error": "not found"}), _JSON
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health: %s " + format, self.address_string(), *args)


_JSON = "application/json"


def _json(obj: Any) -> bytes:
    return json.dumps(to_jsonable(obj), allow_nan=False).encode("utf8")


class HealthServer:
    """``/health`` and ``/metrics`` over HTTP, from a daemon thread.

    ``status()`` is called for each ``/health`` request (from the server's thread: it should
    read a snapshot, not block); its ``ready`` decides 200 or 503. ``port=0`` takes a free
    port; :attr:`port` and :attr:`url` give the real one once started. Use as a context
    manager, or :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        metrics: TradingMetrics,
        status: Callable[[], dict],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        allow_remote: bool = False,
    ) -> None:
        _check_host(host, allow_remote)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise LiveConfigError(f"health.port must be an integer in 0..65535, got {port!r}")
        self.metrics = metrics
        self.status = status
        self.host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._status_error: str | None = None

    @property
    def port(self) -> int:
        """The port served (the one the system gave when 0 was asked, once started)."""
        return self._server.server_address[1] if self._server is not None else self._port

    @property
    def url(self) -> str:
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> HealthServer:
        """Bind and serve; a port already in use raises :class:`LiveConfigError`."""
        with self._lock:
            if self._server is not None:
                return self
            try:
                server = _Server((self.host, self._port), self)
            except OSError as err:
                raise LiveConfigError(
                    f"health.port={self._port} on {self.host} cannot be bound "
                    f"({err.strerror or err}): choose another port (0: any free one)"
                ) from err
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.2},
                name=f"adan-health-{self.port}",
                daemon=True,
            )
            self._thread.start()
        log.info("health: serving %s/health and %s/metrics", self.url, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _health(self) -> tuple[int, bytes, str]:
        try:
            status = self.status()
            if not isinstance(status, Mapping):
                raise TypeError(f"status() returned {type(status).__name__}, not a dict")
            body = _json(status)
        except Exception as err:
            # once per run of failures of one kind: a probe every few seconds must not flood
            name = type(err).__name__
            log.log(
                logging.DEBUG if name == self._status_error else logging.ERROR,
                "health: status() failed, /health answers 500",
                exc_info=True,
            )
            self._status_error = name
            return (
                HTTPStatus.INTERNAL_SERVER_ERROR,
                _json({"ready": False, "error": name}),
                _JSON,
            )
        self._status_error = None
        ready = to_jsonable(status.get("ready")) is True
        return (HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE), body, _JSON

    def _metrics(self) -> tuple[int, bytes, str]:
        try:
            return HTTPStatus.OK, self.metrics.render(), CONTENT_TYPE_LATEST
        except Exception as err:
            log.error("health: rendering the metrics failed", exc_info=True)
            return HTTPStatus.INTERNAL_SERVER_ERROR, _json({"error": type(err).__name__}), _JSON


@dataclass(frozen=True)
class HealthConfig:
    """The ``health:`` block of a live run: serve ``/health`` and ``/metrics`` on
    ``host:port`` (port 0: any free one) when ``enabled``; a non-loopback ``host`` needs
    ``allow_remote: true``."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow_remote: bool = False

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> HealthConfig:
        """Validated settings from ``d`` (missing keys: the defaults); a bad or unknown key
        raises :class:`LiveConfigError` naming ``health.<key>``."""
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise LiveConfigError(f"health must be a mapping of settings, got {d!r}")
        known = ("enabled", "host", "port", "allow_remote")
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise LiveConfigError(
                f"health.{unknown[0]} is not a setting (known: {', '.join(known)})"
            )
        out = cls()
        enabled = d.get("enabled", out.enabled)
        allow_remote = d.get("allow_remote", out.allow_remote)
        host = d.get("host", out.host)
        port = d.get("port", out.port)
        for key, value in (("enabled", enabled), ("allow_remote", allow_remote)):
            if not isinstance(value, bool):
                raise LiveConfigError(f"health.{key} must be true or false, got {value!r}")
        if not isinstance(host, str) or not host.strip():
            raise LiveConfigError(f"health.host must be a host name or address, got {host!r}")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise LiveConfigError(
                f"health.port must be an integer in 0..65535 (0: any free port), got {port!r}"
            )
        _check_host(host, allow_remote)
        return cls(enabled=enabled, host=host.strip(), port=port, allow_remote=allow_remote)

    def server(self, metrics: TradingMetrics, status: Callable[[], dict]) -> HealthServer:
        """A :class:`HealthServer` with these settings (not started)."""
        return HealthServer(metrics, status, self.host, self.port, allow_remote=self.allow_remote)
