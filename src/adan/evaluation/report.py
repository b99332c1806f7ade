"""Evaluation report of one split: ``metrics.json``, four PNG figures and a ``report.md`` that
tables the metrics and embeds the figures, so a run can be judged without rerunning it.

JSON has no nan / inf: non-finite floats are written as the strings "nan", "inf" and "-inf"
everywhere (lossless; ``read_metrics`` turns them back into floats).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from adan.evaluation.plots import PLOTS, label, strategy_order
from adan.evaluation.records import BacktestRecord, EvaluationResult

# Known metrics, in display order: (key, column header, formatter kind).
# Kinds: "ret" signed %, "pct" %, "ratio" 2 decimals, "bars" a count of bars, "mult" x equity,
# "count" an integer.
RISK_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "total return", "ret"),
    ("cagr", "CAGR", "ret"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("calmar", "Calmar", "ratio"),
    ("max_drawdown", "max drawdown", "pct"),
    ("max_drawdown_duration", "max DD duration (bars)", "bars"),
    ("volatility", "volatility (ann.)", "pct"),
)
TRADING_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("win_rate", "win rate (bars)", "pct"),
    ("profit_factor", "profit factor", "ratio"),
    ("turnover", "turnover (x equity)", "mult"),
    ("exposure", "exposure", "pct"),
    ("costs", "costs (% of start cash)", "pct"),
    ("trades", "trades", "count"),
    ("avg_holding_bars", "avg holding (bars)", "bars"),
    ("bars", "bars", "count"),
)
METRIC_ORDER: tuple[str, ...] = tuple(k for k, _, _ in RISK_COLUMNS + TRADING_COLUMNS)


# ---------------------------------------------------------------------------------------------
# JSON


def json_safe(obj: Any) -> Any:
    """``obj`` as plain JSON types: numpy scalars and arrays unwrapped, tuples as lists, dates
    as ISO strings, paths as strings, non-finite floats as "nan" / "inf" / "-inf"."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.datetime64):
        return str(obj)
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return "nan"
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _restore(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v) for v in obj]
    if isinstance(obj, str) and obj in _NON_FINITE:
        return _NON_FINITE[obj]
    return obj


def read_metrics(path: Path) -> dict[str, Any]:
    """A ``metrics.json`` back, with "nan" / "inf" / "-inf" turned into floats again."""
    return _restore(json.loads(Path(path).read_text(encoding="utf-8")))


def _metrics_payload(result: EvaluationResult) -> dict[str, Any]:
    names = strategy_order(result)
    return {
        "split": result.split,
        "strategies": names,
        "labels": {n: label(result, n) for n in names},
        "runs": {n: r.runs for n, r in result.records.items()},
        "metrics": result.metrics,
        "spread": result.spread,
        "sharpe_ci": result.sharpe_ci,
        "meta": result.meta,
    }


