"""The evaluation of a multi-seed experiment: every seed's agent on one split, and the mean and
standard deviation over seeds, beside the simple rules (the same for every seed: one market,
one set of costs).

One seed is an anecdote: this is the table a result is quoted from. ``metrics.json`` holds the
figures, ``report.md`` the tables with a link to each seed's own report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from adan.evaluation.report import json_safe
from adan.files import atomic_write_text

COLUMNS = (
    ("sharpe", "Sharpe", "{:.2f}"),
    ("total_return", "total return", "{:+.1%}"),
    ("max_drawdown", "max drawdown", "{:.1%}"),
    ("turnover", "turnover (x equity)", "{:.0f}"),
    ("costs", "costs (% of start cash)", "{:.1%}"),
)


def mean_sd(values: list[Any]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; NaN for one value) of the finite numbers
    among ``values``; NaN when there is none."""
    x = np.asarray([v for v in values if isinstance(v, int | float)], dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else float("nan")


def summarise_seeds(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """``per_seed``: each seed's eval payload (``metrics``, ``sharpe_ci``, ``meta``). Returns
    the experiment's payload: each seed's agent figures and verdict against the best rule, the
    agent's mean and sd over seeds, the baselines (from the first seed) and how many seeds
    beat the best rule by a paired interval that excludes 0."""
    seeds = sorted(per_seed)
    agent = {s: per_seed[s]["metrics"]["agent"] for s in seeds}
    keys = list(agent[seeds[0]])
    mean, sd = {}, {}
    for k in keys:
        mean[k], sd[k] = mean_sd([agent[s].get(k) for s in seeds])
    versus = {s: per_seed[s]["meta"].get("versus_best_rule") for s in seeds}
    beats = sum(1 for v in versus.values() if v and v["low"] > 0)
    first = per_seed[seeds[0]]
    return {
        "seeds": seeds,
        "split": first["meta"].get("split"),
        "agent": {str(s): agent[s] for s in seeds},
        "sharpe_ci": {str(s): per_seed[s]["sharpe_ci"].get("agent") for s in seeds},
        "versus_best_rule": {str(s): versus[s] for s in seeds},
        "mean": {"agent": mean},
        "sd": {"agent": sd},
        "baselines": {n: m for n, m in first["metrics"].items() if n != "agent"},
        "beats_best_rule": {"seeds": beats, "of": len(seeds)},
        "meta": {k: first["meta"].get(k) for k in ("split", "start", "end", "bars", "costs")},
        "labels": first["meta"].get("labels", {}),
    }


def render_seeds_markdown(summary: dict[str, Any], reports: dict[int, Path], out_dir: Path) -> str:
    """The report of ``summarise_seeds``' payload; ``reports`` link each seed's own report."""
    seeds, labels = summary["seeds"], summary["labels"]
    head = (
        "| seed | "
        + " | ".join(h for _, h, _ in COLUMNS)
        + " | best rule | agent − rule [paired 95%] |"
    )
    lines = [
        f"# Evaluation over {len(seeds)} agent seeds: {summary['split']} split",
        "",
        f"Agent seeds {seeds}, one market and one set of costs. The agent beats the best "
        f"simple rule by a paired bootstrap interval that excludes 0 on "
        f"**{summary['beats_best_rule']['seeds']} of {len(seeds)} seeds**.",
        "",
        head,
        "|" + "---|" * (len(COLUMNS) + 3),
    ]
    for s in seeds:
        a = summary["agent"][str(s)]
        v = summary["versus_best_rule"][str(s)] or {}
        rule = labels.get(v.get("rule"), v.get("rule", "—"))
        diff = (
            f"{v['difference']:+.2f} [{v['low']:.2f}, {v['high']:.2f}]" if v else "—"
        )  # fmt: skip
        link = reports.get(s)
        name = f"[{s}]({link.relative_to(out_dir)})" if link else str(s)
        cells = [_fmt(fmt, a.get(k)) for k, _, fmt in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rule} | {diff} |")
    m, sd = summary["mean"]["agent"], summary["sd"]["agent"]
    cells = [
        f"{_fmt(fmt, m.get(k))} ± {_fmt(fmt.replace('+', ''), sd.get(k))}" for k, _, fmt in COLUMNS
    ]
    lines.append("| **mean ± sd** | " + " | ".join(cells) + " | | |")
    lines += ["", "## The simple rules and floors (the same bars and costs for every seed)", ""]
    lines += ["| strategy | " + " | ".join(h for _, h, _ in COLUMNS) + " |"]
    lines += ["|" + "---|" * (len(COLUMNS) + 1)]
    for name, b in summary["baselines"].items():
        cells = [_fmt(fmt, b.get(k)) for k, _, fmt in COLUMNS]
        lines.append(f"| {labels.get(name, name)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "The mean and sd (ddof 1) are over the agent seeds; each seed's report has its Sharpe "
        "interval, plots and the block length its bootstrap used.",
        "",
    ]
    return "\n".join(lines)


def _fmt(fmt: str, value: Any) -> str:
    if not isinstance(value, int | float) or not np.isfinite(value):
        return "—"
    return fmt.format(value)


def write_seeds_report(
    per_seed: dict[int, dict[str, Any]], reports: dict[int, Path], out_dir: Path
) -> dict[str, Any]:
    """Write ``metrics.json`` and ``report.md`` of a multi-seed evaluation to ``out_dir``;
    returns the payload."""
    summary = summarise_seeds(per_seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "metrics.json", json.dumps(json_safe(summary), indent=2))
    atomic_write_text(out_dir / "report.md", render_seeds_markdown(summary, reports, out_dir))
    return summary
