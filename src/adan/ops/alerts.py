"""Alerts of the paper-trading loop: rules checked on each bar and on events, cooldown and
de-duplication, and delivery to channels (``adan.ops.channels``) that never holds up the loop.

``AlertManager.observe_bar`` checks the bar rules (drawdown, daily loss, a risk limit clipping
an order, NaN features or actions, an anomalous account return or asset volume) and
``AlertManager.event`` reports what the loop sees happen (kill switch, stale feed, an open
circuit breaker). An alert's de-duplication key is its rule (plus the asset for volume, or the
caller's key for events); a key that fired less than its rule's ``cooldown_s`` ago is
suppressed and counted, and its next alert says how many were (``suppressed``). Cooldowns run
on the injected clock, wall-clock seconds by default, so they survive a restart through
``state_dict``.

Each fired alert goes to ``on_alert`` at once, on the caller's thread (the loop's own record),
and to every channel through that channel's daemon worker thread and bounded queue (the oldest
waiting alert is dropped when it is full): a channel that fails or hangs costs the loop nothing.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from adan.config.secrets import masked
from adan.errors import LiveConfigError, LiveDataError, StateMismatchError
from adan.ops.channels import check_channels_spec

log = logging.getLogger("adan.trade.alerts")

SEVERITIES = ("info", "warning", "critical")
EVENT_RULES = ("kill_switch", "stale_feed", "circuit_open")
RULES = (
    "drawdown",
    "daily_loss",
    "limit_hit",
    "nan",
    "anomalous_return",
    "anomalous_volume",
    *EVENT_RULES,
)
MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of normal data
MEAN_AD_SCALE = 1.2533  # the same for the mean absolute deviation (sqrt(pi / 2))
STATE_VERSION = 1

# the parameters each rule takes besides enabled, severity and cooldown_s
_PARAMS = {
    "drawdown": ("threshold",),
    "daily_loss": ("threshold",),
    "anomalous_return": ("z", "lookback", "min_history"),
    "anomalous_volume": ("z", "lookback", "min_history"),
}
_H = 3600.0
# Defaults for hourly crypto bars: a level that persists re-alerts every few hours at most.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "drawdown": {"severity": "warning", "cooldown_s": 6 * _H, "threshold": 0.15},
    "daily_loss": {"severity": "warning", "cooldown_s": 6 * _H, "threshold": 0.05},
    "limit_hit": {"severity": "info", "cooldown_s": 6 * _H},
    "nan": {"severity": "critical", "cooldown_s": 1 * _H},
    "anomalous_return": {
        "severity": "warning",
        "cooldown_s": 1 * _H,
        "z": 6.0,
        "lookback": 100,
        "min_history": 30,
    },
    "anomalous_volume": {
        "severity": "info",
        "cooldown_s": 1 * _H,
        "z": 6.0,
        "lookback": 100,
        "min_history": 30,
    },
    "kill_switch": {"severity": "critical", "cooldown_s": 1 * _H},
    "stale_feed": {"severity": "warning", "cooldown_s": 1 * _H},
    "circuit_open": {"severity": "warning", "cooldown_s": 0.5 * _H},
}


# ----------------------------------------------------------------------------- config
def _fail(key: str, rule: str, value: object) -> None:
    raise LiveConfigError(f"{key} {rule}, got {value!r}")


def _known(d: Mapping, valid: Iterable[str], key: str) -> None:
    """Refuse keys of ``d`` outside ``valid``, naming the full key and the valid ones."""
    valid = tuple(valid)
    for k in d:
        if k not in valid:
            raise LiveConfigError(
                f"{key}.{k} is not a valid key; valid keys: {', '.join(sorted(valid))}"
            )


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _bool(v: object, key: str) -> bool:
    if not isinstance(v, bool):
        _fail(key, "must be true or false", v)
    return bool(v)


def _mapping(v: object, key: str) -> Mapping:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        _fail(key, "must be a mapping", v)
    return v


@dataclass(frozen=True)
class RuleConfig:
    """One rule's settings; ``threshold`` (drawdown, daily_loss) and ``z``, ``lookback``,
    ``min_history`` (anomalous_*) are None for the rules that do not take them."""

    enabled: bool = True
    severity: str = "warning"  # info | warning | critical
    cooldown_s: float = 3600.0  # the same key fires at most once per this many seconds
    threshold: float | None = None  # fraction in (0, 1]
    z: float | None = None  # robust z-score above which an anomaly fires
    lookback: int | None = None  # reference window, in bars
    min_history: int | None = None  # no anomaly alert before this many reference bars

    @classmethod
    def from_mapping(cls, name: str, d: Mapping, key: str) -> RuleConfig:
        """Rule ``name``'s defaults overridden by ``d``, each value checked (``key`` prefixes
        every error)."""
        params = _PARAMS.get(name, ())
        _known(d, ("enabled", "severity", "cooldown_s", *params), key)
        v = {"enabled": True, **_DEFAULTS[name], **d}
        enabled = _bool(v["enabled"], f"{key}.enabled")
        if v["severity"] not in SEVERITIES:
            _fail(f"{key}.severity", f"must be one of {', '.join(SEVERITIES)}", v["severity"])
        c = v["cooldown_s"]
        if not (_is_number(c) and c >= 0):
            _fail(f"{key}.cooldown_s", "must be a number of seconds >= 0", c)
        out = cls(enabled=enabled, severity=str(v["severity"]), cooldown_s=float(c))
        if "threshold" in params:
            t = v["threshold"]
            if not (_is_number(t) and 0 < t <= 1):
                _fail(f"{key}.threshold", "must be in (0, 1]", t)
            out = replace(out, threshold=float(t))
        if "z" in params:
            z, lb, mh = v["z"], v["lookback"], v["min_history"]
            if not (_is_number(z) and z > 0):
                _fail(f"{key}.z", "must be a number > 0", z)
            if not (isinstance(lb, int) and not isinstance(lb, bool) and lb >= 3):
                _fail(f"{key}.lookback", "must be an integer >= 3", lb)
            if not (isinstance(mh, int) and not isinstance(mh, bool) and 3 <= mh <= lb):
                _fail(f"{key}.min_history", f"must be an integer in [3, lookback={lb}]", mh)
            out = replace(out, z=float(z), lookback=int(lb), min_history=int(mh))
        return out

    def as_dict(self) -> dict[str, Any]:
        """The settings this rule takes, as plain values."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _default_rules() -> dict[str, RuleConfig]:
    return {n: RuleConfig.from_mapping(n, {}, f"alerts.rules.{n}") for n in RULES}


