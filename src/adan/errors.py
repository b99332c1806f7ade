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
