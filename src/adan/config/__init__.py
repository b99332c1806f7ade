"""Typed config schemas: registered with Hydra's ConfigStore and checked before any work starts."""

from adan.config.schema import ConfigError, register_configs, validate_config

__all__ = ["ConfigError", "register_configs", "validate_config"]
