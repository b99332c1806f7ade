"""Causal technical features over all assets at once, chosen by name from a registry.

Each feature maps ``Bars`` to a [T, A] float64 array whose row t uses bars <= t only (rolling
windows and recursive EMAs run forward in time). Rows before the feature's declared
``warmup`` are NaN, never zero-filled; the pipeline drops them. Features are scale-free
(returns, ratios, z-scores) so assets priced at 100 and at 0.5 look alike to the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from adan.data.bars import Bars

FeatureFn = Callable[[Bars], np.ndarray]
FEATURES: dict[str, FeatureFn] = {}
DEFAULT_FEATURES: tuple[str, ...] = (
    "log_return",
    "momentum_6",
    "momentum_24",
    "volatility_24",
    "rsi_14",
    "macd_hist",
    "atr_14",
    "bollinger",
    "volume_z",
)


def feature(name: str, warmup: int) -> Callable[[FeatureFn], FeatureFn]:
    """Register ``fn`` under ``name``; rows < ``warmup`` of its output are set to NaN."""

    def wrap(fn: FeatureFn) -> FeatureFn:
        def masked(bars: Bars) -> np.ndarray:
            out = np.array(fn(bars), dtype=np.float64)  # a writable copy
            out[:warmup] = np.nan
            return out

        masked.__name__, masked.__doc__ = fn.__name__, fn.__doc__
        masked.warmup = warmup  # type: ignore[attr-defined]
        FEATURES[name] = masked
        return masked

    return wrap


def _frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den == 0 (flat windows) and NaN where either is NaN."""
    out = np.divide(num, den, out=np.zeros_like(num), where=den != 0)
    out[np.isnan(num) | np.isnan(den)] = np.nan
    return out


def _ema(x: pd.DataFrame, span: float | None = None, alpha: float | None = None) -> pd.DataFrame:
    return x.ewm(span=span, alpha=alpha, adjust=False).mean()


def _log_return(close: np.ndarray, lag: int) -> np.ndarray:
    out = np.full_like(close, np.nan)
    out[lag:] = np.log(close[lag:] / close[:-lag])
    return out


@feature("log_return", warmup=1)
def log_return(bars: Bars) -> np.ndarray:
    """Log return of the last bar."""
    return _log_return(bars.close, 1)


@feature("momentum_6", warmup=6)
def momentum_6(bars: Bars) -> np.ndarray:
    """Log return over the last 6 bars."""
    return _log_return(bars.close, 6)


@feature("momentum_24", warmup=24)
def momentum_24(bars: Bars) -> np.ndarray:
    """Log return over the last 24 bars."""
    return _log_return(bars.close, 24)


@feature("volatility_24", warmup=24)
def volatility_24(bars: Bars) -> np.ndarray:
    """Standard deviation of 1-bar log returns over the last 24 bars."""
    return _frame(_log_return(bars.close, 1)).rolling(24).std().to_numpy()


@feature("rsi_14", warmup=14)
def rsi_14(bars: Bars) -> np.ndarray:
    """Wilder RSI(14) mapped from [0, 100] to [-1, 1]."""
    delta = _frame(np.diff(bars.close, axis=0, prepend=np.nan))
    gain = _ema(delta.clip(lower=0.0), alpha=1 / 14).to_numpy()
    loss = _ema((-delta).clip(lower=0.0), alpha=1 / 14).to_numpy()
    # RSI/50 - 1 = (gain - loss) / (gain + loss); a flat window reads 0.
    return _ratio(gain - loss, gain + loss)


@feature("macd_hist", warmup=34)
def macd_hist(bars: Bars) -> np.ndarray:
    """MACD(12, 26, 9) histogram divided by close."""
    close = _frame(bars.close)
    macd = _ema(close, span=12) - _ema(close, span=26)
    return (macd - _ema(macd, span=9)).to_numpy() / bars.close


@feature("atr_14", warmup=14)
def atr_14(bars: Bars) -> np.ndarray:
    """Wilder ATR(14) divided by close."""
    prev = np.vstack([np.full((1, bars.close.shape[1]), np.nan), bars.close[:-1]])
    tr = np.fmax(bars.high - bars.low, np.fmax(abs(bars.high - prev), abs(bars.low - prev)))
    return _ema(_frame(tr), alpha=1 / 14).to_numpy() / bars.close


@feature("bollinger", warmup=19)
def bollinger(bars: Bars) -> np.ndarray:
    """Position in the 20-bar Bollinger band: (close - SMA20) / (2 * std20)."""
    roll = _frame(bars.close).rolling(20)
    return _ratio(bars.close - roll.mean().to_numpy(), 2.0 * roll.std().to_numpy())


@feature("volume_z", warmup=23)
def volume_z(bars: Bars) -> np.ndarray:
    """Z-score of log(1 + volume) against its last 24 bars (log: volume is heavy-tailed)."""
    logv = np.log1p(bars.volume)
    roll = _frame(logv).rolling(24)
    return _ratio(logv - roll.mean().to_numpy(), roll.std().to_numpy())


def compute_features(bars: Bars, names: Sequence[str]) -> tuple[np.ndarray, int]:
    """Stack the named features into [T, A, F] float64; also return the warm-up row count.

    Rows < warmup hold NaN for at least one feature and must be dropped, not filled.
    """
    names = list(names)
    if not names:
        raise ValueError(f"no features requested; valid names: {sorted(FEATURES)}")
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown feature {unknown[0]!r}; valid names: {sorted(FEATURES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate feature names in {names}")
    with np.errstate(divide="ignore", invalid="ignore"):  # bad prices -> NaN, caught downstream
        out = np.stack([FEATURES[n](bars) for n in names], axis=-1)
    warmup = max(FEATURES[n].warmup for n in names)  # type: ignore[attr-defined]
    return out, min(warmup, len(bars))
