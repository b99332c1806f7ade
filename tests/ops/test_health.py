"""``adan.ops.health``: real HTTP requests to a real server on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from adan.errors import LiveConfigError
from adan.ops.health import HealthConfig, HealthServer, TradingMetrics

ASSETS = ("BTC", "ETH")


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def samples(body: bytes) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of a Prometheus exposition."""
    out = {}
    for family in text_string_to_metric_families(body.decode("utf8")):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def status() -> dict:
    """The service's status, as the trading loop would keep it; tests change it in place."""
    return {
        "ready": True,
        "last_bar_time": "2026-12-06T00:00:00+00:00",
        "feed": "up",
        "breakers": {"feed": "closed", "broker": "closed"},
        "model_version": "ppo-abc123",
        "equity": 10_000.0,
    }


@pytest.fixture
def server(status):
    metrics = TradingMetrics(ASSETS)
    with HealthServer(metrics, lambda: status) as srv:
        yield srv


def test_health_is_200_when_ready_and_503_when_not(server, status):
    """A load balancer or a watchdog reads readiness from the status code alone."""
    code, headers, body = get(server.url + "/health")
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc == status
    assert {"ready", "last_bar_time", "feed", "breakers", "model_version", "equity"} <= set(doc)

    status["ready"] = False
    status["feed"] = "down"
    code, _, body = get(server.url + "/health")
    assert code == 503
    assert json.loads(body)["feed"] == "down"


def test_health_serialises_numpy_and_nan(server, status):
    """The loop's numbers are numpy scalars; NaN (no bar yet) must still give valid JSON."""
    status.update(equity=np.float64(10_500.25), units=np.array([0.5, 0.0]), drawdown=np.nan)
    status["ready"] = np.bool_(True)
    code, _, body = get(server.url + "/health")
    assert code == 200
    doc = json.loads(body)
    assert doc["equity"] == 10_500.25
    assert doc["units"] == [0.5, 0.0]
    assert doc["drawdown"] is None


def test_metrics_exposes_the_values_set(server):
    """Every metric the loop sets is scraped back with its value and labels."""
    m = server.metrics
    m.on_bar(
        equity=10_250.0,
        cash=2_000.0,
        drawdown=0.03,
        units={"BTC": 0.1, "ETH": 1.5},
        weights=np.array([0.4, 0.35]),
        exposure=0.75,
        bar_time_s=1_796_000_000.0,
    )
    m.on_bar(10_300.0, 2_000.0, 0.02, [0.1, 1.5], [0.41, 0.35], 0.76, 1_796_003_600.0)
    m.count_bar(1_796_000_000.0)
    m.count_bar(1_796_003_600.0)
    m.on_order(2)
    m.on_fill()
    m.on_alert("drawdown", "critical")
    m.on_alert("drawdown", "critical")
    m.on_error("FeedError")
    m.on_rejected("stale")
    m.set_breaker("feed", "half-open")
    m.set_breaker("broker", "open")
    m.set_feed_up(True)
    m.set_ready(True)
    m.observe_latency("bar", 1.2)
    m.observe_latency("decision", 0.004)
    m.observe_latency("decision", 0.006)

    code, headers, body = get(server.url + "/metrics")
    assert code == 200
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST
    s = samples(body)
    assert s[("adan_equity", ())] == 10_300.0
    assert s[("adan_cash", ())] == 2_000.0
    assert s[("adan_drawdown", ())] == pytest.approx(0.02)
    assert s[("adan_position_units", (("asset", "ETH"),))] == 1.5
    assert s[("adan_position_weight", (("asset", "BTC"),))] == pytest.approx(0.41)
    assert s[("adan_exposure", ())] == pytest.approx(0.76)
    assert s[("adan_last_bar_timestamp_seconds", ())] == 1_796_003_600.0
    assert s[("adan_feed_up", ())] == 1.0
    assert s[("adan_ready", ())] == 1.0
    assert s[("adan_breaker_state", (("service", "feed"),))] == 1.0
    assert s[("adan_breaker_state", (("service", "broker"),))] == 2.0
    assert s[("adan_bars_total", ())] == 2.0
    assert s[("adan_orders_total", ())] == 2.0
    assert s[("adan_fills_total", ())] == 1.0
    assert s[("adan_alerts_total", (("rule", "drawdown"), ("severity", "critical")))] == 2.0
    assert s[("adan_errors_total", (("kind", "FeedError"),))] == 1.0
    assert s[("adan_bars_rejected_total", (("reason", "stale"),))] == 1.0
    assert s[("adan_bar_latency_seconds_count", ())] == 1.0
    assert s[("adan_decision_latency_seconds_count", ())] == 2.0
    assert s[("adan_decision_latency_seconds_sum", ())] == pytest.approx(0.01)

    m.set_breaker("feed", "closed")
    assert samples(m.render())[("adan_breaker_state", (("service", "feed"),))] == 0.0


def test_metrics_start_at_zero_for_every_asset():
    """Positions show from the first scrape (an absent series reads as a broken exporter)."""
    s = samples(TradingMetrics(ASSETS).render())
    assert s[("adan_position_units", (("asset", "BTC"),))] == 0.0
    assert s[("adan_position_weight", (("asset", "ETH"),))] == 0.0
    assert s[("adan_ready", ())] == 0.0


def test_metrics_refuse_what_they_cannot_label():
    """A typo in a breaker state or a misaligned position vector must not be exported."""
    m = TradingMetrics(ASSETS)
    with pytest.raises(ValueError, match="breaker state"):
        m.set_breaker("feed", "ajar")
    with pytest.raises(ValueError, match="2 assets"):
        m.on_bar(1.0, 1.0, 0.0, [1.0], [1.0, 0.0], 1.0, 0.0)
    with pytest.raises(ValueError, match="unknown assets"):
        m.on_bar(1.0, 1.0, 0.0, {"DOGE": 1.0}, [0.0, 0.0], 0.0, 0.0)
    with pytest.raises(ValueError, match="latency kind"):
        m.observe_latency("fill", 0.1)
    with pytest.raises(ValueError, match="duplicate"):
        TradingMetrics(["BTC", "BTC"])


