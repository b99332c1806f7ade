"""Alerts reach real servers on 127.0.0.1 (an HTTP server for the Slack-compatible webhook, an
aiosmtpd SMTP server for e-mail); a channel that fails or hangs never holds up the loop and
its failures are counted; the webhook URL and the SMTP password show nowhere."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from adan.errors import LiveConfigError
from adan.ops.alerts import Alert, AlertManager, AlertsConfig
from adan.ops.channels import (
    ChannelError,
    EmailChannel,
    WebhookChannel,
    build_channels,
    check_channels_spec,
)

URL_VAR, PW_VAR = "ADAN_ALERT_WEBHOOK_URL", "ADAN_ALERT_SMTP_PASSWORD"
TOKEN, PASSWORD = "s3cr3t-token", "hunter2-pw"
pytestmark = pytest.mark.timeout(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """A real HTTP server recording each POST; answers ``status``, or with ``stall`` holds the
    answer until the test ends (longer than any channel timeout)."""

    def __init__(self, status: int = 200, stall: bool = False) -> None:
        self.posts: list[dict] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append(
                    {
                        "path": self.path,
                        "type": self.headers["Content-Type"],
                        "json": json.loads(body),
                    }
                )
                if stall:
                    outer.release.wait(20)
                with contextlib.suppress(OSError):  # a client that timed out has gone
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/{TOKEN}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def webhook(monkeypatch, **kw) -> Iterator[Webhook]:
    server = Webhook(**kw)
    monkeypatch.setenv(URL_VAR, server.url)
    try:
        yield server
    finally:
        server.close()


class Inbox:
    """aiosmtpd handler keeping each delivered envelope."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"adan", PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@contextlib.contextmanager
def smtp_server(auth: bool = False) -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on a free port of 127.0.0.1 (AUTH without TLS when ``auth``)."""
    inbox = Inbox()
    kw = {"authenticator": _authenticator, "auth_require_tls": False} if auth else {}
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kw)
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


def alerts_config(queue_size: int = 10, **rules) -> AlertsConfig:
    """Cooldowns 0: every bar's alert fires, to load the channels."""
    spec = {n: {"cooldown_s": 0, **rules.get(n, {})} for n in AlertsConfig().rules}
    return AlertsConfig.from_mapping({"rules": spec, "queue_size": queue_size})


def loud_bar(i: int = 0) -> dict:
    """A bar that fires nan, drawdown and limit_hit."""
    return {
        "time": f"2024-01-01T{i % 24:02d}:00:00",
        "equity": 80.0,
        "drawdown": 0.2,
        "bar_return": 0.0,
        "volume": [1.0],
        "assets": ["BTC"],
        "risk_clipped": True,
        "nan_features": False,
        "nan_actions": True,
    }


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def timed(fn, *args) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


# ----------------------------------------------------------------------------- delivery
def test_webhook_posts_a_slack_compatible_payload(monkeypatch):
    with webhook(monkeypatch) as server:
        channel = WebhookChannel(URL_VAR, timeout_s=2)
        with AlertManager(alerts_config(), [channel]) as m:
            m.event("kill_switch", "kill switch engaged", reason="drawdown")
            assert m.flush(5)
            assert m.delivery == {"webhook": {"sent": 1, "failed": 0, "dropped": 0}}
    (post,) = server.posts
    assert post["path"] == f"/services/T000/B000/{TOKEN}"
    assert post["type"] == "application/json"
    payload = post["json"]
    assert payload["text"].startswith("[CRITICAL] kill_switch: kill switch engaged")
    assert payload["blocks"][0]["type"] == "section"
    assert "kill_switch" in payload["blocks"][0]["text"]["text"]
    assert "reason=drawdown" in payload["blocks"][1]["elements"][0]["text"]
    assert payload["alert"]["rule"] == "kill_switch"
    assert payload["alert"]["severity"] == "critical"
    assert payload["alert"]["values"] == {"reason": "drawdown"}


def test_email_reaches_every_recipient_with_severity_and_rule_in_the_subject():
    with smtp_server() as (port, inbox):
        channel = EmailChannel(
            "127.0.0.1", port, "adan@example.org", ["ops@example.org", "risk@example.org"]
        )
        with AlertManager(alerts_config(drawdown={"threshold": 0.1}), [channel]) as m:
            fired = m.observe_bar({**loud_bar(), "risk_clipped": False, "nan_actions": False})
            assert [a.rule for a in fired] == ["drawdown"]
            assert m.flush(5)
            assert m.delivery["email"]["sent"] == 1
    (env,) = inbox.envelopes
    assert env.mail_from == "adan@example.org"
    assert env.rcpt_tos == ["ops@example.org", "risk@example.org"]
    msg = email.message_from_bytes(env.content, policy=email.policy.default)
    assert msg["Subject"] == "[ADAN WARNING] drawdown: drawdown 20.00% >= 10.00%"
    assert msg["To"] == "ops@example.org, risk@example.org"
    body = msg.get_content()
    assert "ADAN alert: drawdown (warning)" in body
    assert "key: drawdown" in body and "time: 2024-01-01T00:00:00" in body
    assert "drawdown: 0.2" in body and "threshold: 0.1" in body