@dataclass(frozen=True)
class AlertsConfig:
    """The ``alerts`` section: a master switch, each channel worker's queue size, the rules
    (every rule present, defaults filled in) and the channels' spec (``build_channels``)."""

    enabled: bool = True  # false: rules are still tracked but nothing fires
    queue_size: int = 100  # alerts waiting per channel; the oldest is dropped past this
    rules: dict[str, RuleConfig] = field(default_factory=_default_rules)
    # checked, not built (the environment is read by build_channels)
    channels: dict[str, Any] = field(default_factory=lambda: check_channels_spec(None))

    @classmethod
    def from_mapping(cls, d: Mapping | None, key: str = "alerts") -> AlertsConfig:
        """The config from ``d`` (a plain or OmegaConf mapping; missing keys take their
        defaults); raises ``LiveConfigError`` naming the full key of any bad or unknown value."""
        d = _mapping(d, key)
        _known(d, ("enabled", "queue_size", "rules", "channels"), key)
        enabled = _bool(d.get("enabled", True), f"{key}.enabled")
        q = d.get("queue_size", 100)
        if not (isinstance(q, int) and not isinstance(q, bool) and q >= 1):
            _fail(f"{key}.queue_size", "must be an integer >= 1", q)
        rules_in = _mapping(d.get("rules"), f"{key}.rules")
        _known(rules_in, RULES, f"{key}.rules")
        rules = {
            n: RuleConfig.from_mapping(
                n, _mapping(rules_in.get(n), f"{key}.rules.{n}"), f"{key}.rules.{n}"
            )
            for n in RULES
        }
        channels = check_channels_spec(d.get("channels"), f"{key}.channels")
        return cls(enabled=enabled, queue_size=int(q), rules=rules, channels=channels)

    def rule(self, name: str) -> RuleConfig:
        """Rule ``name``'s settings."""
        return self.rules[name]

    def as_dict(self) -> dict[str, Any]:
        """Plain values, as ``from_mapping`` takes them (no secrets: channels name env vars)."""
        return {
            "enabled": self.enabled,
            "queue_size": self.queue_size,
            "rules": {n: r.as_dict() for n, r in self.rules.items()},
            "channels": masked(dict(self.channels)),
        }


