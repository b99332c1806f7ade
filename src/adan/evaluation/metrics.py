"""Performance metrics of an equity curve, annualised from the bar frequency. No clipping.

Definitions follow empyrical (``empyrical-reloaded``) where it has the metric; the tests in
``tests/evaluation/test_metrics.py`` check them against it. The differences, all by design:

- ``max_drawdown`` is a positive fraction (empyrical: a negative number);
- ``sharpe`` is nan, not ±inf, when the per-bar returns have zero dispersion (std below
  ``MIN_STD``; empyrical: nan only if their mean is 0 as well, and it treats rounding-level
  dispersion as a real one);
- ``calmar`` is nan when there is no drawdown (as empyrical), but is kept when CAGR is infinite
  (empyrical then gives nan).

Per-bar returns are simple returns ``equity[k] / equity[k-1] - 1``. A bar that starts at zero
or negative equity (a ruined account) has return 0: nothing is left to gain or lose. The bar
that takes the equity to 0 has return -1, so a ruined account has total return -1 and CAGR -1.
"""

from __future__ import annotations

import numpy as np

NAN = float("nan")
# per-bar return dispersion below this is rounding noise (e.g. constant growth recovered from a
# compounded curve): the Sharpe ratio is then undefined, as in market.episode's Sharpe
MIN_STD = 1e-12


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """Simple per-bar returns; 0 for a bar that starts with no (or negative) equity."""
    prev, cur = equity[:-1], equity[1:]
    return np.divide(cur - prev, prev, out=np.zeros_like(cur), where=prev > 0)


def _ratio(num: float, den: float) -> float:
    """``num / den``; nan when ``den`` is 0 and ``num`` is 0, ±inf when only ``den`` is."""
    if den > 0:
        return float(num / den)
    if num == 0 or np.isnan(num):
        return NAN
    return float(np.copysign(np.inf, num))


def _drawdown_duration(equity: np.ndarray) -> float:
    """The longest stretch, in bars, from a peak to the first bar that is back at (or above)
    it, or to the last bar if it never recovers; 0 if the curve never falls below a peak."""
    peak = np.maximum.accumulate(equity)
    at_peak = np.flatnonzero(equity >= peak)  # always holds index 0
    gaps = np.diff(at_peak)
    recovered = int(gaps.max()) if gaps.size and gaps.max() > 1 else 0
    open_ = len(equity) - 1 - int(at_peak[-1])  # a drawdown still open at the end
    return float(max(recovered, open_))


