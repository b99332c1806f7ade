"""Errors every layer may raise; kept apart so market, data and config import them freely."""

from __future__ import annotations

import errno


class ConfigError(ValueError):
    """A config value is out of range; the message names the full key."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or trusted; the message names the file and what is
    wrong with it."""


class ResumeMismatchError(ConfigError):
    """Resuming a checkpoint with a config that changes the experiment; the message lists every
    differing key as ``key: checkpoint value -> requested value``."""


class DivergenceError(RuntimeError):
    """Training produced NaN or Inf; the message names the iteration and the quantity."""


class DiskFullError(OSError):
    """No space left while writing a run's files; the message says where and what survived."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return str(self.strerror)


def check(ok: bool, key: str, rule: str, value: object) -> None:
    """Raise ``ConfigError("<key> <rule>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} {rule}, got {value!r}")


# ----------------------------------------------------------------------------- live trading
# What ``trade.py`` raises. ``retryable`` tells the resilience layer (``adan.ops.resilience``)
# whether a call may be tried again (a timeout, a 5xx) or must escalate at once (a bad bar, a
# NaN action, a state that does not belong to this checkpoint).


class TradingError(RuntimeError):
    """Any failure of the live/paper trading loop; ``retryable`` says whether to try again."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = bool(retryable)


class LiveDataError(TradingError):
    """A bar that cannot be used as it is (malformed, NaN in a feature, out of order)."""


class FeedError(TradingError):
    """The bar feed failed (network, server error, timeout); retryable by default."""

    retryable = True


class BrokerError(TradingError):
    """The broker refused or failed an order or a query; retryable by default."""

    retryable = True


class ModelError(TradingError):
    """The policy produced something unusable (NaN or out-of-range actions) or cannot run."""


class LiveConfigError(TradingError, ConfigError):
    """A live setting is missing or invalid (a deploy profile's required key, a hot-reloaded
    file); the message names the key."""


class StateMismatchError(TradingError):
    """Persisted trading state that does not belong to this checkpoint or config; the message
    lists what differs."""
