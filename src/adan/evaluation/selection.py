"""Statistics of choosing the best of N trials: how much of the winner's score the choice itself
explains.

- :func:`probabilistic_sharpe_ratio` (PSR; Bailey & López de Prado, "The Sharpe Ratio Efficient
  Frontier", 2012): the probability that the true Sharpe ratio exceeds a benchmark, given the
  sample length and the returns' skewness and kurtosis.
- :func:`expected_max_sharpe` and :func:`deflated_sharpe_ratio` (DSR; Bailey & López de Prado,
  "The Deflated Sharpe Ratio", 2014): the PSR against the Sharpe ratio the best of N trials
  would reach by luck alone.
- :func:`probability_of_backtest_overfitting` (PBO; Bailey, Borwein, López de Prado & Zhu, "The
  Probability of Backtest Overfitting", 2017): by combinatorially symmetric cross-validation
  (CSCV), how often the trial best on one half of the bars ranks at or below the median on the
  other half.

Every Sharpe ratio here is per bar and not annualised: the mean over the sample standard
deviation (ddof 1) of per-bar returns. The formulas need it so (the PSR scales it by
``sqrt(T - 1)`` with ``T`` the number of bars). To use annualised figures, divide a Sharpe ratio
by ``sqrt(bars per year)`` and a variance of Sharpe ratios by ``bars per year``. Skewness and
kurtosis are the sample moments ``m3 / m2**1.5`` and ``m4 / m2**2`` (no small-sample
correction); kurtosis is Pearson's, not excess: 3 for normal returns.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from adan.evaluation.metrics import MIN_STD

EULER_GAMMA = float(np.euler_gamma)
# the fewest bars whose skewness (3) and kurtosis (4) are defined
MIN_BARS = 4
# the fewest bars in a CSCV block: any half of the blocks then has a standard deviation
MIN_BLOCK_BARS = 2


def _sharpe(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``mean / std``; where ``std <= MIN_STD`` (no dispersion): 0 if the mean is 0 too (a book
    that never moved earned nothing), else ±inf."""
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    flat = std <= MIN_STD
    out = np.divide(mean, std, out=np.zeros(np.broadcast(mean, std).shape), where=~flat)
    moved = flat & (np.abs(mean) > MIN_STD)
    out[moved] = np.copysign(np.inf, mean[moved])
    return out


