"""Retries, circuit breakers and escalation around the services ``trade.py`` calls.

Each external service (the bar feed, the broker) gets a :class:`ServiceGuard`: a call is tried
up to ``retry.attempts`` times with exponential backoff and jitter (tenacity) while it fails
with a *retryable* error (``TradingError.retryable``: a timeout, a 5xx), and every attempt
goes through the service's circuit breaker (pybreaker). After ``breaker.fail_max`` failed
attempts in a row the circuit opens: calls are refused at once with :class:`CircuitOpenError`
without touching the service, so a dead exchange is not hammered and the loop learns quickly.
After ``breaker.reset_timeout_s`` the circuit is half-open: the next call is a probe whose
outcome closes the circuit again or re-opens it.

:class:`Escalation` decides, per service, when failures stop being the guard's business and
become the loop's: at once for a non-retryable error (a bad bar, a rejected symbol), or after
``max_consecutive_failures`` failed calls. It only names the action; the loop flattens,
alerts, waits or stops.

    resilience:
      retry: {attempts: 5, initial_s: 0.5, max_s: 30, multiplier: 2, jitter_s: 0.5}
      breaker: {fail_max: 5, reset_timeout_s: 60, success_threshold: 1}
      escalation: {max_consecutive_failures: 3, action: flatten_and_wait}
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pybreaker
import tenacity

from adan.errors import LiveConfigError, TradingError

log = logging.getLogger("adan.trade.resilience")

T = TypeVar("T")

STATES = ("closed", "open", "half-open")
ACTIONS = ("flatten_and_stop", "flatten_and_wait", "wait")

StateCallback = Callable[[str, str, str], None]  # (service, old state, new state)
RetryCallback = Callable[[str, int, BaseException, float], None]  # (service, attempt, err, wait)


class CircuitOpenError(TradingError):
    """A service's circuit is open: the call was refused without reaching the service.

    Not retryable (retrying at once cannot help): the caller escalates or waits
    ``retry_in_s`` seconds, after which the next call is the half-open probe. ``__cause__`` is
    the error that opened the circuit when this call opened it."""

    retryable = False

    def __init__(self, message: str, *, service: str, retry_in_s: float | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.retry_in_s = retry_in_s


# ----------------------------------------------------------------------------- policies
def _require(ok: bool, key: str, rule: str, value: object) -> None:
    """Raise ``LiveConfigError("<key> <rule>, got <value>")`` unless ``ok`` (as ``check``)."""
    if not ok:
        raise LiveConfigError(f"{key} {rule}, got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _from_mapping(cls: type[T], d: Mapping[str, Any] | None, key: str) -> T:
    """``cls(**d)``, refusing a key ``cls`` does not have (the message lists the valid ones)."""
    if d is None:
        return cls()
    _require(isinstance(d, Mapping), key, "must be a mapping", d)
    valid = [f.name for f in fields(cls) if f.init]  # type: ignore[arg-type]
    for k in d:
        if k not in valid:
            raise LiveConfigError(f"{key}.{k} is not a setting; valid keys: {', '.join(valid)}")
    return cls(**dict(d))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed call is tried again.

    ``attempts`` tries in all; the wait before try n+1 is
    ``min(initial_s * multiplier**(n-1), max_s)`` plus a random ``[0, jitter_s]`` (jitter keeps
    several clients from retrying in step)."""

    attempts: int = 5
    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    jitter_s: float = 0.5

    def __post_init__(self) -> None:
        k = "resilience.retry"
        _require(
            _is_int(self.attempts) and self.attempts >= 1,
            f"{k}.attempts",
            "must be an integer >= 1",
            self.attempts,
        )
        for name in ("initial_s", "max_s", "jitter_s"):
            value = getattr(self, name)
            _require(
                _is_number(value) and value >= 0,
                f"{k}.{name}",
                "must be a finite number of seconds >= 0",
                value,
            )
        _require(
            self.max_s >= self.initial_s,
            f"{k}.max_s",
            f"must be >= resilience.retry.initial_s ({self.initial_s})",
            self.max_s,
        )
        _require(
            _is_number(self.multiplier) and self.multiplier >= 1,
            f"{k}.multiplier",
            "must be a finite number >= 1",
            self.multiplier,
        )

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> RetryPolicy:
        return _from_mapping(cls, d, "resilience.retry")

    def backoff_s(self, attempt: int) -> float:
        """The wait after failed try ``attempt`` (1-based), jitter left out."""
        return min(self.initial_s * self.multiplier ** (attempt - 1), self.max_s)


@dataclass(frozen=True)
class CircuitPolicy:
    """When a service's circuit opens and how it closes again.

    ``fail_max`` failed attempts in a row (retries included) open it; after
    ``reset_timeout_s`` it is half-open and ``success_threshold`` successful probes close it
    (one failed probe re-opens it)."""

    fail_max: int = 5
    reset_timeout_s: float = 60.0
    success_threshold: int = 1

    def __post_init__(self) -> None:
        k = "resilience.breaker"
        _require(
            _is_int(self.fail_max) and self.fail_max >= 1,
            f"{k}.fail_max",
            "must be an integer >= 1",
            self.fail_max,
        )
        _require(
            _is_number(self.reset_timeout_s) and self.reset_timeout_s > 0,
            f"{k}.reset_timeout_s",
            "must be a finite number of seconds > 0",
            self.reset_timeout_s,
        )
        _require(
            _is_int(self.success_threshold) and self.success_threshold >= 1,
            f"{k}.success_threshold",
            "must be an integer >= 1",
            self.success_threshold,
        )

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> CircuitPolicy:
        return _from_mapping(cls, d, "resilience.breaker")


