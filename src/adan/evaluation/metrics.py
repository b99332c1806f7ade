"""Performance metrics of an equity curve, annualised from the bar frequency. No clipping."""

from __future__ import annotations

import numpy as np


def performance(
    equity: np.ndarray, bars_per_year: float, turnover: float = 0.0, costs: float = 0.0
) -> dict[str, float]:
    """Metrics of one equity curve ``equity[0..n]`` (equity before the first bar, then after
    each bar). Sharpe is the annualised mean over std of per-bar simple returns (risk-free 0);
    max drawdown is the largest peak-to-trough fall as a positive fraction."""
    equity = np.asarray(equity, dtype=np.float64)
    rets = equity[1:] / equity[:-1] - 1.0
    n = len(rets)
    total = equity[-1] / equity[0] - 1.0
    std = rets.std(ddof=1) if n > 1 else 0.0
    sharpe = float(rets.mean() / std * np.sqrt(bars_per_year)) if std > 0 else 0.0
    peak = np.maximum.accumulate(equity)
    max_dd = float(np.max(1.0 - equity / peak))
    years = n / bars_per_year
    cagr = (
        float((equity[-1] / equity[0]) ** (1 / years) - 1)
        if years > 0 and equity[-1] > 0
        else float("nan")
    )
    return {
        "total_return": float(total),
        "cagr": cagr,
        "sharpe": sharpe,
        "max_drawdown": max_dd,
        "volatility": float(std * np.sqrt(bars_per_year)),
        "win_rate": float(np.mean(rets[rets != 0] > 0)) if np.any(rets != 0) else 0.0,
        "turnover": float(turnover),
        "costs": float(costs),
        "bars": float(n),
    }
