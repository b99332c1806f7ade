"""Where alerts go: a Slack-compatible webhook and e-mail over SMTP.

Each channel's ``send(alert)`` delivers one ``adan.ops.alerts.Alert`` or raises
``ChannelError``; ``AlertManager`` calls it from a worker thread, so a slow channel holds up
nothing but itself. Secrets (the webhook URL, which embeds its token, and the SMTP password)
come only from environment variables named in the config, are read when the channel is built,
and never appear in a repr, an error or a log line: they show as ``$VARIABLE``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import urlsplit

from adan.errors import LiveConfigError, TradingError


class Alert(Protocol):
    """What a channel reads of an alert (``adan.ops.alerts.Alert``; not imported, so that the
    rules may build their channels without a cycle)."""

    rule: str
    severity: str
    message: str
    key: str
    time: str
    values: dict[str, Any]
    suppressed: int

    def as_dict(self) -> dict[str, Any]: ...

    def summary(self) -> str: ...


log = logging.getLogger("adan.trade.alerts")

_WEBHOOK_KEYS = {"url_env": "ADAN_ALERT_WEBHOOK_URL", "timeout_s": 5.0}
_EMAIL_KEYS = {
    "host": None,  # required
    "port": 25,
    "sender": None,  # required
    "recipients": None,  # required: a list, or one address
    "username": None,
    "password_env": None,
    "starttls": False,
    "timeout_s": 5.0,
}
_TEXT_LIMIT = 2900  # Slack's section text holds at most 3000 characters


class ChannelError(TradingError):
    """A channel could not deliver an alert; the message names the channel, never a secret."""

    retryable = True


class _Secret:
    """A secret string that shows as its variable's name in every repr and str."""

    __slots__ = ("_value", "_shown")

    def __init__(self, value: str, shown: str) -> None:
        self._value, self._shown = value, shown

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with the secret (and, for a URL, its path, query and password) replaced."""
        parts = [self._value]
        if "://" in self._value:
            u = urlsplit(self._value)
            parts += [u.path + ("?" + u.query if u.query else ""), u.path, u.query, u.password]
        for p in sorted({p for p in parts if p and len(p) > 1}, key=len, reverse=True):
            text = text.replace(p, self._shown)
        return text

    def __repr__(self) -> str:
        return self._shown

    __str__ = __repr__


def _env_secret(var: str, what: str) -> _Secret:
    """The non-empty value of environment variable ``var``, else a LiveConfigError naming it."""
    if not isinstance(var, str) or not var:
        raise LiveConfigError(f"{what} must name an environment variable, got {var!r}")
    value = os.environ.get(var, "")
    if not value:
        raise LiveConfigError(f"{what}: environment variable {var} is not set")
    return _Secret(value, f"${var}")


class WebhookChannel:
    """POSTs each alert as Slack-compatible JSON (``text``, ``blocks``, and the whole alert
    under ``alert``) to the URL held by environment variable ``url_env``."""

    name = "webhook"

    def __init__(self, url_env: str = "ADAN_ALERT_WEBHOOK_URL", timeout_s: float = 5.0) -> None:
        self.url_env = url_env
        self.timeout_s = float(timeout_s)
        self._url = _env_secret(url_env, "webhook url_env")
        if urlsplit(self._url.reveal()).scheme not in ("http", "https"):
            raise LiveConfigError(f"environment variable {url_env} must hold an http(s) URL")

    def __repr__(self) -> str:
        return f"WebhookChannel(url={self._url!r}, timeout_s={self.timeout_s})"

    @staticmethod
    def payload(alert: Alert) -> dict[str, Any]:
        """What is posted: ``text`` for any Slack-like receiver, ``blocks`` for Slack's
        layout, ``alert`` with every field for other receivers."""
        title = alert.summary()
        details = f"key `{alert.key}` · {alert.time}"
        if alert.values:
            details += " · " + ", ".join(f"{k}={_fmt(v)}" for k, v in alert.values.items())
        return {
            "text": title,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": title[:_TEXT_LIMIT]}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": details[:_TEXT_LIMIT]}],
                },
            ],
            "alert": alert.as_dict(),
        }

    def send(self, alert: Alert) -> None:
        """POST the alert; raises ``ChannelError`` on a non-2xx answer, a timeout or no
        connection."""
        body = json.dumps(self.payload(alert)).encode()
        req = urllib.request.Request(
            self._url.reveal(),
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "adan-alerts"},
        )
        problem = None
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read(1 << 16)
        except urllib.error.HTTPError as e:
            problem = f"HTTP {e.code} {e.reason}"
            e.close()
        except urllib.error.URLError as e:
            problem = f"no connection ({e.reason})"
        except TimeoutError:
            problem = f"timed out after {self.timeout_s:g} s"
        except (OSError, ValueError) as e:
            problem = f"{type(e).__name__}: {e}"
        if problem is not None:  # raised outside the except: no chained error shows the URL
            raise ChannelError(f"webhook {self._url}: {self._url.scrub(problem)}")


class EmailChannel:
    """Sends each alert as a plain-text e-mail over SMTP; subject ``[ADAN SEVERITY] rule:
    message``. The password (with ``username``) comes from environment variable
    ``password_env``."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str] | str,
        username: str | None = None,
        password_env: str | None = None,
        starttls: bool = False,
        timeout_s: float = 5.0,
    ) -> None:
        self.host, self.port, self.sender = str(host), int(port), str(sender)
        rcpt = [recipients] if isinstance(recipients, str) else list(recipients)
        if not rcpt:
            raise LiveConfigError("email recipients must name at least one address")
        self.recipients = [str(r) for r in rcpt]
        self.username, self.starttls, self.timeout_s = username, bool(starttls), float(timeout_s)
        self.password_env = password_env
        if (username is None) != (password_env is None):
            raise LiveConfigError("email username and password_env go together (both or neither)")
        self._password = None if password_env is None else _env_secret(password_env, "email")
        if (
            username is not None
            and not starttls
            and self.host not in ("127.0.0.1", "::1", "localhost")
        ):
            log.warning("alerts e-mail: logging in to %s without starttls", self.host)

    def __repr__(self) -> str:
        return (
            f"EmailChannel(host={self.host!r}, port={self.port}, sender={self.sender!r}, "
            f"recipients={self.recipients!r}, username={self.username!r}, "
            f"password={self._password!r}, starttls={self.starttls})"
        )

    def message(self, alert: Alert) -> EmailMessage:
        """The e-mail of ``alert``: subject with severity and rule, every field in the body."""
        msg = EmailMessage()
        subject = f"[ADAN {alert.severity.upper()}] {alert.rule}: {alert.message}"
        msg["Subject"] = " ".join(subject.split())[:200]  # one line
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(usegmt=True)
        lines = [
            f"ADAN alert: {alert.rule} ({alert.severity})",
            "",
            alert.message,
            "",
            f"key: {alert.key}",
            f"time: {alert.time}",
            f"suppressed since the last one: {alert.suppressed}",
        ]
        lines += [f"{k}: {_fmt(v)}" for k, v in alert.values.items()]
        msg.set_content("\n".join(lines) + "\n")
        return msg

    def send(self, alert: Alert) -> None:
        """Connect, optionally STARTTLS and log in, send; raises ``ChannelError`` on failure."""
        problem = None
        try:
            with smtplib.SMTP(
                self.host, self.port, timeout=self.timeout_s, local_hostname=socket.gethostname()
            ) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._password is not None:
                    smtp.login(str(self.username), self._password.reveal())
                smtp.send_message(self.message(alert), self.sender, self.recipients)
        except (smtplib.SMTPException, OSError, ValueError) as e:
            problem = f"{type(e).__name__}: {e}"
        if problem is not None:  # raised outside the except: no chained error
            if self._password is not None:
                problem = self._password.scrub(problem)
            raise ChannelError(f"email via {self.host}:{self.port}: {problem}")