# ----------------------------------------------------------------------------- the guard
def _retryable(err: BaseException) -> bool:
    return isinstance(err, TradingError) and err.retryable


class _ClockStorage(pybreaker.CircuitMemoryStorage):
    """pybreaker's in-memory state with the open time kept on the guard's ``clock``.

    pybreaker compares ``datetime.now(UTC)`` with ``opened_at + reset_timeout``; this storage
    answers ``opened_at`` as "now minus the time elapsed on ``clock``" so that comparison
    follows ``clock`` (monotonic by default: a wall-clock jump neither shortens nor stretches
    the reset timeout; tests advance a fake clock instead of sleeping)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(pybreaker.STATE_CLOSED)
        self._clock = clock
        self.opened_clock: float | None = None  # ``clock()`` when the circuit last opened

    @property
    def opened_at(self) -> datetime | None:
        if self.opened_clock is None:
            return None
        return datetime.now(UTC) - timedelta(seconds=self._clock() - self.opened_clock)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self.opened_clock = self._clock()


class _Listener(pybreaker.CircuitBreakerListener):
    """Forwards pybreaker's state changes to the guard."""

    def __init__(self, guard: ServiceGuard) -> None:
        self._guard = guard

    def failure(self, cb: Any, exc: BaseException) -> None:
        self._guard._last_failure = exc

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        old = old_state.name if old_state is not None else None
        self._guard._state_changed(old, new_state.name)