def test_email_logs_in_with_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv(PW_VAR, PASSWORD)
    with smtp_server(auth=True) as (port, inbox):
        good = EmailChannel(
            "127.0.0.1", port, "adan@example.org", "ops@example.org", "adan", PW_VAR
        )
        good.send(Alert("kill_switch", "critical", "engaged", "kill_switch", "2024-01-01"))
        assert len(inbox.envelopes) == 1
        monkeypatch.setenv(PW_VAR, "wrong")
        bad = EmailChannel("127.0.0.1", port, "adan@example.org", "ops@example.org", "adan", PW_VAR)
        with pytest.raises(ChannelError, match="SMTPAuthenticationError"):
            bad.send(Alert("kill_switch", "critical", "engaged", "kill_switch", "2024-01-01"))
        assert len(inbox.envelopes) == 1


# ----------------------------------------------------------------------------- failures
def test_a_failing_webhook_is_counted_and_logged_and_costs_the_loop_nothing(monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="adan.trade.alerts")
    with webhook(monkeypatch, status=500) as server:
        with AlertManager(alerts_config(), [WebhookChannel(URL_VAR, 2)]) as m:
            fired, took = timed(m.observe_bar, loud_bar())
            assert len(fired) == 3 and took < 0.5
            assert m.flush(5)
            assert m.delivery == {"webhook": {"sent": 0, "failed": 3, "dropped": 0}}
        assert len(server.posts) == 3
    assert "HTTP 500" in caplog.text and "$ADAN_ALERT_WEBHOOK_URL" in caplog.text


def test_a_stalled_webhook_times_out_in_its_worker_while_bars_go_on(monkeypatch):
    with webhook(monkeypatch, stall=True) as server:
        channel = WebhookChannel(URL_VAR, timeout_s=0.3)
        with AlertManager(alerts_config(queue_size=2), [channel]) as m:
            for i in range(3):
                fired, took = timed(m.observe_bar, loud_bar(i))
                assert len(fired) == 3 and took < 0.5, "observe_bar waited for the channel"
            assert wait_for(lambda: server.posts), "the channel is stuck in a request"
            assert m.delivery["webhook"]["sent"] == 0
            assert m.flush(10)
            d = m.delivery["webhook"]
            assert d["sent"] == 0 and d["failed"] + d["dropped"] == 9
            assert 1 <= d["failed"] <= 4 and d["dropped"] >= 5, "a queue of 2 waiting"


class Hung:
    """A channel that blocks until released: what a dead SMTP relay without timeouts does."""

    name = "hung"

    def __init__(self) -> None:
        self.entered, self.release, self.sent = threading.Event(), threading.Event(), []

    def send(self, alert: Alert) -> None:
        self.entered.set()
        self.release.wait(20)
        self.sent.append(alert.key)


class Broken:
    name = "broken"

    def send(self, alert: Alert) -> None:
        raise RuntimeError("relay refused")


def test_a_hung_channel_drops_its_oldest_alerts_and_holds_up_no_other(monkeypatch):
    hung = Hung()
    cfg = AlertsConfig.from_mapping({"queue_size": 2, "rules": {"stale_feed": {"cooldown_s": 0}}})
    with webhook(monkeypatch) as server:
        m = AlertManager(cfg, [hung, WebhookChannel(URL_VAR, 2), Broken()])
        try:
            m.event("stale_feed", "stale", key="0")
            assert hung.entered.wait(5)
            assert wait_for(lambda: len(server.posts) == 1)
            for i in range(1, 6):
                _, took = timed(m.event, "stale_feed", "stale", str(i))
                assert took < 0.5
                # the other channels keep up, one alert at a time
                assert wait_for(lambda i=i: len(server.posts) == i + 1)
                assert wait_for(lambda i=i: m.delivery["broken"]["failed"] == i + 1)
            assert not m.flush(0.3), "flush gives up on a hung channel"
            assert m.delivery["hung"] == {"sent": 0, "failed": 0, "dropped": 3}
            assert m.delivery["webhook"] == {"sent": 6, "failed": 0, "dropped": 0}
            assert m.delivery["broken"] == {"sent": 0, "failed": 6, "dropped": 0}
            hung.release.set()
            assert m.flush(5)
            assert hung.sent == ["stale_feed:0", "stale_feed:4", "stale_feed:5"]
            assert m.delivery["hung"]["sent"] == 3
        finally:
            hung.release.set()
            m.close()
    m.event("stale_feed", "after close")  # still recorded, no longer delivered
    assert m.delivery["webhook"]["dropped"] == 1


def test_close_returns_despite_a_hung_channel():
    hung = Hung()
    m = AlertManager(AlertsConfig(), [hung])
    m.event("kill_switch", "engaged")
    assert hung.entered.wait(5)
    _, took = timed(m.close, 0.2)
    assert took < 1
    hung.release.set()


