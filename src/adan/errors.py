"""Errors every layer may raise; kept apart so market, data and config import them freely."""


class ConfigError(ValueError):
    """A config value is out of range; the message names the full key."""


def check(ok: bool, key: str, rule: str, value: object) -> None:
    """Raise ``ConfigError("<key> <rule>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} {rule}, got {value!r}")