class ServiceGuard:
    """Retries with backoff and a circuit breaker around one external service.

    ``call(fn, *args, **kwargs)`` runs ``fn`` and returns its result. A ``TradingError``
    with ``retryable=True`` (and an ``OSError``/``TimeoutError``, turned into ``error`` with
    ``retryable=True``) is retried per ``retry``; anything else propagates at once. Every try
    counts for the breaker; once it is open, calls raise :class:`CircuitOpenError` without
    running ``fn``. Calls through one guard are serialised (the breaker holds a lock).

    ``sleep`` waits between tries and ``clock`` (seconds, monotonic) times the reset timeout;
    tests pass a recorder and a fake clock. ``on_state_change(service, old, new)`` hears each breaker transition (``closed``/``open``/``half-open``) and
    ``on_retry(service, attempt, error, wait_s)`` each retry, for alerts and metrics; an
    exception in either is logged, never raised into the call.
    """

    def __init__(
        self,
        name: str,
        retry: RetryPolicy | None = None,
        breaker: CircuitPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_state_change: StateCallback | None = None,
        on_retry: RetryCallback | None = None,
        error: type[TradingError] = TradingError,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.retry = retry if retry is not None else RetryPolicy()
        self.breaker = breaker if breaker is not None else CircuitPolicy()
        self._sleep = sleep
        self._on_state_change = on_state_change
        self._on_retry = on_retry
        self._error = error
        self._clock = clock
        self._storage = _ClockStorage(clock)
        self._opened = 0  # times the circuit opened
        self._last_failure: BaseException | None = None
        self._lock = threading.Lock()
        self.retries = 0  # retries done, all calls together
        self.rejected = 0  # calls refused by the open circuit
        self._cb = pybreaker.CircuitBreaker(
            fail_max=self.breaker.fail_max,
            reset_timeout=self.breaker.reset_timeout_s,
            success_threshold=self.breaker.success_threshold,
            listeners=[_Listener(self)],
            state_storage=self._storage,
            name=name,
        )

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``: pybreaker's state. An open circuit whose
        reset timeout has passed stays ``open`` until the next call probes it."""
        return str(self._cb.current_state)

    @property
    def failures(self) -> int:
        """Failed attempts in a row the breaker has counted (0 after a success)."""
        return int(self._cb.fail_counter)

    def retry_in_s(self) -> float | None:
        """Seconds until an open circuit lets a probe through (0: the next call probes);
        None when the circuit is not open."""
        opened = self._storage.opened_clock
        if self.state != "open" or opened is None:
            return None
        return max(0.0, self.breaker.reset_timeout_s - (self._clock() - opened))

    def _state_changed(self, old: str | None, new: str) -> None:
        if new == "open":
            self._opened += 1
        level = logging.INFO if new == "closed" else logging.WARNING
        log.log(level, "circuit %s: %s -> %s", self.name, old, new)
        if self._on_state_change is not None and old is not None:
            try:
                self._on_state_change(self.name, old, new)
            except Exception:  # an alert that fails must not break the call
                log.exception("on_state_change callback failed for %s", self.name)

    # ------------------------------------------------------------------ calls
    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with retries and the circuit breaker (see the class)."""
        r = self.retry
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(r.attempts),
            wait=tenacity.wait_exponential(
                multiplier=r.initial_s, exp_base=r.multiplier, max=r.max_s
            )
            + tenacity.wait_random(0, r.jitter_s),
            retry=tenacity.retry_if_exception(_retryable),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(self._attempt, fn, args, kwargs)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        with self._lock:
            self.retries += 1
        log.warning(
            "%s: attempt %d/%d failed (%s); retrying in %.2f s",
            self.name,
            state.attempt_number,
            self.retry.attempts,
            err,
            wait,
        )
        if self._on_retry is not None and err is not None:
            try:
                self._on_retry(self.name, state.attempt_number, err, wait)
            except Exception:
                log.exception("on_retry callback failed for %s", self.name)

    def _attempt(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        """One try through the breaker; its refusal becomes ``CircuitOpenError``."""
        opened = self._opened
        try:
            return self._cb.call(self._mapped, fn, args, kwargs)
        except pybreaker.CircuitBreakerError:
            # this very try opened the circuit (its failure is the cause), or it was refused
            cause = self._last_failure if self._opened != opened else None
            if cause is None:
                with self._lock:
                    self.rejected += 1
            wait = self.retry_in_s()
            when = f"; next probe in {wait:.1f} s" if wait is not None else ""
            what = f"circuit opened after: {cause}" if cause else "circuit open, call refused"
            raise CircuitOpenError(
                f"{self.name}: {what}{when}", service=self.name, retry_in_s=wait
            ) from cause

    def _mapped(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        """``fn`` with a bare ``OSError`` (a timeout, a refused connection) made retryable."""
        try:
            return fn(*args, **kwargs)
        except TradingError:
            raise
        except OSError as err:
            raise self._error(f"{self.name}: {type(err).__name__}: {err}", retryable=True) from err


# ----------------------------------------------------------------------------- escalation
def is_critical(err: BaseException) -> bool:
    """An error the loop must act on at once: not a ``TradingError`` (a bug), or one that is
    not retryable, except an open circuit (the service is down: a failure like the others)."""
    if isinstance(err, CircuitOpenError):
        return False
    return not isinstance(err, TradingError) or not err.retryable


@dataclass
class Escalation:
    """When a service's failures become the loop's business, and what it then does.

    ``failure(service, err)`` counts a failed call (retries already spent) and returns
    ``action`` when ``err`` is critical (:func:`is_critical`) or when the service has failed
    ``max_consecutive_failures`` calls in a row (and at each failure after that, until
    ``success(service)`` resets the count); otherwise None. ``action``: ``flatten_and_stop``
    (close every position, then end the run), ``flatten_and_wait`` (close every position,
    keep trying the service), ``wait`` (keep the book, keep trying)."""

    max_consecutive_failures: int = 3
    action: str = "flatten_and_wait"
    _counts: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        k = "resilience.escalation"
        n = self.max_consecutive_failures
        _require(
            _is_int(n) and n >= 1, f"{k}.max_consecutive_failures", "must be an integer >= 1", n
        )
        _require(
            self.action in ACTIONS, f"{k}.action", f"must be one of {list(ACTIONS)}", self.action
        )

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Escalation:
        return _from_mapping(cls, d, "resilience.escalation")

    def failure(self, service: str, err: BaseException) -> str | None:
        """Count a failed call of ``service``; the action to take now, or None."""
        n = self._counts[service] = self._counts.get(service, 0) + 1
        if is_critical(err) or n >= self.max_consecutive_failures:
            return self.action
        return None

    def success(self, service: str) -> None:
        """A call of ``service`` succeeded: its count of failures starts again."""
        self._counts.pop(service, None)

    def failures(self, service: str) -> int:
        """Failed calls of ``service`` in a row."""
        return self._counts.get(service, 0)


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class ResilienceConfig:
    """The ``resilience:`` block: one retry and breaker policy for every service, and the
    escalation rule."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: CircuitPolicy = field(default_factory=CircuitPolicy)
    escalation: Escalation = field(default_factory=Escalation)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> ResilienceConfig:
        """From the ``resilience`` mapping (None: every default); an unknown key, at any
        level, is refused with the valid ones listed."""
        if d is None:
            return cls()
        _require(isinstance(d, Mapping), "resilience", "must be a mapping", d)
        valid = ("retry", "breaker", "escalation")
        for k in d:
            if k not in valid:
                raise LiveConfigError(
                    f"resilience.{k} is not a setting; valid keys: {', '.join(valid)}"
                )
        return cls(
            retry=RetryPolicy.from_mapping(d.get("retry")),
            breaker=CircuitPolicy.from_mapping(d.get("breaker")),
            escalation=Escalation.from_mapping(d.get("escalation")),
        )

    def guard(self, name: str, **kwargs: Any) -> ServiceGuard:
        """A :class:`ServiceGuard` for service ``name`` with these policies (``kwargs``: the
        guard's callbacks, ``sleep``, ``clock``, ``error``)."""
        return ServiceGuard(name, self.retry, self.breaker, **kwargs)