# ---------------------------------------------------------------------------------------------
# Markdown


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _fmt(value: Any, kind: str, signed: bool = True) -> str:
    """One number in a table cell; nan as "n/a", inf as "inf"."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if kind == "ret":
        return f"{v:+.2%}" if signed else f"{v:.2%}"
    if kind == "pct":
        return f"{v:.2%}"
    if kind == "ratio":
        return f"{v:.2f}"
    if kind == "mult":
        return f"{v:.1f}"
    if kind == "bars":
        return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.1f}"
    if kind == "count":
        return f"{v:.0f}"
    return f"{v:.4g}"


def _cell(result: EvaluationResult, name: str, key: str, kind: str) -> str:
    metrics = result.metrics.get(name, {})
    if key not in metrics:
        return ""
    text = _fmt(metrics[key], kind)
    std = result.spread.get(name, {}).get(key)
    if std is not None:
        text += " ± " + _fmt(std, "count" if kind == "count" else kind, signed=False)
    return text


def _table(
    result: EvaluationResult,
    columns: list[tuple[str, str, str]],
    extra: Callable[[str], str] | None = None,
    extra_header: str = "",
) -> list[str]:
    names = strategy_order(result)
    header = ["strategy", *(h for _, h, _ in columns)] + ([extra_header] if extra else [])
    align = [":--"] + ["--:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for name in names:
        runs = result.records[name].runs if name in result.records else 1
        who = label(result, name)
        who = f"**{who}**" if name == "agent" else who
        if runs > 1:
            who += f", mean ± std of {runs} runs"
        cells = [_cell(result, name, k, kind) for k, _, kind in columns]
        if extra:
            cells.append(extra(name))
        lines.append("| " + " | ".join([who, *cells]) + " |")
    return lines


def _present(result: EvaluationResult, columns: tuple[tuple[str, str, str], ...]) -> list:
    keys = {k for m in result.metrics.values() for k in m}
    return [c for c in columns if c[0] in keys]


def _ci(result: EvaluationResult, name: str) -> str:
    ci = result.sharpe_ci.get(name)
    if ci is None:
        return ""
    lo, hi = (_finite(v) for v in ci)
    if lo is None or hi is None:
        return "n/a"
    return f"[{lo:.2f}, {hi:.2f}]"


def versus_best_text(result: EvaluationResult) -> str:
    """One sentence: does the agent beat the best simple rule here, by a paired interval?"""
    versus = result.meta.get("versus_best_rule")
    if not versus:
        return ""
    lo, hi, d = (_finite(versus[k]) for k in ("low", "high", "difference"))
    name = label(result, versus["rule"])
    if lo is None or hi is None or d is None:
        return f"Agent vs the best simple rule ({name}): the Sharpe difference is undefined."
    verdict = (
        "yes, the interval excludes 0" if lo > 0
        else "no, it does worse: the interval is below 0" if hi < 0
        else "not established: the interval contains 0"
    )  # fmt: skip
    return (
        f"Does the agent beat the best simple rule ({name})? Sharpe difference {d:+.2f}, "
        f"paired 95% bootstrap interval [{lo:.2f}, {hi:.2f}]: {verdict}."
    )


def _versus_best(result: EvaluationResult) -> list[str]:
    text = versus_best_text(result)
    return [f"**{text}**", ""] if text else []


def _blocks_text(blocks: Any) -> str:
    if not isinstance(blocks, dict) or "agent" not in blocks:
        return ""
    agent = blocks["agent"]
    return f" ({agent['mean_block']:.1f} bars for the agent, set by {agent['chosen_by']})"


def _costs_text(costs: Any) -> str:
    if isinstance(costs, dict) and costs:
        parts = []
        for k, v in costs.items():
            if k == "borrow_rate" and _finite(v) is not None:
                parts.append(f"borrow of shorts {v:.2%} a year")
                continue
            name = str(k).removesuffix("_bps").replace("_", " ")
            num = _finite(v)
            parts.append(f"{name} {num:g} bps" if num is not None else f"{name} {v}")
        return ", ".join(parts)
    return str(costs) if costs else ""


def _header(result: EvaluationResult) -> list[str]:
    meta = result.meta
    lines = [f"# ADAN evaluation: {result.split} split", ""]
    facts = []
    period = meta.get("period")
    if period and len(period) == 2:
        facts.append(f"**period** {period[0]} to {period[1]}")
    bars = meta.get("bars")
    if bars is None:
        bars = result.metrics.get("agent", {}).get("bars")
    if _finite(bars) is not None:
        facts.append(f"**bars** {float(bars):.0f}")
    if _finite(meta.get("bars_per_year")) is not None:
        facts.append(f"**bars / year** {float(meta['bars_per_year']):g}")
    costs = _costs_text(meta.get("costs"))
    if costs:
        facts.append(f"**costs** {costs}")
    if meta.get("checkpoint"):
        facts.append(f"**checkpoint** `{meta['checkpoint']}`")
    if facts:
        lines += [" · ".join(facts), ""]
    if meta.get("in_sample"):
        lines += [
            f"> **In-sample warning:** the agent was trained on the {result.split} bars. These "
            "figures show what it fitted, not what to expect on unseen data; judge it on a "
            "held-out split.",
            "",
        ]
    return lines


def _how_to_read(result: EvaluationResult) -> list[str]:
    costs = _costs_text(result.meta.get("costs"))
    multi = [n for n, r in result.records.items() if r.runs > 1]
    text = (
        f"Every strategy runs over the whole {result.split} split as one continuous episode, "
        "marked to market at each bar's close, and pays the same trading costs"
        + (f" ({costs})" if costs else "")
        + ": all returns are net of costs. The agent acts with its deterministic policy (the "
        "mode of its action distribution, no sampling). Metrics come from the raw equity "
        "curves with no clipping, winsorising or outlier removal; ratios are annualised with "
        f"{result.meta.get('bars_per_year', 'the split')} bars per year, durations are counted "
        "in bars and drawdowns are peak-to-trough falls. The Sharpe 95% CI is a percentile "
        "interval from the stationary bootstrap (Politis & Romano, 1994), its mean block "
        "the longer of the Politis-White optimal length and the strategy's mean holding "
        "period"
        + _blocks_text(result.meta.get("sharpe_ci_blocks"))
        + ": when it contains 0, the sign of the Sharpe ratio is not established."
    )
    if multi:
        runs = ", ".join(f"{label(result, n)} over {result.records[n].runs} seeds" for n in multi)
        text += f" Multi-run baselines show mean ± standard deviation ({runs})."
    return ["## How to read this", "", text, ""]


_PLOT_TITLES = {
    "equity": "Equity (relative to initial cash)",
    "drawdown": "Drawdown",
    "positions": "Prices, positions and true regimes",
    "returns": "Distribution of per-bar returns",
}


def render_markdown(result: EvaluationResult, plots: dict[str, Path], out_dir: Path) -> str:
    """The report text; ``plots`` are linked relative to ``out_dir``."""
    lines = _header(result)
    lines += _versus_best(result)
    risk = _present(result, RISK_COLUMNS)
    lines += ["## Returns and risk", ""]
    lines += _table(result, risk, extra=lambda n: _ci(result, n), extra_header="Sharpe 95% CI")
    lines.append("")
    trading = _present(result, TRADING_COLUMNS)
    bars = {_finite(m.get("bars")) for m in result.metrics.values()}
    if len(bars) == 1:  # the same for every strategy: it is in the header
        trading = [c for c in trading if c[0] != "bars"]
    known = set(METRIC_ORDER)
    others = list(dict.fromkeys(k for m in result.metrics.values() for k in m if k not in known))
    trading += [(k, k.replace("_", " "), "other") for k in others]
    if trading:
        lines += ["## Trading", ""] + _table(result, trading) + [""]
    lines += _how_to_read(result)
    if plots:
        lines += ["## Plots", ""]
        for key, path in plots.items():
            rel = Path(path).relative_to(out_dir).as_posix()
            title = _PLOT_TITLES.get(key, key)
            lines += [f"### {title}", "", f"![{title}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------


def write_report(result: EvaluationResult, out_dir: Path) -> dict[str, Path]:
    """Write ``metrics.json``, ``plots/{equity,drawdown,positions,returns}.png`` and
    ``report.md`` under ``out_dir``; returns {"metrics", "report", "equity", "drawdown",
    "positions", "returns"} -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    text = json.dumps(json_safe(_metrics_payload(result)), indent=2, allow_nan=False)
    metrics_path.write_text(text + "\n", encoding="utf-8")
    bars_path = write_agent_bars(result.records["agent"], out_dir / "agent_bars.csv")
    plots = {key: fn(result, out_dir / "plots" / f"{key}.png") for key, fn in PLOTS.items()}
    report_path = out_dir / "report.md"
    report_path.write_text(render_markdown(result, plots, out_dir), encoding="utf-8")
    return {"metrics": metrics_path, "report": report_path, "agent_bars": bars_path, **plots}


def write_agent_bars(record: BacktestRecord, path: Path) -> Path:
    """The agent's path bar by bar (run 0): time, equity, costs and turnover of the step that
    ended at that bar, and the weight per asset at its close. The file a paper-trading replay
    (``trade.py``) is compared with, row for row."""
    import pandas as pd

    n = len(record.equity)
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(record.timestamps).strftime("%Y-%m-%dT%H:%M:%S"),
            "equity": record.equity[:, 0],
            "cost": np.r_[0.0, record.costs[:, 0]][:n],
            "turnover": np.r_[0.0, record.turnover[:, 0]][:n],
            **{f"weight_{a}": record.weights[:, 0, i] for i, a in enumerate(record.assets)},
        }
    )
    frame.to_csv(path, index=False, float_format="%.17g")
    return path