def _fmt(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- config
def _fail(key: str, rule: str, value: object) -> None:
    raise LiveConfigError(f"{key} {rule}, got {value!r}")


def _entry(spec: Mapping, valid: Mapping[str, Any], key: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        _fail(key, "must be a mapping or null", spec)
    for k in spec:
        if k not in valid:
            raise LiveConfigError(
                f"{key}.{k} is not a valid key; valid keys: {', '.join(sorted(valid))}"
            )
    out = {**valid, **spec}
    t = out["timeout_s"]
    if not (isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t > 0):
        _fail(f"{key}.timeout_s", "must be a number of seconds > 0", t)
    out["timeout_s"] = float(t)
    return out


def _name(v: object, key: str, what: str = "must be a non-empty string") -> str:
    if not isinstance(v, str) or not v.strip():
        _fail(key, what, v)
    return str(v)


def check_channels_spec(spec: Mapping | None, key: str = "alerts.channels") -> dict[str, Any]:
    """``spec`` checked and completed with defaults, as plain values, without reading the
    environment: ``{"webhook": {...} | None, "email": {...} | None}`` (None: off). Raises
    ``LiveConfigError`` naming the full key of a bad or unknown value."""
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        _fail(key, "must be a mapping", spec)
    for k in spec:
        if k not in ("webhook", "email"):
            raise LiveConfigError(f"{key}.{k} is not a valid key; valid keys: email, webhook")
    out: dict[str, Any] = {"webhook": None, "email": None}
    if spec.get("webhook") is not None:
        w = _entry(spec["webhook"], _WEBHOOK_KEYS, f"{key}.webhook")
        w["url_env"] = _name(w["url_env"], f"{key}.webhook.url_env", "must name a variable")
        out["webhook"] = w
    if spec.get("email") is not None:
        k = f"{key}.email"
        e = _entry(spec["email"], _EMAIL_KEYS, k)
        e["host"] = _name(e["host"], f"{k}.host")
        p = e["port"]
        if not (isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536):
            _fail(f"{k}.port", "must be a port number in [1, 65535]", p)
        if not (isinstance(e["sender"], str) and "@" in e["sender"]):
            _fail(f"{k}.sender", "must be an e-mail address", e["sender"])
        r = e["recipients"]
        r = [r] if isinstance(r, str) else r
        if (
            not isinstance(r, Sequence)
            or not r
            or not all(isinstance(a, str) and "@" in a for a in r)
        ):
            _fail(
                f"{k}.recipients", "must be a non-empty list of e-mail addresses", e["recipients"]
            )
        e["recipients"] = [str(a) for a in r]
        if e["username"] is not None:
            e["username"] = _name(e["username"], f"{k}.username")
        if e["password_env"] is not None:
            e["password_env"] = _name(
                e["password_env"], f"{k}.password_env", "must name a variable"
            )
        if (e["username"] is None) != (e["password_env"] is None):
            _fail(f"{k}.password_env", "must be set exactly when username is", e["password_env"])
        if not isinstance(e["starttls"], bool):
            _fail(f"{k}.starttls", "must be true or false", e["starttls"])
        out["email"] = e
    return out


def build_channels(spec: Mapping | None, key: str = "alerts.channels") -> list[Any]:
    """The channels of ``spec`` (``{"webhook": {"url_env": ...}, "email": {...}}``; an entry
    null or absent is off), reading their secrets from the environment now."""
    s = check_channels_spec(spec, key)
    channels: list[Any] = []
    try:
        if s["webhook"] is not None:
            channels.append(WebhookChannel(**s["webhook"]))
        if s["email"] is not None:
            channels.append(EmailChannel(**s["email"]))
    except LiveConfigError as e:
        raise LiveConfigError(f"{key}: {e}") from None
    return channels
