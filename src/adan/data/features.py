"""Causal technical features over all assets at once, chosen by name.

A feature name is either fixed (``log_return``, ``macd_hist``, ``bollinger``, ``volume_z``) or
parametric, ``<kind>_<n>`` with a window of ``n`` bars (``rsi_7``, ``momentum_48``,
``adx_14``, ...); ``resolve_feature`` turns any valid name into a function. Each feature maps
``Bars`` to a [T, A] float64 array whose row t uses bars <= t only (rolling windows and
recursive EMAs run forward in time). Rows before the feature's declared ``warmup`` are NaN,
never zero-filled; the pipeline drops them. Features are scale-free (returns, ratios,
z-scores) so assets priced at 100 and at 0.5 look alike to the model. Everything is
vectorised over assets and time (pandas / numpy on [T, A] arrays); ``compute_features`` can
also compute the features in parallel threads.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from adan.data.bars import Bars

FeatureFn = Callable[[Bars], np.ndarray]

# Bump on any change to a formula, warm-up or default below: cached features keyed on an older
# version are then recomputed instead of silently reused.
FEATURE_CODE_VERSION: int = 1

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


class _Kind(NamedTuple):
    fn: Callable[[Bars, int], np.ndarray]  # raw values for window n (warm-up not yet masked)
    warmup: Callable[[int], int]  # first row whose value is fully defined
    min_n: int


_KINDS: dict[str, _Kind] = {}  # parametric kinds: name "<kind>_<n>"
_FIXED: dict[str, tuple[FeatureFn, int]] = {}  # fixed names: (raw fn, warmup)
_ALIASES: dict[str, str] = {"bollinger": "bollinger_20", "volume_z": "volume_z_24"}


def _kind(
    name: str, warmup: Callable[[int], int], min_n: int = 2
) -> Callable[[Callable[[Bars, int], np.ndarray]], Callable[[Bars, int], np.ndarray]]:
    def wrap(fn: Callable[[Bars, int], np.ndarray]) -> Callable[[Bars, int], np.ndarray]:
        _KINDS[name] = _Kind(fn, warmup, min_n)
        return fn

    return wrap


def _fixed(name: str, warmup: int) -> Callable[[FeatureFn], FeatureFn]:
    def wrap(fn: FeatureFn) -> FeatureFn:
        _FIXED[name] = (fn, warmup)
        return fn

    return wrap


def _masked(name: str, raw: FeatureFn, warmup: int, doc: str | None) -> FeatureFn:
    """``raw`` with rows < ``warmup`` set to NaN, carrying ``.warmup`` and ``__name__``."""

    def masked(bars: Bars) -> np.ndarray:
        out = np.array(raw(bars), dtype=np.float64)  # a writable copy
        out[:warmup] = np.nan
        return out

    masked.__name__, masked.__qualname__, masked.__doc__ = name, name, doc
    masked.warmup = warmup  # type: ignore[attr-defined]
    return masked


def feature_kinds() -> tuple[str, ...]:
    """Every accepted name pattern (fixed names, then ``<kind>_<n>``), for error messages."""
    fixed = sorted([*_FIXED, *_ALIASES])
    return (*fixed, *(f"{k}_<n>" for k in sorted(_KINDS)))


def _valid_names_text() -> str:
    return (
        f"valid names: {', '.join(feature_kinds())} "
        f"(n = window in bars, e.g. rsi_14, momentum_24; default set {list(DEFAULT_FEATURES)})"
    )


def _parse(name: str) -> tuple[str, int] | None:
    """(kind, n) of a parametric name, or None if it does not look like ``<kind>_<n>``."""
    kind, sep, digits = name.rpartition("_")
    if not sep or not digits.isascii() or not digits.isdigit() or kind not in _KINDS:
        return None
    return kind, int(digits)


@functools.cache
def resolve_feature(name: str) -> FeatureFn:
    """The feature function for ``name`` (fixed or ``<kind>_<n>``), with its ``.warmup``.

    Why: the indicator set is configuration, so any window is valid without registering it.
    Raises ValueError naming the problem and listing the valid patterns.
    """
    if not isinstance(name, str):
        raise ValueError(f"feature name must be a string, got {name!r}; {_valid_names_text()}")
    if name in _FIXED:
        raw, warmup = _FIXED[name]
        return _masked(name, raw, warmup, raw.__doc__)
    if name in _ALIASES:
        target = resolve_feature(_ALIASES[name])
        return _masked(name, target, target.warmup, target.__doc__)  # type: ignore[attr-defined]
    parsed = _parse(name)
    if parsed is None:
        raise ValueError(f"unknown feature {name!r}; {_valid_names_text()}")
    kind, n = parsed
    spec = _KINDS[kind]
    if str(n) != name.rpartition("_")[2]:
        raise ValueError(f"feature {name!r}: write the window without leading zeros ({kind}_{n})")
    if n < spec.min_n:
        raise ValueError(f"feature {name!r}: window n={n} must be >= {spec.min_n} for {kind}_<n>")
    doc = (spec.fn.__doc__ or "").replace("``n``", str(n)).replace("n bars", f"{n} bars")
    return _masked(name, functools.partial(spec.fn, n=n), spec.warmup(n), doc)


def is_known_feature(name: str) -> bool:
    """True if ``name`` resolves to a feature (for config validation without try/except)."""
    try:
        resolve_feature(name)
    except (ValueError, TypeError):
        return False
    return True


def feature_warmup(name: str) -> int:
    """Rows at the start of ``name``'s output that are NaN (bars it needs before its first value)."""
    return int(resolve_feature(name).warmup)  # type: ignore[attr-defined]