def _position_stats(weights: np.ndarray) -> tuple[float, float, float]:
    """(exposure, trades, avg_holding_bars) from weights ``[n+1, A]``.

    Row 0 is the book at the start; row k (k >= 1) the book held during bar k (filled at the
    bar's open, marked at its close). Exposure averages rows 1..n; a trade is a row k >= 1
    whose sign (long / flat / short) differs from row k-1's, per asset; a holding run is a
    maximal stretch of rows 1..n with the same non-zero sign, per asset (a run still open at
    the end counts with the bars it has so far).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    held = w[1:]
    if held.shape[0] == 0:
        return NAN, 0.0, NAN
    exposure = float(np.abs(held).sum(axis=1).mean())
    sign = np.sign(w)
    changes = sign[1:] != sign[:-1]  # [n, A]
    trades = float(changes.sum())
    s = sign[1:]
    # a run starts at row k where the sign is non-zero and differs from the previous row's
    starts = (s != 0) & changes
    runs = int(starts.sum())
    avg_hold = float((s != 0).sum() / runs) if runs else NAN
    return exposure, trades, avg_hold


# The names `performance` returns, in order: the `val/...` metrics a trading run logs.
METRICS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration",
    "volatility",
    "profit_factor",
    "win_rate",
    "exposure",
    "trades",
    "avg_holding_bars",
    "turnover",
    "costs",
    "sharpe_2x_costs",
    "bars",
)


def performance(
    equity: np.ndarray,
    bars_per_year: float,
    turnover: float | np.ndarray = 0.0,
    costs: float | np.ndarray = 0.0,
    weights: np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics of one equity curve ``equity[0..n]`` (equity before the first bar, then after
    each bar; ``equity[0] > 0``), with ``r`` its ``n`` per-bar simple returns.

    ``turnover`` / ``costs`` are totals (costs as a fraction of initial equity) or per-step
    arrays ``[n]`` (turnover as traded notional / equity, costs in cash, divided here by
    ``equity[0]``). ``weights`` ``[n+1, A]`` (or ``[n+1]``): position value / equity per asset,
    row 0 the start, row k the book held during bar k.

    Returned (all floats, nothing clipped):

    - ``total_return``: ``equity[n] / equity[0] - 1`` (empyrical ``cum_returns_final``).
    - ``cagr``: ``(equity[n] / equity[0]) ** (1 / years) - 1`` with
      ``years = n / bars_per_year`` (empyrical ``annual_return``, same year count). -1 for a
      ruined account; nan for no bars or a negative final equity; may be inf when the
      extrapolation of a very short curve overflows float64.
    - ``volatility``: ``std(r, ddof=1) * sqrt(bars_per_year)`` (empyrical
      ``annual_volatility``); nan for fewer than 2 bars.
    - ``sharpe``: ``mean(r) / std(r, ddof=1) * sqrt(bars_per_year)``, risk-free 0 (empyrical
      ``sharpe_ratio``); nan for fewer than 2 bars or zero dispersion (std below
      ``MIN_STD = 1e-12``: constant returns, e.g. a flat book) — empyrical gives ±inf there
      when the mean is not 0.
    - ``sortino``: ``mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(bars_per_year)``, the
      downside deviation over *all* bars, target 0 (empyrical ``sortino_ratio``); nan for fewer
      than 2 bars or when the mean and the downside are both 0; +inf with no losing bar and a
      positive mean (as empyrical).
    - ``max_drawdown``: ``max_k (1 - equity[k] / max_{j<=k} equity[j])``, a positive fraction,
      the running peak including ``equity[0]`` (empyrical ``max_drawdown`` gives the same
      value negated). 0 for a curve that never falls; 1 for a ruined account.
    - ``max_drawdown_duration``: the longest stretch in bars from a peak to the first bar back
      at that peak, or to the last bar if never recovered (not in empyrical).
    - ``calmar``: ``cagr / max_drawdown`` (empyrical ``calmar_ratio``); nan with no drawdown.
    - ``profit_factor``: ``sum(r[r > 0]) / |sum(r[r < 0])|`` over per-bar returns (not
      per trade); inf with no losing bar, nan with no non-zero return.
    - ``win_rate``: the fraction of non-zero per-bar returns that are positive; nan if none.
    - ``exposure``: the mean over bars 1..n of the gross ``sum_a |w[k, a]|``; nan without
      ``weights`` or bars.
    - ``trades``: position changes: per asset, the bars whose weight's sign (long / flat /
      short) differs from the previous row's, summed over assets; nan without ``weights``.
    - ``avg_holding_bars``: the mean length of the runs of same-sign non-zero position, per
      asset, over bars 1..n; nan without ``weights`` or without any position.
    - ``turnover``: total traded notional / equity; ``costs``: total costs / ``equity[0]``.
    - ``sharpe_2x_costs``: the Sharpe ratio of ``r - costs[k] / equity[k]``, each bar's return
      had its costs been paid twice: a turnover-aware score for choosing checkpoints
      (``optimized_metric=val/sharpe_2x_costs``), lower the more of the edge is paid away in
      trading. Needs per-step ``costs``; nan for totals.
    - ``bars``: ``n``.

    Degenerate curves give finite or nan values, with no warning: constant equity (Sharpe,
    Sortino, Calmar, profit factor and win rate nan; drawdown 0), a single bar (volatility,
    Sharpe and Sortino nan), no bar at all (``len(equity) == 1``: returns 0, ratios nan) and an
    account that hits 0 (its later bars have return 0; CAGR -1, max drawdown 1).
    """
    equity = np.asarray(equity, dtype=np.float64).reshape(-1)
    if equity.size == 0:
        raise ValueError("performance needs at least the starting equity")
    if not equity[0] > 0:
        raise ValueError(f"the starting equity must be positive, got {equity[0]}")
    bars_per_year = float(bars_per_year)
    r = bar_returns(equity)
    n = len(r)
    ann = np.sqrt(bars_per_year)
    growth = equity[-1] / equity[0]

    # CAGR: computed in logs so a large exponent overflows to inf without a warning
    if n == 0 or growth < 0:
        cagr = NAN
    elif growth == 0:
        cagr = -1.0
    else:
        with np.errstate(over="ignore"):
            cagr = float(np.expm1(np.log(growth) * bars_per_year / n))

    if n >= 2:
        mean = float(r.mean())
        std = float(r.std(ddof=1))
        volatility = std * ann
        sharpe = mean / std * ann if std > MIN_STD else NAN
        downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
        sortino = _ratio(mean * ann, downside)
    else:
        volatility = sharpe = sortino = NAN

    peak = np.maximum.accumulate(equity)
    max_dd = float(np.max(1.0 - equity / peak))
    calmar = cagr / max_dd if max_dd > 0 else NAN

    gains = float(r[r > 0].sum())
    losses = float(-r[r < 0].sum())
    profit_factor = _ratio(gains, losses)
    moved = r[r != 0]
    win_rate = float(np.mean(moved > 0)) if moved.size else NAN

    if weights is None:
        exposure = trades = avg_hold = NAN
    else:
        exposure, trades, avg_hold = _position_stats(weights)

    turnover_total = float(np.sum(turnover))
    costs_frac = float(costs) if np.ndim(costs) == 0 else float(np.sum(costs)) / equity[0]
    sharpe_2x = NAN
    if np.ndim(costs) == 1 and len(costs) == n and n >= 2:
        paid, prev = np.asarray(costs, dtype=np.float64), equity[:-1]
        stressed = r - np.divide(paid, prev, out=np.zeros_like(paid), where=prev > 0)
        std2 = float(stressed.std(ddof=1))
        sharpe_2x = float(stressed.mean()) / std2 * ann if std2 > MIN_STD else NAN

    return {
        "total_return": float(growth - 1.0),
        "cagr": float(cagr),
        "sharpe": float(sharpe),
        "sortino": float(sortino),
        "calmar": float(calmar),
        "max_drawdown": max_dd,
        "max_drawdown_duration": _drawdown_duration(equity),
        "volatility": float(volatility),
        "profit_factor": float(profit_factor),
        "win_rate": win_rate,
        "exposure": exposure,
        "trades": trades,
        "avg_holding_bars": avg_hold,
        "turnover": turnover_total,
        "costs": costs_frac,
        "sharpe_2x_costs": sharpe_2x,
        "bars": float(n),
    }
