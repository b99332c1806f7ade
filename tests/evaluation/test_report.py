"""write_report on a hand-built EvaluationResult: files, images, JSON round trip, Markdown."""

from __future__ import annotations

import json
import math

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from adan.evaluation.metrics import performance
from adan.evaluation.records import BacktestRecord, EvaluationResult
from adan.evaluation.report import read_metrics, write_report

BARS_PER_YEAR = 24 * 365
PNGS = ("equity", "drawdown", "positions", "returns")


def _record(name, close, weights, timestamps, regimes, cash=10_000.0):
    """Equity of holding ``weights`` [n+1, R, A] (decided at row k, held over bar k+1)."""
    rets = close[1:] / close[:-1] - 1.0  # [n, A]
    bar = np.einsum("nra,na->nr", weights[:-1], rets)  # [n, R]
    turnover = np.abs(np.diff(weights, axis=0)).sum(axis=2)
    costs = 5e-4 * turnover
    growth = np.cumprod(1.0 + bar - costs, axis=0)
    equity = cash * np.vstack([np.ones((1, weights.shape[1])), growth])
    return BacktestRecord(
        name=name,
        timestamps=timestamps,
        equity=equity,
        weights=weights,
        costs=costs * equity[:-1],
        turnover=turnover,
        close=close,
        assets=("BTC", "ETH"),
        regimes=regimes,
        initial_cash=cash,
    )