# --- helpers ---------------------------------------------------------------------------------


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


def _prev(x: np.ndarray) -> np.ndarray:
    """x shifted one bar forward in time (row 0 NaN)."""
    return np.vstack([np.full((1, x.shape[1]), np.nan), x[:-1]])


def _true_range(bars: Bars) -> np.ndarray:
    """max(high - low, |high - prev close|, |low - prev close|); row 0 is high - low."""
    prev = _prev(bars.close)
    return np.fmax(bars.high - bars.low, np.fmax(abs(bars.high - prev), abs(bars.low - prev)))


# --- fixed features --------------------------------------------------------------------------


@_fixed("log_return", warmup=1)
def log_return(bars: Bars) -> np.ndarray:
    """Log return of the last bar."""
    return _log_return(bars.close, 1)


@_fixed("filled", warmup=0)
def filled(bars: Bars) -> np.ndarray:
    """1 where cleaning filled the bar in for a gap (flat at the last close), else 0: the
    model can tell a quiet market from missing data."""
    if bars.filled is None:
        return np.zeros_like(bars.close)
    return bars.filled.astype(np.float64)


@_fixed("macd_hist", warmup=34)
def macd_hist(bars: Bars) -> np.ndarray:
    """MACD(12, 26, 9) histogram divided by close."""
    close = _frame(bars.close)
    macd = _ema(close, span=12) - _ema(close, span=26)
    return (macd - _ema(macd, span=9)).to_numpy() / bars.close


# --- parametric features <kind>_<n> ----------------------------------------------------------


@_kind("momentum", warmup=lambda n: n, min_n=1)
def momentum(bars: Bars, n: int) -> np.ndarray:
    """Log return over the last n bars."""
    return _log_return(bars.close, n)


@_kind("volatility", warmup=lambda n: n)
def volatility(bars: Bars, n: int) -> np.ndarray:
    """Standard deviation of 1-bar log returns over the last n bars."""
    return _frame(_log_return(bars.close, 1)).rolling(n).std().to_numpy()