def per_bar_sharpe(returns: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe ratio of each column of ``returns`` (``[T]`` or ``[T, N]``): mean / std
    (ddof 1), not annualised. A column with no dispersion has Sharpe 0 if its mean is 0 and ±inf
    otherwise (``metrics.performance`` says nan there; a ranking needs a total order)."""
    r = np.asarray(returns, dtype=np.float64)
    if r.shape[0] < 2:
        raise ValueError(f"a Sharpe ratio needs at least 2 bars, got {r.shape[0]}")
    return _sharpe(r.mean(axis=0), r.std(axis=0, ddof=1))


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """P(true Sharpe > ``sr_benchmark``) given the observed per-bar Sharpe ``sr`` over ``n_obs``
    bars whose returns have skewness ``skew`` and (Pearson) ``kurtosis``:
    ``Φ((sr - sr*) sqrt(n_obs - 1) / sqrt(1 - skew sr + (kurtosis - 1) / 4 sr²))``."""
    values = {"sr": sr, "sr_benchmark": sr_benchmark, "skew": skew, "kurtosis": kurtosis}
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        raise ValueError(f"probabilistic_sharpe_ratio needs finite inputs, got {bad}")
    if n_obs < 2:
        raise ValueError(f"probabilistic_sharpe_ratio needs n_obs >= 2 bars, got {n_obs}")
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if var <= 0:
        raise ValueError(
            f"the Sharpe ratio's variance is not positive for sr={sr}, skew={skew}, "
            f"kurtosis={kurtosis}: the moments are inconsistent (kurtosis must be at least "
            "1 + skew²; pass Pearson kurtosis, 3 for normal returns, not excess kurtosis)"
        )
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """E[max Sharpe] of ``n_trials`` independent trials whose Sharpe ratios are normal with mean
    0 and variance ``sharpe_variance`` (no trial has an edge):
    ``sqrt(V) ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))``, γ the Euler-Mascheroni constant."""
    if int(n_trials) != n_trials or n_trials < 2:
        raise ValueError(f"expected_max_sharpe needs n_trials >= 2 (an integer), got {n_trials}")
    if not (math.isfinite(sharpe_variance) and sharpe_variance >= 0):
        raise ValueError(
            f"expected_max_sharpe needs a finite sharpe_variance >= 0, got {sharpe_variance}"
        )
    n = float(n_trials)
    z = (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n) + EULER_GAMMA * stats.norm.ppf(
        1 - 1 / (n * math.e)
    )
    return float(math.sqrt(sharpe_variance) * z)


@dataclass(frozen=True)
class DeflatedSharpe:
    """The DSR of a chosen trial and what it was computed from (per-bar Sharpe ratios)."""

    dsr: float  # P(true Sharpe > sr0)
    sr0: float  # the benchmark: the expected maximum Sharpe of n_trials trials without an edge
    sr: float  # the chosen trial's observed Sharpe
    n_trials: int
    n_obs: int  # T, bars in the chosen trial's series
    skew: float
    kurtosis: float  # Pearson: 3 for normal returns
    sharpe_variance: float  # V, the variance (ddof 1) of the trials' Sharpe ratios

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def deflated_sharpe_ratio(
    returns_of_best: np.ndarray,
    trial_sharpes: np.ndarray,
    *,
    n_trials: int | None = None,
    sharpe_variance: float | None = None,
) -> DeflatedSharpe:
    """The DSR of the trial chosen as the best: the PSR of its per-bar ``returns_of_best``
    against ``expected_max_sharpe(N, V)``.

    ``trial_sharpes``: the per-bar Sharpe ratio of every trial the choice was made among (the
    chosen one included). ``N`` is ``n_trials`` if given (e.g. to count trials tried whose
    returns are lost; it cannot be fewer than the Sharpes given), else ``len(trial_sharpes)``;
    ``V`` is ``sharpe_variance`` if given, else their variance (ddof 1).
    """
    r = np.asarray(returns_of_best, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns_of_best must be one series [T], got shape {r.shape}")
    if len(r) < MIN_BARS:
        raise ValueError(
            f"returns_of_best has {len(r)} bars: the DSR needs at least {MIN_BARS} (its skewness "
            "and kurtosis are undefined below)"
        )
    if not np.isfinite(r).all():
        raise ValueError(
            f"returns_of_best holds {int((~np.isfinite(r)).sum())} non-finite values (nan/inf): "
            "clean or drop those bars first"
        )
    std = float(r.std(ddof=1))
    if std <= MIN_STD:
        raise ValueError(
            "returns_of_best has zero variance (a constant series): its Sharpe ratio and the DSR "
            "are undefined"
        )
    s = np.asarray(trial_sharpes, dtype=np.float64).ravel()
    if len(s) < 2:
        raise ValueError(
            f"the DSR needs the Sharpe ratios of at least 2 trials, got {len(s)}: with one trial "
            "there was no selection to deflate (use probabilistic_sharpe_ratio)"
        )
    if not np.isfinite(s).all():
        raise ValueError(f"trial_sharpes must be finite, got {s[~np.isfinite(s)].tolist()}")
    n = len(s) if n_trials is None else int(n_trials)
    if n < len(s):
        raise ValueError(f"n_trials={n_trials} is fewer than the {len(s)} trial Sharpes given")
    var = float(s.var(ddof=1)) if sharpe_variance is None else float(sharpe_variance)
    sr = float(r.mean() / std)
    skew = float(stats.skew(r))
    kurt = float(stats.kurtosis(r, fisher=False))
    sr0 = expected_max_sharpe(n, var)
    dsr = probabilistic_sharpe_ratio(sr, sr0, len(r), skew, kurt)
    return DeflatedSharpe(dsr, sr0, sr, n, len(r), skew, kurt, var)


# ---------------------------------------------------------------------------------------------
# Probability of backtest overfitting


@dataclass(frozen=True)
class BacktestOverfitting:
    """CSCV's verdict on choosing the best of ``n_trials``; arrays have one entry per
    combination of ``n_splits / 2`` in-sample blocks."""

    pbo: float  # the fraction of combinations whose logit is <= 0
    logits: np.ndarray  # λ = ln(ω̄ / (1 - ω̄)), ω̄ the IS-best trial's OOS rank / (N + 1)
    is_best: np.ndarray  # the in-sample metric of the in-sample best trial
    oos_of_best: np.ndarray  # the same trial's out-of-sample metric
    prob_oos_loss: float  # the fraction of combinations where oos_of_best < 0
    degradation_slope: float  # OLS slope of oos_of_best on is_best (nan if undefined)
    degradation_intercept: float
    n_splits: int
    n_trials: int
    n_bars: int  # bars used: n_splits whole blocks
    n_dropped: int  # the oldest bars left out so the blocks are of equal length

    @property
    def n_combinations(self) -> int:
        return len(self.logits)

    def as_dict(self) -> dict[str, Any]:
        """The scalar figures (no per-combination arrays)."""
        keys = ("pbo", "prob_oos_loss", "degradation_slope", "degradation_intercept")
        out: dict[str, Any] = {k: getattr(self, k) for k in keys}
        out.update(
            n_splits=self.n_splits,
            n_combinations=self.n_combinations,
            n_trials=self.n_trials,
            n_bars=self.n_bars,
            n_dropped=self.n_dropped,
        )
        return out


def feasible_n_splits(n_bars: int, n_splits: int) -> int:
    """The largest even number of blocks <= ``n_splits`` that leaves at least
    ``MIN_BLOCK_BARS`` bars in each; 0 when even 2 blocks do not fit."""
    s = min(int(n_splits), int(n_bars) // MIN_BLOCK_BARS)
    s -= s % 2
    return s if s >= 2 else 0


def _blocks_sharpe(m: np.ndarray, n_splits: int, in_sample: np.ndarray) -> tuple:
    """The Sharpe ratio of every trial over the in-sample and the complementary blocks of each
    combination, from per-block sums (``m`` centred per trial first, so the variance does not
    lose precision to a large mean)."""
    t, n = m.shape
    b = t // n_splits
    col_mean = m.mean(axis=0)
    c = m - col_mean
    s1 = c.reshape(n_splits, b, n).sum(axis=1)  # [S, N]
    s2 = (c * c).reshape(n_splits, b, n).sum(axis=1)
    rows = b * n_splits // 2

    def sharpe(w: np.ndarray) -> np.ndarray:
        sum1, sum2 = w @ s1, w @ s2  # [C, N]
        var = np.maximum(sum2 - sum1 * sum1 / rows, 0.0) / (rows - 1)
        return _sharpe(col_mean + sum1 / rows, np.sqrt(var))

    w = in_sample.astype(np.float64)
    return sharpe(w), sharpe(1.0 - w)


def _loop_metric(
    m: np.ndarray, n_splits: int, in_sample: np.ndarray, metric: Callable
) -> tuple[np.ndarray, np.ndarray]:
    b = m.shape[0] // n_splits
    blocks = m.reshape(n_splits, b, m.shape[1])
    is_m, oos_m = [], []
    for mask in in_sample:
        is_m.append(np.asarray(metric(blocks[mask].reshape(-1, m.shape[1])), dtype=np.float64))
        oos_m.append(np.asarray(metric(blocks[~mask].reshape(-1, m.shape[1])), dtype=np.float64))
    return np.stack(is_m), np.stack(oos_m)


def probability_of_backtest_overfitting(
    returns: np.ndarray,
    n_splits: int = 16,
    metric: Callable[[np.ndarray], np.ndarray] = per_bar_sharpe,
) -> BacktestOverfitting:
    """PBO of picking the best of N trials by ``metric``, by CSCV over ``returns`` ``[T, N]``
    (per-bar returns, one column per trial, rows aligned in time).

    The rows are cut into ``n_splits`` (S) contiguous blocks of ``T // S`` bars; the ``T % S``
    oldest rows are dropped so the blocks are equal. For each of the ``C(S, S/2)`` ways to take
    S/2 blocks as in-sample (IS, in time order) and the rest as out-of-sample (OOS), the trial
    with the best IS metric is found and its OOS rank among the N trials, 1 (worst) to N (best),
    becomes ω̄ = rank / (N + 1) and the logit λ = ln(ω̄ / (1 - ω̄)). PBO is the fraction of
    combinations with λ <= 0: the IS winner did no better than the OOS median.

    Ties: the IS best is the first of the tied trials in column order (as ``np.argmax``); OOS
    ranks of tied trials are their average rank (as ``scipy.stats.rankdata``), so identical
    trials share one rank. ``metric`` maps ``[rows, N]`` to ``[N]`` (higher is better); the
    default per-bar Sharpe is computed from per-block sums, any other metric in a loop over the
    combinations (S = 16 gives 12870).
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"returns must be a matrix [T bars, N trials], got shape {m.shape}")
    t, n = m.shape
    if n < 2:
        raise ValueError(f"PBO needs at least 2 trials (columns) to choose among, got {n}")
    if not np.isfinite(m).all():
        bad = sorted({int(j) for j in np.nonzero(~np.isfinite(m))[1]})
        raise ValueError(f"returns hold non-finite values (nan/inf) in trial columns {bad}")
    if int(n_splits) != n_splits or n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even integer >= 2, got {n_splits}")
    n_splits = int(n_splits)
    if t // n_splits < MIN_BLOCK_BARS:
        best = feasible_n_splits(t, n_splits)
        hint = f"use n_splits={best} or fewer" if best else "more bars are needed"
        raise ValueError(
            f"n_splits={n_splits} leaves {t // n_splits} bars per block of {t} bars: each block "
            f"needs at least {MIN_BLOCK_BARS} ({hint})"
        )
    dropped = t % n_splits
    m = m[dropped:]
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)))
    in_sample = np.zeros((len(combos), n_splits), dtype=bool)
    in_sample[np.arange(len(combos))[:, None], combos] = True
    if metric is per_bar_sharpe:
        is_m, oos_m = _blocks_sharpe(m, n_splits, in_sample)
    else:
        is_m, oos_m = _loop_metric(m, n_splits, in_sample, metric)
        if is_m.shape != (len(combos), n):
            raise ValueError(f"metric must return one value per trial ({n}), got {is_m.shape[1:]}")
    if np.isnan(is_m).any() or np.isnan(oos_m).any():
        raise ValueError("metric returned nan for some trials: it cannot rank them")
    rows = np.arange(len(combos))
    best = np.argmax(is_m, axis=1)
    chosen = oos_m[rows, best][:, None]
    rank = (oos_m < chosen).sum(axis=1) + ((oos_m == chosen).sum(axis=1) + 1) / 2
    w = rank / (n + 1)
    logits = np.log(w / (1 - w))
    is_best = is_m[rows, best]
    oos_best = chosen[:, 0]
    slope, intercept = _ols(is_best, oos_best)
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        is_best=is_best,
        oos_of_best=oos_best,
        prob_oos_loss=float(np.mean(oos_best < 0)),
        degradation_slope=slope,
        degradation_intercept=intercept,
        n_splits=n_splits,
        n_trials=n,
        n_bars=len(m),
        n_dropped=dropped,
    )


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of y on x over the finite pairs; nan when x does not vary."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan
    fit = stats.linregress(x, y)
    return float(fit.slope), float(fit.intercept)
