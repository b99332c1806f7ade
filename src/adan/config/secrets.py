"""Passwords in config values stay out of what ADAN prints, stores and logs.

A sweep's storage URL (``postgresql://user:password@host/db``) travels in the config and in
each trial's overrides; the study's user attributes, ``sweep_trial.json``, reports, logs and
W&B get it with the password replaced by ``***``.
"""

from __future__ import annotations

import re
from typing import Any

# scheme://user:password@host... (also as Hydra escapes an override value:
# postgresql\://user\:password@host); the password may itself hold ":" or "@"
_USERINFO = re.compile(r"^([A-Za-z][\w+.-]*\\?://[^:/@]*?\\?):.*@([^@]*)$")
_QUERY = re.compile(r"(?i)(password=)[^&;]*")


def mask_password(url: Any) -> Any:
    """``url`` with the password of its ``user:password@`` part, and any ``password=`` query
    value, replaced by ``***``; anything that is not a non-empty string is returned as is."""
    if not isinstance(url, str) or not url:
        return url
    return _QUERY.sub(r"\1***", _USERINFO.sub(r"\1:***@\2", url))


def masked(config: Any) -> Any:
    """``config`` (nested dicts, lists and strings) with every URL's password masked."""
    if isinstance(config, dict):
        return {k: masked(v) for k, v in config.items()}
    if isinstance(config, list | tuple):
        return type(config)(masked(v) for v in config)
    if isinstance(config, str) and "://" in config:
        return mask_password(config)
    return config
