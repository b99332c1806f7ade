"""Stationary block bootstrap (Politis & Romano, 1994) and a Sharpe-ratio interval from it.

Per-bar trading returns are serially dependent (volatility clusters, positions persist), so
resampling single bars understates the uncertainty; the stationary bootstrap resamples blocks
of consecutive bars with random (geometric) lengths, wrapping around the end of the sample.
"""

from __future__ import annotations

import numpy as np

from adan.evaluation.metrics import MIN_STD

# resampled values held at once in sharpe_confidence_interval (about 32 MB of float64)
_CHUNK_ELEMENTS = 4_000_000


def stationary_bootstrap_indices(
    n: int, n_boot: int, mean_block: float, rng: np.random.Generator
) -> np.ndarray:
    """Indices ``[n_boot, n]`` of ``n_boot`` stationary-bootstrap resamples of ``0..n-1``.

    Each resample is a chain of blocks: a block starts at a uniform random index and runs on
    through consecutive indices (``n-1`` wraps to ``0``); after every element a new block
    starts with probability ``1 / mean_block``, so block lengths are geometric with mean
    ``mean_block`` (``mean_block = 1``: the iid bootstrap). Vectorised over resamples and
    positions.
    """
    if n < 1 or n_boot < 0:
        raise ValueError(f"need n >= 1 and n_boot >= 0, got n={n}, n_boot={n_boot}")
    if not mean_block >= 1:
        raise ValueError(f"mean_block must be >= 1, got {mean_block}")
    starts = rng.integers(0, n, size=(n_boot, n))
    new_block = rng.random((n_boot, n)) < 1.0 / mean_block
    new_block[:, 0] = True
    pos = np.arange(n)
    # position in the resample where the current block began
    block_pos = np.maximum.accumulate(np.where(new_block, pos, 0), axis=1)
    first = np.take_along_axis(starts, block_pos, axis=1)
    return (first + (pos - block_pos)) % n


def sharpe_confidence_interval(
    returns: np.ndarray,
    bars_per_year: float,
    n_boot: int = 1000,
    mean_block: float | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile ``1 - alpha`` interval of the annualised Sharpe ratio of per-bar ``returns``
    (``mean / std(ddof=1) * sqrt(bars_per_year)``, as ``metrics.performance``), from
    ``n_boot`` stationary-bootstrap resamples.

    ``mean_block`` defaults to ``round(n ** (1/3))`` (at least 1). Resamples are drawn in
    chunks of whole resamples; the result depends only on the arguments (``seed`` included).
    Resamples with zero dispersion (std <= ``metrics.MIN_STD``: undefined Sharpe) are left
    out; (nan, nan) for fewer than 2 returns or when no resample has a defined Sharpe.
    """
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    n = len(r)
    if n < 2 or n_boot < 1:
        return float("nan"), float("nan")
    if mean_block is None:
        mean_block = max(1, round(n ** (1 / 3)))
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    sharpes = np.empty(n_boot)
    for lo in range(0, n_boot, chunk):
        hi = min(n_boot, lo + chunk)
        sample = r[stationary_bootstrap_indices(n, hi - lo, mean_block, rng)]
        mean = sample.mean(axis=1)
        std = sample.std(axis=1, ddof=1)
        ok = std > MIN_STD
        sharpes[lo:hi] = np.divide(mean, std, out=np.full(hi - lo, np.nan), where=ok)
    sharpes = sharpes[np.isfinite(sharpes)] * np.sqrt(bars_per_year)
    if sharpes.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(sharpes, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def sharpe_difference_interval(
    returns: np.ndarray,
    other: np.ndarray,
    bars_per_year: float,
    mean_block: float,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(difference, low, high): the annualised Sharpe ratio of ``returns`` minus that of
    ``other`` over the same bars, and its paired percentile ``1 - alpha`` interval.

    Paired: each resample draws the same stationary-bootstrap bars for both series, so what
    the two strategies share (the market's moves) cancels out and the interval is of the
    difference alone. An interval above 0 says the first beats the second on these bars.
    """
    a = np.asarray(returns, dtype=np.float64).reshape(-1)
    b = np.asarray(other, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired series differ in length: {a.shape[0]} and {b.shape[0]} bars")
    n = len(a)
    nan = float("nan")
    if n < 2 or n_boot < 1:
        return nan, nan, nan
    scale = np.sqrt(bars_per_year)

    def sharpe(x: np.ndarray) -> np.ndarray:
        std = x.std(axis=-1, ddof=1)
        return np.divide(x.mean(axis=-1), std, out=np.zeros_like(std), where=std > MIN_STD)

    point = float((sharpe(a) - sharpe(b)) * scale)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // (2 * n))
    diffs = np.empty(n_boot)
    for lo in range(0, n_boot, chunk):
        hi = min(n_boot, lo + chunk)
        idx = stationary_bootstrap_indices(n, hi - lo, mean_block, rng)
        diffs[lo:hi] = sharpe(a[idx]) - sharpe(b[idx])
    low, high = np.quantile(diffs * scale, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)
