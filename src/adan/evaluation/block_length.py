"""How long the bootstrap's blocks must be for an interval to mean what it says.

A stationary bootstrap with blocks shorter than the dependence of the returns (positions held
for days, volatility regimes of weeks) resamples them as if they were nearly independent, and
its interval is too narrow. Two lower bounds, the longer one wins:

- ``politis_white``: the data-driven optimal mean block of Politis & White (2004), with the
  correction of Patton, Politis & White (2009), from the flat-top lag-window estimate of the
  returns' autocovariances;
- ``mean_holding_period``: how many bars a position of one sign is held on average (a
  strategy's returns are serially dependent at least that long).
"""

from __future__ import annotations

import math

import numpy as np


def politis_white(x: np.ndarray) -> float:
    """Optimal mean block length of the stationary bootstrap for the mean of ``x`` [n].

    Lag selection (the conventions of ``arch``'s ``optimal_block_length``, against which the
    tests check it): ``m`` is the first lag of a run of ``K_N = max(5, int(log10 n))``
    consecutive autocorrelations all below ``2 sqrt(log10 n / n)``; the flat-top window then
    spans ``M = 2 max(m, 1)`` lags (at most ``ceil(sqrt n) + K_N``). The result is capped at
    ``ceil(min(3 sqrt n, n / 3))``, and is at least 1 (the stationary bootstrap's floor).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = len(x)
    if n < 8:
        return 1.0
    eps = x - x.mean()
    kn = max(5, int(math.log10(n)))
    m_max = int(math.ceil(math.sqrt(n))) + kn
    b_max = math.ceil(min(3 * math.sqrt(n), n / 3))
    lags = np.arange(m_max + 1)
    cross = np.array([eps[k:] @ eps[: n - k] for k in lags])
    acv = cross / n
    if acv[0] <= 0:
        return 1.0
    # |autocorrelation| of lag k, normalised by the sums of squares of the lag-(k+1) overlap
    head = np.array([eps[k + 1 :] @ eps[k + 1 :] for k in lags])
    tail = np.array([eps[: n - k - 1] @ eps[: n - k - 1] for k in lags])
    small = np.abs(cross) / np.sqrt(head * tail) < 2 * math.sqrt(math.log10(n) / n)
    m = next((s for s in range(m_max - kn + 1) if small[s : s + kn].all()), None)
    big_m = m_max if m is None else min(2 * max(m, 1), m_max)
    k = np.arange(1, big_m + 1)
    lam = np.where(k / big_m <= 0.5, 1.0, 2.0 * (1.0 - k / big_m))
    g = 2.0 * np.sum(lam * k * acv[k])
    long_run = acv[0] + 2.0 * np.sum(lam * acv[k])
    if long_run <= 0:
        return 1.0
    d_sb = 2.0 * long_run**2
    b = (2.0 * g**2 / d_sb) ** (1 / 3) * n ** (1 / 3)
    return float(min(max(b, 1.0), b_max))


def mean_holding_period(weights: np.ndarray) -> float:
    """Mean length in bars of the runs in which a position of one sign is held ([T] or
    [T, A] of weights; per asset, then averaged over every run); 1 when nothing is held."""
    w = np.sign(np.asarray(weights, dtype=np.float64))
    if w.ndim == 1:
        w = w[:, None]
    lengths: list[int] = []
    for col in w.T:
        change = np.flatnonzero(np.diff(col) != 0) + 1
        edges = np.concatenate([[0], change, [len(col)]])
        runs = np.diff(edges)
        held = col[edges[:-1]] != 0
        lengths.extend(runs[held].tolist())
    return float(np.mean(lengths)) if lengths else 1.0


def bootstrap_block(returns: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, str]:
    """(mean block length, how it was chosen) for an interval on ``returns``: the longer of
    Politis-White and the mean holding period of ``weights`` (when given)."""
    pw = politis_white(returns)
    hold = mean_holding_period(weights) if weights is not None else 1.0
    if hold > pw:
        return hold, "mean holding period"
    return pw, "Politis-White"
