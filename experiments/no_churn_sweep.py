"""Choose the no-churn defaults by measurement: train the default agent under candidate
settings over 3 agent seeds (one market), score each on the test split with eval.py, print
turnover, costs and Sharpe against the simple rules.

    python experiments/no_churn_sweep.py --out outputs/no_churn [--settings NAME ...] [--jobs 2]

Each setting is a list of train.py overrides; a run that already has its eval metrics is not
repeated, so the script can be stopped and started again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# every setting names both keys, so the table does not move when the defaults do
SETTINGS: dict[str, list[str]] = {
    "today": ["trading.execution.rebalance_band=0", "trading.train_cost_multiplier=1"],
    "band0.1": ["trading.execution.rebalance_band=0.1", "trading.train_cost_multiplier=1"],
    "band0.1_cost2x": [
        "trading.execution.rebalance_band=0.1",
        "trading.train_cost_multiplier=2",
    ],
    "band0.2_cost2x": [
        "trading.execution.rebalance_band=0.2",
        "trading.train_cost_multiplier=2",
    ],
    "band0.2_cost4x": [
        "trading.execution.rebalance_band=0.2",
        "trading.train_cost_multiplier=4",
    ],
}


def run_one(out: Path, name: str, seed: int, extra: list[str]) -> dict:
    run = out / name / f"seed_{seed}"
    ev = run / "eval_test"
    metrics = ev / "metrics.json"
    if not metrics.is_file():
        if not (run / "summary.json").is_file():
            cmd = [sys.executable, "train.py", f"hydra.run.dir={run}", f"seed={seed}",
                   "data.source.seed=42", "~callbacks.progress_bar", *SETTINGS[name], *extra]  # fmt: skip
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        cmd = [sys.executable, "eval.py", f"ckpt_path={run}", f"hydra.run.dir={ev}"]
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return json.loads(metrics.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "no_churn")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--extra", nargs="*", default=[], help="overrides for every run")
    parser.add_argument("--table", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    jobs = [(n, s) for n in args.settings for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda j: run_one(args.out, *j, args.extra), jobs))
    rows = ["| setting | agent Sharpe, mean ± sd (per seed) | turnover (x equity) | costs / equity "
            "| turnover, costs vs `today` | best rule (Sharpe) | agent − best rule, paired 95% |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    base = None
    for name in args.settings:
        res = [r for (n, _), r in zip(jobs, results, strict=True) if n == name]
        agent = [r["metrics"]["agent"] for r in res]
        sh = np.array([a["sharpe"] for a in agent])
        turn = np.array([a["turnover"] for a in agent])
        cost = np.array([a["costs"] for a in agent])
        if name == "today":
            base = (turn.mean(), cost.mean())
        ratio = f"÷{base[0] / turn.mean():.1f}, ÷{base[1] / cost.mean():.1f}" if base else "—"
        vs = [r["meta"].get("versus_best_rule") or {} for r in res]
        best = ", ".join(sorted({f"{v['rule']} {r['metrics'][v['rule']]['sharpe']:.2f}"
                                 for v, r in zip(vs, res, strict=True) if v}))  # fmt: skip
        diffs = "; ".join(f"{v['difference']:+.2f} [{v['low']:.2f}, {v['high']:.2f}]"
                          for v in vs if v)  # fmt: skip
        rows.append(
            f"| {name} | {sh.mean():.2f} ± {sh.std(ddof=1):.2f} "
            f"({', '.join(f'{x:.2f}' for x in sh)}) | {turn.mean():.0f} ± {turn.std(ddof=1):.0f} "
            f"| {cost.mean():.1%} | {ratio} | {best} | {diffs} |"
        )
    if args.table:
        args.table.write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