@_kind("rsi", warmup=lambda n: n)
def rsi(bars: Bars, n: int) -> np.ndarray:
    """Wilder RSI(``n``) mapped from [0, 100] to [-1, 1]."""
    delta = _frame(np.diff(bars.close, axis=0, prepend=np.nan))
    gain = _ema(delta.clip(lower=0.0), alpha=1 / n).to_numpy()
    loss = _ema((-delta).clip(lower=0.0), alpha=1 / n).to_numpy()
    # RSI/50 - 1 = (gain - loss) / (gain + loss); a flat window reads 0.
    return _ratio(gain - loss, gain + loss)


@_kind("atr", warmup=lambda n: n)
def atr(bars: Bars, n: int) -> np.ndarray:
    """Wilder ATR(``n``) divided by close."""
    return _ema(_frame(_true_range(bars)), alpha=1 / n).to_numpy() / bars.close


@_kind("bollinger", warmup=lambda n: n - 1)
def bollinger_band(bars: Bars, n: int) -> np.ndarray:
    """Position in the n-bar Bollinger band: (close - SMA) / (2 * std); ``bollinger`` is n=20."""
    roll = _frame(bars.close).rolling(n)
    return _ratio(bars.close - roll.mean().to_numpy(), 2.0 * roll.std().to_numpy())


@_kind("volume_z", warmup=lambda n: n - 1)
def volume_zscore(bars: Bars, n: int) -> np.ndarray:
    """Z-score of log(1 + volume) against its last n bars; ``volume_z`` is n=24.

    Log because volume is heavy-tailed.
    """
    logv = np.log1p(bars.volume)
    roll = _frame(logv).rolling(n)
    return _ratio(logv - roll.mean().to_numpy(), roll.std().to_numpy())


@_kind("ema_ratio", warmup=lambda n: n)
def ema_ratio(bars: Bars, n: int) -> np.ndarray:
    """close / EMA(span ``n``) - 1: distance of the price from its trend."""
    return bars.close / _ema(_frame(bars.close), span=n).to_numpy() - 1.0


@_kind("adx", warmup=lambda n: 2 * n)
def adx(bars: Bars, n: int) -> np.ndarray:
    """Wilder ADX(``n``) scaled from [0, 100] to [0, 1]: trend strength, not direction.

    +DM / -DM, true range and DX are smoothed recursively with alpha = 1/``n`` (seeded with the
    first value, like rsi and atr); a flat market reads 0.
    """
    up = bars.high - _prev(bars.high)
    down = _prev(bars.low) - bars.low
    plus = np.where((up > down) & (up > 0), up, 0.0)
    minus = np.where((down > up) & (down > 0), down, 0.0)
    missing = np.isnan(up) | np.isnan(down)
    plus[missing], minus[missing] = np.nan, np.nan
    tr = _true_range(bars)
    tr[0] = np.nan  # start with the directional moves, at row 1
    alpha = 1 / n
    sm_tr = _ema(_frame(tr), alpha=alpha).to_numpy()
    plus_di = _ratio(_ema(_frame(plus), alpha=alpha).to_numpy(), sm_tr)
    minus_di = _ratio(_ema(_frame(minus), alpha=alpha).to_numpy(), sm_tr)
    dx = _ratio(np.abs(plus_di - minus_di), plus_di + minus_di)
    return _ema(_frame(dx), alpha=alpha).to_numpy()


@_kind("volume_ratio", warmup=lambda n: n - 1)
def volume_ratio(bars: Bars, n: int) -> np.ndarray:
    """log(1 + volume / mean volume of the last n bars): log(2) ~ 0.69 reads an average bar."""
    mean = _frame(bars.volume).rolling(n).mean().to_numpy()
    return np.log1p(_ratio(np.array(bars.volume, dtype=np.float64), mean))


@_kind("obv_ratio", warmup=lambda n: n)
def obv_ratio(bars: Bars, n: int) -> np.ndarray:
    """On-balance-volume change over n bars / volume traded in them, in [-1, 1].

    +1: every bar of the window closed up; -1: every bar closed down.
    """
    signed = np.sign(np.diff(bars.close, axis=0, prepend=np.nan)) * bars.volume
    num = _frame(signed).rolling(n).sum().to_numpy()
    den = _frame(bars.volume).rolling(n).sum().to_numpy()
    return np.clip(_ratio(num, den), -1.0, 1.0)  # clip: rolling-sum rounding only