def test_two_metrics_instances_do_not_share_values():
    """Each instance has its own registry: two services in one process do not clash."""
    a, b = TradingMetrics(ASSETS), TradingMetrics(ASSETS)
    a.on_order(3)
    assert samples(a.render())[("adan_orders_total", ())] == 3.0
    assert samples(b.render())[("adan_orders_total", ())] == 0.0


def test_unknown_path_is_404(server):
    assert get(server.url + "/")[0] == 404
    assert get(server.url + "/admin")[0] == 404
    assert get(server.url + "/health?verbose=1")[0] == 200  # a query string is ignored


def test_failing_status_gives_500_and_the_server_keeps_serving(status):
    """A bug in the status function is a 500 naming the error, not a dead endpoint."""
    calls = {"n": 0}

    def flaky() -> dict:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RuntimeError("state lock poisoned")
        return status

    with HealthServer(TradingMetrics(ASSETS), flaky) as srv:
        for _ in range(2):
            code, _, body = get(srv.url + "/health")
            assert code == 500
            assert json.loads(body) == {"ready": False, "error": "RuntimeError"}
        assert get(srv.url + "/health")[0] == 200
        assert get(srv.url + "/metrics")[0] == 200


def test_status_that_is_not_a_dict_gives_500():
    with HealthServer(TradingMetrics(ASSETS), lambda: None) as srv:  # type: ignore[arg-type]
        code, _, body = get(srv.url + "/health")
    assert code == 500
    assert json.loads(body)["error"] == "TypeError"


def test_two_servers_at_once_on_different_ports(status):
    """port=0 gives each server a free port of its own, reported by .port and .url."""
    m1, m2 = TradingMetrics(ASSETS), TradingMetrics(["SOL"])
    m1.set_ready(True)
    other = dict(status, ready=False)
    with HealthServer(m1, lambda: status) as a, HealthServer(m2, lambda: other) as b:
        assert a.port != b.port and a.port > 0 and b.port > 0
        assert a.url == f"http://127.0.0.1:{a.port}"
        assert get(a.url + "/health")[0] == 200
        assert get(b.url + "/health")[0] == 503
        assert ("adan_ready", ()) in samples(get(a.url + "/metrics")[2])
        assert samples(get(a.url + "/metrics")[2])[("adan_ready", ())] == 1.0
        assert samples(get(b.url + "/metrics")[2])[("adan_ready", ())] == 0.0
        assert ("adan_position_units", (("asset", "SOL"),)) in samples(get(b.url + "/metrics")[2])


def test_stop_frees_the_port_and_a_busy_port_names_the_key(status):
    """After stop() the port can be bound again; binding a taken one is a config error."""
    srv = HealthServer(TradingMetrics(ASSETS), lambda: status).start()
    port = srv.port
    with pytest.raises(LiveConfigError, match="health.port"):
        HealthServer(TradingMetrics(ASSETS), lambda: status, port=port).start()
    srv.stop()
    srv.stop()  # idempotent
    with socket.create_server(("127.0.0.1", port)):
        pass
    again = HealthServer(TradingMetrics(ASSETS), lambda: status, port=port)
    with again:
        assert again.port == port
        assert get(again.url + "/health")[0] == 200


def test_requests_are_not_logged_to_stderr(server, capfd):
    """http.server writes a line per request to stderr; the service's console stays clean."""
    get(server.url + "/health")
    get(server.url + "/metrics")
    get(server.url + "/nope")
    assert capfd.readouterr().err == ""


def test_remote_host_needs_allow_remote():
    """The endpoints are unauthenticated: only loopback unless asked for explicitly."""
    m = TradingMetrics(ASSETS)
    with pytest.raises(LiveConfigError, match="health.host"):
        HealthServer(m, dict, host="0.0.0.0")
    with pytest.raises(LiveConfigError, match="health.host"):
        HealthServer(m, dict, host="example.org")
    HealthServer(m, dict, host="0.0.0.0", allow_remote=True)  # constructed, not bound
    HealthServer(m, dict, host="localhost")
    HealthServer(m, dict, host="::1")


def test_health_config_defaults_and_errors():
    """Each bad value names its key, as the rest of the live config does."""
    assert HealthConfig.from_mapping(None) == HealthConfig(True, "127.0.0.1", 8765, False)
    cfg = HealthConfig.from_mapping({"port": 0, "enabled": False})
    assert (cfg.enabled, cfg.port) == (False, 0)
    bad = [
        ({"port": 70000}, "health.port"),
        ({"port": -1}, "health.port"),
        ({"port": "8765"}, "health.port"),
        ({"port": True}, "health.port"),
        ({"enabled": "yes"}, "health.enabled"),
        ({"host": ""}, "health.host"),
        ({"host": "0.0.0.0"}, "health.host"),
        ({"prot": 1}, "health.prot"),
    ]
    for d, key in bad:
        with pytest.raises(LiveConfigError, match=key.replace(".", r"\.")):
            HealthConfig.from_mapping(d)
    remote = HealthConfig.from_mapping({"host": "0.0.0.0", "allow_remote": True})
    assert remote.host == "0.0.0.0"


def test_health_config_builds_a_server(status):
    cfg = HealthConfig.from_mapping({"port": 0})
    with cfg.server(TradingMetrics(ASSETS), lambda: status) as srv:
        assert get(srv.url + "/health")[0] == 200
