"""Retries, circuit breaker and escalation: the policies' validation, the guard's rules on plain
functions, then the exchange feed against a local server that fails, stalls and recovers on
command (request counts show what reached it)."""

from __future__ import annotations

import time

import pytest

from adan.errors import (
    BrokerError,
    FeedError,
    LiveConfigError,
    LiveDataError,
    ModelError,
    TradingError,
)
from adan.ops.feeds.exchange import ExchangeFeed
from adan.ops.resilience import (
    CircuitOpenError,
    CircuitPolicy,
    Escalation,
    ResilienceConfig,
    RetryPolicy,
    ServiceGuard,
    is_critical,
)
from tests.ops.kline_server import HOUR_MS, KlineServer, hourly_rows, loopback_only, to_ms

pytestmark = pytest.mark.timeout(60)

RESET_S = 60.0  # the breaker's reset timeout, on a fake clock: no test waits for it


class Clock:
    """A monotonic clock the test moves by hand (the guard's ``clock``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sleeps(list):
    """A ``sleep`` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Flaky:
    """A service failing with ``errors`` in turn, then answering ``"ok"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def guard(**kw) -> tuple[ServiceGuard, Sleeps, list]:
    """A guard named "feed" (3 attempts, 0.1 s doubling; opens after 3 failures) on a fake
    clock (``g.test_clock``), with its sleeps and state changes recorded."""
    sleeps, changes = Sleeps(), []
    retry = kw.pop("retry", RetryPolicy(attempts=3, initial_s=0.1, multiplier=2, jitter_s=0))
    breaker = kw.pop("breaker", CircuitPolicy(fail_max=3, reset_timeout_s=RESET_S))
    clock = kw.pop("clock", Clock())
    g = ServiceGuard(
        "feed",
        retry,
        breaker,
        sleep=sleeps,
        clock=clock,
        on_state_change=lambda *change: changes.append(change),
        **kw,
    )
    g.test_clock = clock
    return g, sleeps, changes


# ----------------------------------------------------------------------------- policies
@pytest.mark.parametrize(
    ("section", "values", "key"),
    [
        ("retry", {"attempts": 0}, "resilience.retry.attempts"),
        ("retry", {"attempts": 2.5}, "resilience.retry.attempts"),
        ("retry", {"initial_s": -1}, "resilience.retry.initial_s"),
        ("retry", {"initial_s": 5, "max_s": 1}, "resilience.retry.max_s"),
        ("retry", {"multiplier": 0.5}, "resilience.retry.multiplier"),
        ("retry", {"jitter_s": float("nan")}, "resilience.retry.jitter_s"),
        ("retry", {"tries": 3}, "resilience.retry.tries"),
        ("breaker", {"fail_max": 0}, "resilience.breaker.fail_max"),
        ("breaker", {"reset_timeout_s": 0}, "resilience.breaker.reset_timeout_s"),
        ("breaker", {"success_threshold": True}, "resilience.breaker.success_threshold"),
        (
            "escalation",
            {"max_consecutive_failures": 0},
            "resilience.escalation.max_consecutive_failures",
        ),
        ("escalation", {"action": "panic"}, "resilience.escalation.action"),
    ],
)
def test_invalid_settings_name_their_key(section, values, key):
    with pytest.raises(LiveConfigError, match=rf"^{key.replace('.', '[.]')}\b"):
        ResilienceConfig.from_mapping({section: values})


def test_config_defaults_and_unknown_keys():
    cfg = ResilienceConfig.from_mapping(None)
    assert cfg.retry == RetryPolicy(attempts=5, initial_s=0.5, max_s=30, multiplier=2, jitter_s=0.5)
    assert cfg.breaker == CircuitPolicy(fail_max=5, reset_timeout_s=60, success_threshold=1)
    assert (cfg.escalation.max_consecutive_failures, cfg.escalation.action) == (
        3,
        "flatten_and_wait",
    )
    cfg = ResilienceConfig.from_mapping(
        {"retry": {"attempts": 2}, "escalation": {"action": "wait"}}
    )
    assert cfg.retry.attempts == 2 and cfg.retry.max_s == 30 and cfg.escalation.action == "wait"
    with pytest.raises(
        LiveConfigError,
        match="resilience.retries is not a setting; valid keys: retry, breaker, escalation",
    ):
        ResilienceConfig.from_mapping({"retries": {}})
    with pytest.raises(LiveConfigError, match=r"resilience\.breaker must be a mapping"):
        ResilienceConfig.from_mapping({"breaker": 5})
    assert [RetryPolicy().backoff_s(n) for n in (1, 2, 3, 10)] == [0.5, 1.0, 2.0, 30.0]
    assert cfg.guard("broker").name == "broker"


# ----------------------------------------------------------------------------- the guard
def test_transient_errors_are_retried_with_exponential_backoff():
    retries = []
    g, sleeps, _ = guard(
        retry=RetryPolicy(attempts=5, initial_s=0.1, max_s=0.3, multiplier=2, jitter_s=0),
        breaker=CircuitPolicy(fail_max=10),
        on_retry=lambda *r: retries.append(r),
    )
    fn = Flaky(FeedError("500"), FeedError("503"), BrokerError("timeout"), FeedError("500"))
    assert g.call(fn) == "ok"
    assert fn.calls == 5
    assert sleeps == pytest.approx([0.1, 0.2, 0.3, 0.3])  # doubled, capped at max_s
    assert [(r[0], r[1], type(r[2])) for r in retries] == [
        ("feed", 1, FeedError),
        ("feed", 2, FeedError),
        ("feed", 3, BrokerError),
        ("feed", 4, FeedError),
    ]
    assert g.retries == 4 and g.state == "closed" and g.failures == 0


def test_jitter_adds_up_to_jitter_s():
    g, sleeps, _ = guard(
        retry=RetryPolicy(attempts=4, initial_s=0.1, multiplier=1, max_s=0.1, jitter_s=0.05),
        breaker=CircuitPolicy(fail_max=10),
    )
    g.call(Flaky(FeedError("a"), FeedError("b"), FeedError("c")))
    assert len(sleeps) == 3 and all(0.1 <= s <= 0.15 for s in sleeps)


def test_retries_give_up_after_attempts_with_the_last_error():
    g, sleeps, _ = guard(breaker=CircuitPolicy(fail_max=10))
    fn = Flaky(*(FeedError(f"down {i}") for i in range(5)))
    with pytest.raises(FeedError, match="down 2"):
        g.call(fn)
    assert fn.calls == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    "err",
    [
        FeedError("bad symbol", retryable=False),
        LiveDataError("malformed bar"),
        ModelError("NaN action"),
        ValueError("a bug"),
    ],
)
def test_non_retryable_errors_propagate_at_once(err):
    g, sleeps, _ = guard()
    fn = Flaky(err)
    with pytest.raises(type(err)):
        g.call(fn)
    assert fn.calls == 1 and sleeps == []
    assert Escalation().failure("feed", err) == "flatten_and_wait"  # critical: at once


def test_os_errors_are_mapped_to_the_guard_error_and_retried():
    g, sleeps, _ = guard(error=BrokerError, breaker=CircuitPolicy(fail_max=10))
    assert g.call(Flaky(TimeoutError("read timed out"), ConnectionResetError("reset"))) == "ok"
    assert len(sleeps) == 2
    g2, _, _ = guard(error=BrokerError, retry=RetryPolicy(attempts=1))
    with pytest.raises(BrokerError, match="feed: TimeoutError: read timed out") as e:
        g2.call(Flaky(TimeoutError("read timed out")))
    assert e.value.retryable and isinstance(e.value.__cause__, TimeoutError)


def test_the_circuit_opens_refuses_then_probes():
    g, sleeps, changes = guard()  # 3 attempts, opens after 3 failures
    fn = Flaky(*(FeedError("500") for _ in range(4)))
    with pytest.raises(
        CircuitOpenError, match="feed: circuit opened after: 500; next probe in 60.0 s"
    ) as e:
        g.call(fn)
    assert isinstance(e.value.__cause__, FeedError) and not e.value.retryable
    assert fn.calls == 3 and g.state == "open" and e.value.retry_in_s == RESET_S
    g.test_clock.advance(RESET_S - 1)
    with pytest.raises(
        CircuitOpenError, match="feed: circuit open, call refused; next probe in 1.0 s"
    ) as e:
        g.call(fn)
    assert fn.calls == 3 and g.rejected == 1  # refused without calling the service
    assert e.value.retry_in_s == pytest.approx(1.0) and len(sleeps) == 2
    g.test_clock.advance(1)
    assert g.retry_in_s() == 0 and g.state == "open"  # open until a call probes it
    with pytest.raises(CircuitOpenError):  # the probe fails: open again, no retry
        g.call(fn)
    assert fn.calls == 4 and g.state == "open" and len(sleeps) == 2
    g.test_clock.advance(RESET_S)
    assert g.call(fn) == "ok" and g.state == "closed"
    assert changes == [
        ("feed", "closed", "open"),
        ("feed", "open", "half-open"),
        ("feed", "half-open", "open"),
        ("feed", "open", "half-open"),
        ("feed", "half-open", "closed"),
    ]


def test_success_threshold_probes_before_closing():
    g, _, changes = guard(breaker=CircuitPolicy(fail_max=1, reset_timeout_s=5, success_threshold=2))
    with pytest.raises(CircuitOpenError):
        g.call(Flaky(FeedError("down")))
    g.test_clock.advance(5)
    assert g.call(Flaky()) == "ok" and g.state == "half-open"
    assert g.call(Flaky()) == "ok" and g.state == "closed"
    assert [c[2] for c in changes] == ["open", "half-open", "closed"]


def test_a_failing_state_callback_does_not_break_the_call():
    def boom(*_):
        raise RuntimeError("alert channel down")

    g = ServiceGuard(
        "feed",
        RetryPolicy(attempts=1),
        CircuitPolicy(fail_max=1),
        on_state_change=boom,
        sleep=Sleeps(),
    )
    with pytest.raises(CircuitOpenError):
        g.call(Flaky(FeedError("x")))
    assert g.state == "open"


# ----------------------------------------------------------------------------- escalation
def test_escalation_after_max_consecutive_failures_per_service():
    esc = Escalation(max_consecutive_failures=3, action="flatten_and_stop")
    down = FeedError("503")
    assert [esc.failure("feed", down) for _ in range(2)] == [None, None]
    assert esc.failure("broker", BrokerError("timeout")) is None  # counted apart
    assert esc.failure("feed", down) == "flatten_and_stop"
    assert esc.failure("feed", down) == "flatten_and_stop"  # still down: still escalated
    esc.success("feed")
    assert esc.failures("feed") == 0 and esc.failure("feed", down) is None
    assert esc.failures("broker") == 1


def test_an_open_circuit_counts_as_a_failure_not_a_critical_error():
    assert not is_critical(CircuitOpenError("open", service="feed"))
    assert not is_critical(FeedError("timeout"))
    assert is_critical(FeedError("bad symbol", retryable=False))
    assert is_critical(TradingError("generic"))
    assert is_critical(KeyError("bug"))
    esc = Escalation(max_consecutive_failures=2, action="wait")
    assert esc.failure("feed", CircuitOpenError("open", service="feed")) is None
    assert esc.failure("feed", CircuitOpenError("open", service="feed")) == "wait"


# ----------------------------------------------------------------------------- against a server
T0 = to_ms("2024-01-01T00:00")
NOW_S = (T0 + 24 * HOUR_MS + 600_000) / 1000


@pytest.fixture
def server():
    pytest.importorskip("ccxt")  # the feed's optional dependency (adan[exchange])
    with loopback_only(), KlineServer() as srv:
        srv.add_bars("BTCUSDT", hourly_rows(T0, 24))
        yield srv


def guarded_feed(srv, *, attempts=3, fail_max=3, timeout_s=2.0, reset_s=RESET_S, clock=None):
    """A one-symbol feed on ``srv`` through a guard, markets already loaded; the guard runs on
    a fake clock (``g.test_clock``) unless given one (``time.monotonic``: real time)."""
    sleeps, changes = Sleeps(), []
    g = ServiceGuard(
        "feed",
        RetryPolicy(attempts=attempts, initial_s=0.05, multiplier=2, jitter_s=0.01),
        CircuitPolicy(fail_max=fail_max, reset_timeout_s=reset_s),
        sleep=sleeps,
        clock=clock if clock is not None else Clock(),
        on_state_change=lambda *change: changes.append(change[1:]),
        error=FeedError,
    )
    g.test_clock = g._clock
    feed = ExchangeFeed(
        "binance",
        ["BTC/USDT"],
        api_url=srv.api_url,
        guard=g,
        clock=lambda: NOW_S,
        timeout_s=timeout_s,
    )
    feed._load_markets()  # exchangeInfo first, so the counts below are klines only
    return feed, g, sleeps, changes


def test_transient_server_errors_are_retried_until_the_server_answers(server):
    feed, g, sleeps, _ = guarded_feed(server, attempts=4, fail_max=10)
    server.set_mode("fail", times=2, status=500)
    bars = feed.poll()
    assert [b.close[0] for b in bars] == [124.0]
    assert server.kline_requests == 3  # two 500s, then the answer
    assert len(sleeps) == 2 and 0.05 <= sleeps[0] <= 0.06 and 0.1 <= sleeps[1] <= 0.11
    assert g.state == "closed"


def test_a_stalled_server_times_out_and_is_retried(server):
    feed, g, sleeps, _ = guarded_feed(server, fail_max=10, timeout_s=0.3)
    server.set_mode("stall", times=1, seconds=2.0)
    start = time.monotonic()
    bars = feed.poll()
    assert len(bars) == 1 and server.kline_requests == 2 and len(sleeps) == 1
    assert time.monotonic() - start < 1.5  # gave up on the stalled request after ~0.3 s


def test_persistent_failure_opens_the_circuit_and_stops_hitting_the_server(server):
    feed, g, sleeps, changes = guarded_feed(server)
    esc = Escalation(max_consecutive_failures=2, action="flatten_and_wait")
    server.set_mode("fail", status=503)
    with pytest.raises(CircuitOpenError) as e:
        feed.poll()
    assert isinstance(e.value.__cause__, FeedError) and "503" in str(e.value.__cause__)
    assert server.kline_requests == 3 and g.state == "open"
    assert esc.failure("feed", e.value) is None
    for _ in range(3):  # refused at once: the server sees nothing more
        with pytest.raises(CircuitOpenError) as e:
            feed.poll()
    assert server.kline_requests == 3
    assert esc.failure("feed", e.value) == "flatten_and_wait"
    assert changes == [("closed", "open")]


def test_the_half_open_probe_closes_the_circuit_once_the_server_recovered(server):
    feed, g, _, changes = guarded_feed(server)
    server.set_mode("fail", status=500)
    with pytest.raises(CircuitOpenError):
        feed.poll()
    server.set_mode("ok")
    with pytest.raises(CircuitOpenError):  # recovered, but the reset timeout has not passed
        feed.poll()
    assert server.kline_requests == 3
    g.test_clock.advance(RESET_S)
    assert len(feed.poll()) == 1  # the probe
    assert server.kline_requests == 4 and g.state == "closed"
    assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


def test_the_half_open_probe_reopens_the_circuit_when_still_failing(server):
    feed, g, sleeps, changes = guarded_feed(server)
    server.set_mode("fail", status=503)
    with pytest.raises(CircuitOpenError):
        feed.poll()
    g.test_clock.advance(RESET_S)
    n_sleeps = len(sleeps)
    with pytest.raises(CircuitOpenError):
        feed.poll()
    assert server.kline_requests == 4  # exactly one probe, not retried
    assert len(sleeps) == n_sleeps and g.state == "open"
    assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "open")]


def test_a_rejected_request_is_not_retried_and_escalates_at_once(server):
    feed, g, sleeps, _ = guarded_feed(server)
    server.set_mode("reject")
    with pytest.raises(FeedError) as e:
        feed.poll()
    assert not e.value.retryable and server.kline_requests == 1 and sleeps == []
    assert Escalation(action="flatten_and_stop").failure("feed", e.value) == "flatten_and_stop"


def test_the_breaker_runs_on_real_time_by_default(server):
    """pybreaker's own clock path, without a fake: a 0.2 s reset timeout really waited."""
    feed, g, _, changes = guarded_feed(server, reset_s=0.2, clock=time.monotonic)
    server.set_mode("fail", status=500)
    with pytest.raises(CircuitOpenError):
        feed.poll()
    server.set_mode("ok")
    with pytest.raises(CircuitOpenError):
        feed.poll()
    time.sleep(0.25)
    assert len(feed.poll()) == 1 and g.state == "closed"
    assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]