# Pre-resolved named features (the defaults, including every fixed name); any other
# ``<kind>_<n>`` is available through ``resolve_feature``.
FEATURES: dict[str, FeatureFn] = {n: resolve_feature(n) for n in DEFAULT_FEATURES}


# --- computing -------------------------------------------------------------------------------


def select_assets(bars: Bars, idx: Sequence[int] | np.ndarray) -> Bars:
    """A ``Bars`` holding only assets ``idx`` (in that order), as C-contiguous copies.

    Every 2-D [T, A] array field is sliced (so future per-asset fields, e.g. a ``filled`` mask,
    follow); timestamps, regimes and other fields pass through unchanged.
    """
    idx = np.asarray(idx, dtype=np.intp).reshape(-1)
    t, a = len(bars.timestamps), len(bars.assets)
    if idx.size and (idx.min() < -a or idx.max() >= a):
        raise IndexError(f"asset indices {idx.tolist()} out of range for {a} assets")
    changes: dict[str, object] = {"assets": tuple(bars.assets[i] for i in idx)}
    for f in dataclasses.fields(bars):
        value = getattr(bars, f.name)
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape == (t, a):
            changes[f.name] = np.ascontiguousarray(value[:, idx])
    return dataclasses.replace(bars, **changes)


def _check_names(names: Sequence[str]) -> list[str]:
    names = list(names)
    if not names:
        raise ValueError(f"no features requested; {_valid_names_text()}")
    for n in names:
        resolve_feature(n)  # raises with the valid patterns
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate feature names in {names}")
    return names


def _compute_block(bars: Bars, names: Sequence[str]) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):  # bad prices -> NaN, caught downstream
        return np.stack([resolve_feature(n)(bars) for n in names], axis=-1)


def require_finite(
    x: np.ndarray, bars: Bars, names: Sequence[str], first: int, where: str = ""
) -> None:
    """Refuse a non-finite value in features ``x`` [T, A, F] (rows ``first``.. of ``bars``),
    naming the feature, asset and bar: after the warm-up every value must be a number."""
    bad = ~np.isfinite(x)
    if bad.any():
        t, a, f = np.argwhere(bad)[0]
        raise ValueError(
            f"{where}feature {names[f]!r} is {x[t, a, f]} for asset {bars.assets[a]!r} at "
            f"{bars.timestamps[first + t]} (row {first + t}) after warm-up; check the input "
            "bars there (non-positive or missing prices?)"
        )


def compute_features(bars: Bars, names: Sequence[str], n_jobs: int = 1) -> tuple[np.ndarray, int]:
    """Stack the named features into [T, A, F] float64; also return the warm-up row count.

    Rows < warmup hold NaN for at least one feature and must be dropped, not filled. With
    ``n_jobs`` > 1 (or -1: all cores) the features are computed in parallel threads: each one
    is a few numpy/pandas kernels over the whole [T, A] block, which release the GIL, so
    threads share the bars without copying them (processes measured slower: the arrays
    must travel). The result is bit-identical to ``n_jobs=1``.
    """
    names = _check_names(names)
    if int(n_jobs) != n_jobs or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs={n_jobs} must be a positive integer or -1 (all cores)")
    warmup = min(max(feature_warmup(n) for n in names), len(bars))
    workers = 1
    if n_jobs != 1 and len(names) > 1:
        import joblib

        workers = min(joblib.effective_n_jobs(int(n_jobs)), len(names))
    if workers <= 1:
        return _compute_block(bars, names), warmup
    import joblib

    parts = joblib.Parallel(n_jobs=workers, prefer="threads")(
        joblib.delayed(_compute_block)(bars, [name]) for name in names
    )
    return np.concatenate(parts, axis=-1), warmup