# ----------------------------------------------------------------------------- alerts
@dataclass(frozen=True)
class Alert:
    """One fired alert: ``key`` is its de-duplication key, ``time`` an ISO string (the bar's
    time when known, else the clock's), ``suppressed`` how many alerts of this key the cooldown
    held back since the last one that fired."""

    rule: str
    severity: str
    message: str
    key: str
    time: str
    values: dict[str, float | str] = field(default_factory=dict)
    suppressed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain values for logs, state and payloads."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "key": self.key,
            "time": self.time,
            "values": dict(self.values),
            "suppressed": self.suppressed,
        }

    def summary(self) -> str:
        """One line: ``[SEVERITY] rule: message`` and the suppressed count when any."""
        s = f"[{self.severity.upper()}] {self.rule}: {self.message}"
        return s + (f" (suppressed: {self.suppressed})" if self.suppressed else "")


def _plain(v: object) -> float | str:
    """A value as a plain float (numbers) or string (anything else; URLs password-masked)."""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    return masked(str(v))


def _finite(v: object) -> float | None:
    """``v`` as a finite float, or None (missing, NaN, not a number)."""
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def robust_z(x: float, reference: Sequence[float]) -> tuple[float, float, float] | None:
    """``(z, median, scale)`` with ``z = |x - median| / scale`` and ``scale = 1.4826 * MAD``
    of ``reference``; where MAD is 0 (over half the values equal) ``1.2533 * mean absolute
    deviation`` instead; None where that is 0 too (a constant reference has no scale)."""
    ref = np.asarray(reference, dtype=np.float64)
    med = float(np.median(ref))
    dev = np.abs(ref - med)
    scale = MAD_SCALE * float(np.median(dev))
    if scale <= 0:
        scale = MEAN_AD_SCALE * float(np.mean(dev))
    if scale <= 0:
        return None
    return abs(x - med) / scale, med, scale


def _utc_day(t: object) -> str | None:
    """The UTC date (``YYYY-MM-DD``) of an ISO time string or datetime (naive = UTC)."""
    if isinstance(t, datetime):
        dt = t
    elif isinstance(t, np.datetime64):
        dt = datetime.fromisoformat(str(np.datetime_as_string(t, unit="s")))
    else:
        try:
            dt = datetime.fromisoformat(str(t))
        except ValueError:
            return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.date().isoformat()


def _pct(f: float) -> str:
    return f"{100 * f:.2f}%"


class _Worker:
    """One channel's delivery: a daemon thread sending from a bounded queue (oldest dropped)."""

    def __init__(self, name: str, channel: Any, maxlen: int) -> None:
        self.name, self.channel, self.maxlen = name, channel, maxlen
        self.queue: deque[Alert] = deque()
        self.cond = threading.Condition()
        self.busy = self.closed = False
        self.sent = self.failed = self.dropped = 0
        self.thread = threading.Thread(target=self._run, name=f"adan-alerts-{name}", daemon=True)
        self.thread.start()

    def put(self, alert: Alert) -> None:
        dropped = []
        with self.cond:
            if self.closed:
                self.dropped += 1
                dropped.append(alert)
            else:
                while len(self.queue) >= self.maxlen:
                    dropped.append(self.queue.popleft())
                    self.dropped += 1
                self.queue.append(alert)
                self.cond.notify_all()
        for a in dropped:
            log.warning(
                "alert channel %s: queue full or closed, dropped alert %s", self.name, a.key
            )

    def resize(self, maxlen: int) -> None:
        with self.cond:
            self.maxlen = maxlen
            while len(self.queue) > maxlen:
                self.queue.popleft()
                self.dropped += 1

    def idle(self) -> bool:
        return not self.queue and not self.busy

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if self.closed and not self.queue:
                    return
                alert = self.queue.popleft()
                self.busy = True
            error = None
            try:
                self.channel.send(alert)
            except Exception as e:  # a channel's failure is counted and logged, never raised
                error = f"{type(e).__name__}: {e}"
            with self.cond:
                self.busy = False
                if error is None:
                    self.sent += 1
                else:
                    self.failed += 1
                self.cond.notify_all()
            if error is None:
                log.debug("alert channel %s: sent %s", self.name, alert.key)
            else:
                log.warning("alert channel %s: sending %s failed: %s", self.name, alert.key, error)

    def close(self) -> None:
        with self.cond:
            self.dropped += len(self.queue)
            self.queue.clear()
            self.closed = True
            self.cond.notify_all()