# ----------------------------------------------------------------------------- config
def test_build_channels_from_the_config_spec(monkeypatch):
    monkeypatch.setenv(URL_VAR, "https://hooks.example.org/services/x")
    monkeypatch.setenv(PW_VAR, PASSWORD)
    assert build_channels(None) == [] == build_channels({"webhook": None, "email": None})
    spec = {
        "webhook": {"url_env": URL_VAR},
        "email": {
            "host": "smtp.example.org",
            "port": 587,
            "sender": "adan@example.org",
            "recipients": ["ops@example.org"],
            "username": "adan",
            "password_env": PW_VAR,
            "starttls": True,
        },
    }
    web, mail = build_channels(spec)
    assert isinstance(web, WebhookChannel) and web.timeout_s == 5.0
    assert isinstance(mail, EmailChannel) and mail.port == 587 and mail.starttls
    cfg = AlertsConfig.from_mapping({"channels": spec})
    assert cfg.channels == check_channels_spec(spec)
    assert len(build_channels(cfg.channels)) == 2


def test_a_missing_variable_is_named(monkeypatch):
    monkeypatch.delenv(URL_VAR, raising=False)
    monkeypatch.delenv(PW_VAR, raising=False)
    with pytest.raises(LiveConfigError, match=f"environment variable {URL_VAR} is not set"):
        WebhookChannel(URL_VAR)
    with pytest.raises(LiveConfigError, match=f"alerts.channels: .*{URL_VAR} is not set"):
        build_channels({"webhook": {"url_env": URL_VAR}})
    with pytest.raises(LiveConfigError, match=f"{PW_VAR} is not set"):
        build_channels(
            {
                "email": {
                    "host": "h",
                    "sender": "a@b",
                    "recipients": "c@d",
                    "username": "u",
                    "password_env": PW_VAR,
                }
            }
        )
    monkeypatch.setenv(URL_VAR, "hooks.example.org/x")
    with pytest.raises(LiveConfigError, match=f"{URL_VAR} must hold an http"):
        WebhookChannel(URL_VAR)


# ----------------------------------------------------------------------------- secrets
def test_secrets_show_nowhere(monkeypatch, caplog):
    """Sends that succeed and fail every way, with everything logged: neither the webhook's
    token nor the SMTP password in a log line, an error, a repr or the state."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(PW_VAR, PASSWORD)
    seen: list[str] = []
    closed_port = free_port()
    with webhook(monkeypatch) as ok_server, smtp_server(auth=True) as (port, inbox):
        web = WebhookChannel(URL_VAR, 2)
        mail = EmailChannel("127.0.0.1", port, "adan@example.org", "ops@x.org", "adan", PW_VAR)
        with AlertManager(alerts_config(), [web, mail]) as m:
            m.observe_bar(loud_bar())
            assert m.flush(5)
            assert m.delivery["webhook"]["sent"] == m.delivery["email"]["sent"] == 3
            seen += [repr(m), repr(web), repr(mail), str(vars(web)), str(vars(mail))]
            seen.append(json.dumps(m.state_dict()))
        assert len(ok_server.posts) == 3 and len(inbox.envelopes) == 3
    # failures: a 500, a stall past the timeout, nothing listening, a bad login, no server
    failing = []
    with webhook(monkeypatch, status=500):
        failing.append(WebhookChannel(URL_VAR, 2))
        with webhook(monkeypatch, stall=True):
            failing.append(WebhookChannel(URL_VAR, 0.3))
            monkeypatch.setenv(
                URL_VAR, f"http://user:{TOKEN}@127.0.0.1:{closed_port}/{TOKEN}?t={TOKEN}"
            )
            failing.append(WebhookChannel(URL_VAR, 2))
            with smtp_server(auth=True) as (port, _):
                monkeypatch.setenv(PW_VAR, PASSWORD + "-old")
                failing.append(
                    EmailChannel("127.0.0.1", port, "a@x.org", "b@x.org", "adan", PW_VAR)
                )
                failing.append(
                    EmailChannel("127.0.0.1", closed_port, "a@x.org", "b@x.org", "adan", PW_VAR)
                )
                alert = Alert("circuit_open", "warning", "broker breaker open", "circuit_open", "t")
                for ch in failing:
                    with pytest.raises(ChannelError) as e:
                        ch.send(alert)
                    seen += [str(e.value), repr(e.value), repr(ch)]
                    assert e.value.__cause__ is None and e.value.__context__ is None
                with AlertManager(alerts_config(), failing) as m:
                    m.observe_bar(loud_bar())
                    assert m.flush(10)
                    assert all(d["failed"] == 3 for d in m.delivery.values())
                    seen += [repr(m), json.dumps(m.state_dict())]
    webhook_errors = [s for s in seen if s.startswith("webhook ")]
    assert len(webhook_errors) == 3 and all("$ADAN_ALERT_WEBHOOK_URL" in s for s in webhook_errors)
    assert "timed out" in caplog.text and "HTTP 500" in caplog.text
    for text in [caplog.text, *seen, *(r.getMessage() for r in caplog.records)]:
        assert TOKEN not in text
        assert PASSWORD not in text