def _result(with_regimes: bool = True, nan_metrics: bool = False) -> EvaluationResult:
    rng = np.random.default_rng(0)
    n, a = 600, 2
    timestamps = np.arange(n + 1).astype("timedelta64[h]") + np.datetime64("2024-01-01T00")
    timestamps = timestamps.astype("datetime64[ns]")
    close = 100.0 * np.exp(np.cumsum(0.01 * rng.standard_normal((n + 1, a)), axis=0))
    regimes = np.repeat(np.arange(4), (n + 1) // 4 + 1)[: n + 1] if with_regimes else None

    trend = close[:, 0] > np.convolve(close[:, 0], np.ones(24) / 24, mode="same")
    agent_w = np.zeros((n + 1, 1, a))
    agent_w[:, 0, 0] = np.where(trend, 0.8, -0.3)
    agent_w[:, 0, 1] = 0.2
    bh_w = np.full((n + 1, 1, a), 0.5)
    rnd_w = rng.uniform(-1, 1, size=(n + 1, 3, a)) / a

    records = {
        "agent": _record("agent", close, agent_w, timestamps, regimes),
        "buy_and_hold": _record("buy_and_hold", close, bh_w, timestamps, regimes),
        "random": _record("random", close, rnd_w, timestamps, regimes),
    }
    metrics, spread = {}, {}
    for name, rec in records.items():
        runs = [
            performance(
                rec.equity[:, r],
                BARS_PER_YEAR,
                turnover=rec.turnover[:, r],
                costs=rec.costs[:, r],
                weights=rec.weights[:, r],
            )
            for r in range(rec.runs)
        ]
        metrics[name] = {k: float(np.mean([m[k] for m in runs])) for k in runs[0]}
        if rec.runs > 1:
            spread[name] = {k: float(np.std([m[k] for m in runs])) for k in runs[0]}
    sharpe_ci = {name: (m["sharpe"] - 1.0, m["sharpe"] + 1.0) for name, m in metrics.items()}
    if nan_metrics:
        metrics["agent"]["cagr"] = float("nan")
        metrics["agent"]["profit_factor"] = float("inf")
        metrics["buy_and_hold"]["sharpe"] = float("-inf")
        sharpe_ci["agent"] = (float("nan"), float("nan"))
    meta = {
        "period": ["2024-01-01 00:00", "2024-01-26 00:00"],
        "bars": n,
        "costs": {"fee_bps": 10.0, "spread_bps": 2.0, "slippage_bps": 1.0},
        "checkpoint": "runs/x/checkpoints/final.pt",
        "bars_per_year": BARS_PER_YEAR,
        "in_sample": nan_metrics,
        "labels": {"random": "random (uniform weights)"},
        "seed": np.int64(3),
    }
    return EvaluationResult("val", records, metrics, spread, sharpe_ci, meta)


def _check_files(paths, tmp_path):
    assert set(paths) == {"metrics", "report", "agent_bars", *PNGS}
    bars = pd.read_csv(paths["agent_bars"])  # the agent bar by bar, at full precision
    agent = _result().records["agent"]
    assert list(bars.columns[:4]) == ["time", "equity", "cost", "turnover"]
    assert (bars["equity"].to_numpy() == agent.equity[:, 0]).all()
    assert bars["cost"].iloc[0] == 0.0 and (bars["cost"].to_numpy()[1:] == agent.costs[:, 0]).all()
    for key in PNGS:
        png = paths[key]
        assert png == tmp_path / "plots" / f"{key}.png"
        assert png.stat().st_size > 10_000, key
        image = mpimg.imread(png)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
        assert image.std() > 0.01  # not a blank canvas


def test_report_with_regimes(tmp_path):
    result = _result()
    paths = write_report(result, tmp_path)
    _check_files(paths, tmp_path)

    data = json.loads(paths["metrics"].read_text())
    assert set(data["metrics"]) == {"agent", "buy_and_hold", "random"}
    assert data["strategies"][0] == "agent"
    assert data["spread"]["random"]["sharpe"] == pytest.approx(result.spread["random"]["sharpe"])
    assert data["sharpe_ci"]["agent"] == pytest.approx(list(result.sharpe_ci["agent"]))
    assert data["meta"]["seed"] == 3 and data["meta"]["costs"]["fee_bps"] == 10.0
    for name, m in result.metrics.items():
        assert read_metrics(paths["metrics"])["metrics"][name] == pytest.approx(m, nan_ok=True)

    md = paths["report"].read_text()
    assert "# ADAN evaluation: val split" in md
    assert "2024-01-01 00:00 to 2024-01-26 00:00" in md and "fee 10 bps" in md
    assert "In-sample" not in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| **agent** |") for r in rows)
    assert any(r.startswith("| buy & hold |") for r in rows)
    random_rows = [
        r for r in rows if r.startswith("| random (uniform weights), mean ± std of 3 runs |")
    ]
    assert random_rows and all("±" in r.split("|")[2] for r in random_rows)
    first = next(i for i, r in enumerate(rows) if "strategy" in r)
    assert rows[first + 2].startswith("| **agent**")  # agent first, after the header rows
    agent = result.metrics["agent"]
    assert f"{agent['total_return']:+.2%}" in md and f"{agent['sharpe']:.2f}" in md
    lo, hi = result.sharpe_ci["agent"]
    assert f"[{lo:.2f}, {hi:.2f}]" in md
    for key in PNGS:
        assert f"](plots/{key}.png)" in md


def test_report_without_regimes_and_nan_metrics(tmp_path):
    result = _result(with_regimes=False, nan_metrics=True)
    paths = write_report(result, tmp_path / "out")
    _check_files(paths, tmp_path / "out")

    text = paths["metrics"].read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)  # strict JSON
    assert data["metrics"]["agent"]["cagr"] == "nan"
    assert data["metrics"]["agent"]["profit_factor"] == "inf"
    assert data["metrics"]["buy_and_hold"]["sharpe"] == "-inf"
    back = read_metrics(paths["metrics"])
    assert math.isnan(back["metrics"]["agent"]["cagr"])
    assert back["metrics"]["agent"]["profit_factor"] == math.inf
    assert math.isnan(back["sharpe_ci"]["agent"][0])

    md = paths["report"].read_text()
    assert "In-sample warning" in md
    agent_rows = [line for line in md.splitlines() if line.startswith("| **agent** |")]
    assert agent_rows and "n/a" in agent_rows[0] and "inf" in agent_rows[1]
