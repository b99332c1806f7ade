"""Position sizing: turn the agent's actions into target weights that respect the risk limits."""

from __future__ import annotations

import numpy as np

from adan.market.config import TradingConfig


def num_discrete_actions(trading: TradingConfig) -> int:
    """Choices per asset in discrete mode: {short, flat, long}, or {flat, long} long-only."""
    return 3 if trading.allow_short else 2


def target_weights(actions: np.ndarray, trading: TradingConfig) -> np.ndarray:
    """Target position value per asset as a signed fraction of equity, [N, A] float64.

    Continuous actions in [-1, 1] are clipped (to [0, 1] when shorting is not allowed) and
    scaled by ``max_leverage``. Discrete actions pick -1/0/+1 (short/flat/long; long-only:
    0 = flat, 1 = long) times ``max_leverage``. Finally, when gross exposure sum(|w|) exceeds
    ``max_leverage`` all weights are scaled down together, so going long every asset of a
    discrete action means an equal-weight book.
    """
    if trading.action_mode == "discrete":
        choices = num_discrete_actions(trading)
        weights = np.clip(actions, 0, choices - 1).astype(np.float64)
        if choices == 3:
            weights -= 1.0
    else:
        low = -1.0 if trading.allow_short else 0.0
        weights = np.clip(actions, low, 1.0).astype(np.float64)
    lev = trading.max_leverage
    if lev != 1.0:
        weights *= lev
    gross = np.abs(weights).sum(axis=1)
    if not np.isfinite(gross.sum()):
        raise ValueError("actions contain NaN or infinite values")
    over = gross > lev
    if over.any():
        weights *= np.where(over, lev / np.maximum(gross, lev), 1.0)[:, None]
    return weights