def _channel_names(channels: Sequence[Any]) -> list[str]:
    names: list[str] = []
    for ch in channels:
        base = str(getattr(ch, "name", type(ch).__name__.lower()))
        name, i = base, 2
        while name in names:
            name, i = f"{base}#{i}", i + 1
        names.append(name)
    return names


class AlertManager:
    """Checks the alert rules on each bar and event, applies cooldowns, and hands each fired
    alert to ``on_alert`` (synchronously) and to ``channels`` (asynchronously, one daemon
    worker per channel). Thread-safe: events may come from other threads than the bars.

    ``clock`` returns epoch seconds (``time.time`` by default); cooldowns and the time of an
    event alert come from it."""

    def __init__(
        self,
        config: AlertsConfig,
        channels: Sequence[Any] = (),
        clock: Callable[[], float] | None = None,
        on_alert: Callable[[Alert], None] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock or time.time
        self._on_alert = on_alert
        self._lock = threading.RLock()
        self._last_fired: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._returns: deque[float] = deque(maxlen=config.rule("anomalous_return").lookback)
        self._volumes: dict[str, deque[float]] = {}
        self._day: str | None = None
        self._day_start_equity: float | None = None
        self._last_equity: float | None = None
        self._closed = False
        self._workers = [
            _Worker(n, ch, config.queue_size)
            for n, ch in zip(_channel_names(channels), channels, strict=True)
        ]

    def __repr__(self) -> str:
        chans = ", ".join(repr(w.channel) for w in self._workers)
        return f"AlertManager(enabled={self.config.enabled}, channels=[{chans}])"

    def __enter__(self) -> AlertManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- firing
    def _fire(
        self, rule: str, key: str, message: str, when: str, values: Mapping[str, Any]
    ) -> Alert | None:
        """The alert of ``rule`` under de-dup ``key``, or None (disabled, or within the
        cooldown: counted as suppressed). Caller holds the lock."""
        cfg = self.config.rule(rule)
        if not (self.config.enabled and cfg.enabled):
            return None
        now = float(self._clock())
        last = self._last_fired.get(key)
        if last is not None:
            if now < last:  # the clock went back: restart the cooldown from now
                self._last_fired[key] = last = now
            if now - last < cfg.cooldown_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                log.debug("alert %s suppressed (cooldown)", key)
                return None
        self._last_fired[key] = now
        return Alert(
            rule=rule,
            severity=cfg.severity,
            message=message,
            key=key,
            time=when,
            values={str(k): _plain(v) for k, v in values.items()},
            suppressed=self._suppressed.pop(key, 0),
        )

    def _dispatch(self, alerts: list[Alert]) -> None:
        """Log each alert, queue it for every channel, then hand it to ``on_alert`` (whose
        first exception is raised once every alert was handed over)."""
        first_error: BaseException | None = None
        for a in alerts:
            log.info("alert %s", a.summary())
            for w in self._workers:  # after close() each counts it as dropped
                w.put(a)
            if self._on_alert is not None:
                try:
                    self._on_alert(a)
                except Exception as e:
                    first_error = first_error or e
        if first_error is not None:
            raise first_error

    def _now_iso(self) -> str:
        return datetime.fromtimestamp(float(self._clock()), UTC).isoformat(timespec="seconds")

    # ------------------------------------------------------------------------- inputs
    def observe_bar(self, m: Mapping[str, Any]) -> list[Alert]:
        """Check the bar rules on one bar's metrics and return the alerts that fired.

        ``m``: ``time`` (ISO), ``equity``, ``drawdown`` (fraction below the peak; 0.12 and
        -0.12 alike), ``bar_return`` (the account's), ``volume`` (one per asset), ``assets``,
        ``risk_clipped``, ``nan_features``, ``nan_actions``; a missing or NaN value skips the
        rules that need it. Anomalies score the bar against the bars before it only."""
        t = m.get("time")
        when = (
            self._now_iso() if t is None else t.isoformat() if isinstance(t, datetime) else str(t)
        )
        assets = [str(a) for a in (m.get("assets") or ())]
        volume = m.get("volume")
        volume = [] if volume is None else list(np.atleast_1d(np.asarray(volume, dtype=float)))
        if volume and len(volume) != len(assets):
            raise LiveDataError(f"alerts: {len(volume)} volumes for {len(assets)} assets")
        fired: list[Alert] = []

        def fire(rule: str, key: str, message: str, **values: Any) -> None:
            a = self._fire(rule, key, message, when, values)
            if a is not None:
                fired.append(a)

        with self._lock:
            nan_f, nan_a = bool(m.get("nan_features")), bool(m.get("nan_actions"))
            if nan_f or nan_a:
                what = " and ".join(w for w, on in (("features", nan_f), ("actions", nan_a)) if on)
                fire("nan", "nan", f"NaN in {what}", where=what)

            dd = _finite(m.get("drawdown"))
            cfg = self.config.rule("drawdown")
            if dd is not None and abs(dd) >= cfg.threshold:
                fire(
                    "drawdown",
                    "drawdown",
                    f"drawdown {_pct(abs(dd))} >= {_pct(cfg.threshold)}",
                    drawdown=abs(dd),
                    threshold=cfg.threshold,
                )

            equity, ret = _finite(m.get("equity")), _finite(m.get("bar_return"))
            day = None if t is None else _utc_day(t)
            if day is not None and day != self._day and equity is not None:
                # the equity before the day's first bar: the last bar's, or this bar's unwound
                start = self._last_equity
                if start is None:
                    start = equity / (1 + ret) if ret is not None and ret > -1 else equity
                self._day, self._day_start_equity = day, start
            cfg = self.config.rule("daily_loss")
            start = self._day_start_equity
            if equity is not None and start and start > 0 and day == self._day:
                loss = 1 - equity / start
                if loss >= cfg.threshold:
                    fire(
                        "daily_loss",
                        "daily_loss",
                        f"loss {_pct(loss)} since {day} 00:00 UTC >= {_pct(cfg.threshold)}",
                        loss=loss,
                        day_start_equity=start,
                        equity=equity,
                        threshold=cfg.threshold,
                    )
            if equity is not None:
                self._last_equity = equity

            if m.get("risk_clipped"):
                fire("limit_hit", "limit_hit", "a risk limit clipped an order")

            cfg = self.config.rule("anomalous_return")
            if ret is not None:
                z = self._anomaly(ret, self._returns, cfg)
                if z is not None:
                    fire(
                        "anomalous_return",
                        "anomalous_return",
                        f"bar return {_pct(ret)} is {z[0]:.1f} robust sd from the median "
                        f"{_pct(z[1])}",
                        bar_return=ret,
                        z=z[0],
                        median=z[1],
                        scale=z[2],
                    )
                self._returns.append(ret)

            cfg = self.config.rule("anomalous_volume")
            for asset, v in zip(assets, volume, strict=False):
                v = _finite(v)
                if v is None:
                    continue
                hist = self._volumes.setdefault(asset, deque(maxlen=cfg.lookback))
                z = self._anomaly(v, hist, cfg)
                if z is not None:
                    fire(
                        "anomalous_volume",
                        f"anomalous_volume:{asset}",
                        f"{asset} volume {v:.6g} is {z[0]:.1f} robust sd from the median "
                        f"{z[1]:.6g}",
                        asset=asset,
                        volume=v,
                        z=z[0],
                        median=z[1],
                        scale=z[2],
                    )
                hist.append(v)
        self._dispatch(fired)
        return fired

    @staticmethod
    def _anomaly(
        x: float, history: deque[float], cfg: RuleConfig
    ) -> tuple[float, float, float] | None:
        """``(z, median, scale)`` when ``x`` is an anomaly against ``history`` (the bars before
        it), else None."""
        if len(history) < cfg.min_history:
            return None
        z = robust_z(x, history)
        return z if z is not None and z[0] > cfg.z else None

    def event(self, rule: str, message: str, key: str | None = None, **values: Any) -> Alert | None:
        """Report an event of ``rule`` (kill_switch, stale_feed, circuit_open; the bar rules
        are accepted too); ``key`` refines the de-dup key (``rule:key``, e.g. the feed's
        name). Returns the alert, or None when disabled or within its cooldown."""
        if rule not in RULES:
            raise ValueError(f"unknown alert rule {rule!r}; valid rules: {', '.join(RULES)}")
        dedup = rule if key is None else f"{rule}:{key}"
        with self._lock:
            a = self._fire(rule, dedup, str(masked(message)), self._now_iso(), values)
        fired = [] if a is None else [a]
        self._dispatch(fired)
        return a

    # ------------------------------------------------------------------------- control
    def reconfigure(self, config: AlertsConfig) -> None:
        """Hot reload: new rules and queue size, keeping history, cooldowns and counts.
        Channels stay as built (a changed ``channels`` spec takes effect on restart)."""
        with self._lock:
            if config.channels != self.config.channels:
                log.warning("alerts.channels changed: the new channels take effect on restart")
            self.config = config
            lb = config.rule("anomalous_return").lookback
            self._returns = deque(self._returns, maxlen=lb)
            lb = config.rule("anomalous_volume").lookback
            self._volumes = {a: deque(h, maxlen=lb) for a, h in self._volumes.items()}
        for w in self._workers:
            w.resize(config.queue_size)

    @property
    def delivery(self) -> dict[str, dict[str, int]]:
        """Per channel: alerts ``sent``, ``failed`` (the channel raised) and ``dropped``
        (queue full, or closed before sending)."""
        out = {}
        for w in self._workers:
            with w.cond:
                out[w.name] = {"sent": w.sent, "failed": w.failed, "dropped": w.dropped}
        return out

    @property
    def suppressed(self) -> dict[str, int]:
        """Alerts held back by the cooldown per key, since each key last fired."""
        with self._lock:
            return dict(self._suppressed)

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able state: last-fired clock times and suppressed counts per key, the
        return and volume histories, the UTC day and its start equity, the last equity."""
        with self._lock:
            return {
                "version": STATE_VERSION,
                "last_fired": dict(self._last_fired),
                "suppressed": dict(self._suppressed),
                "returns": list(self._returns),
                "volumes": {a: list(h) for a, h in self._volumes.items()},
                "day": self._day,
                "day_start_equity": self._day_start_equity,
                "last_equity": self._last_equity,
            }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``state_dict()``'s output (histories cut to the current lookbacks); raises
        ``StateMismatchError`` for a state that is not one."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            version = state.get("version") if isinstance(state, Mapping) else state
            raise StateMismatchError(
                f"alerts state: version {version!r}, this build reads {STATE_VERSION}"
            )
        try:
            last_fired = {str(k): float(v) for k, v in dict(state["last_fired"]).items()}
            suppressed = {str(k): int(v) for k, v in dict(state["suppressed"]).items()}
            returns = [float(v) for v in state["returns"] if _finite(v) is not None]
            volumes = {
                str(a): [float(v) for v in h if _finite(v) is not None]
                for a, h in dict(state["volumes"]).items()
            }
            day = None if state["day"] is None else str(state["day"])
            dse = _finite(state["day_start_equity"])
            last = _finite(state["last_equity"])
        except (KeyError, TypeError, ValueError) as e:
            raise StateMismatchError(f"alerts state is malformed: {type(e).__name__}: {e}") from e
        with self._lock:
            self._last_fired, self._suppressed = last_fired, suppressed
            self._returns = deque(returns, maxlen=self.config.rule("anomalous_return").lookback)
            lb = self.config.rule("anomalous_volume").lookback
            self._volumes = {a: deque(h, maxlen=lb) for a, h in volumes.items()}
            self._day, self._day_start_equity, self._last_equity = day, dse, last

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds for every channel to finish its queue; True when all
        did (a hung channel makes this False, never longer)."""
        deadline = time.monotonic() + timeout
        for w in self._workers:
            with w.cond:
                while not w.idle():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    w.cond.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush for up to ``timeout`` seconds, then stop the workers (what is left is dropped;
        a channel still hung is abandoned with its daemon thread). Idempotent."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        for w in self._workers:
            w.close()
        for w in self._workers:
            w.thread.join(0.1)
