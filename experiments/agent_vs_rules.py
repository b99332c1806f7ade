"""The headline table: the default agent over 3 agent seeds against every simple rule with its
own action space, on the test split of each market, with turnover, costs and the paired
interval of the Sharpe difference against the best rule.

    python experiments/agent_vs_rules.py [--markets synthetic synthetic_hard binance_sample]
                                         [--settings defaults before] [--seeds 0 1 2]
    python experiments/agent_vs_rules.py --runs synthetic:before synthetic:defaults ...

Each (market, setting) is one ``train.py seeds=[...]`` experiment and one ``eval.py`` of it
(under ``outputs/agent_vs_rules/``; a finished one is reused, an unfinished one resumed).
``before`` is the trading setup before the no-churn defaults (no band, 1x training costs).
Writes ``experiments/results/agent_vs_rules.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MARKETS = {
    "synthetic": [],
    "synthetic_hard": ["data=synthetic_hard"],
    "binance_sample": ["data=binance_sample"],
}
SETTINGS = {
    "defaults": [],
    "before": [
        "trading.execution.rebalance_band=0",
        "trading.train_cost_multiplier=1",
        "trading.action_smoothing=0",
    ],
}
HEADER = """# The agent against the simple rules, 3 agent seeds, test split

`python experiments/agent_vs_rules.py --runs ...` (`make bench-agent`). Each row is one
`python train.py seeds=[0,1,2]` experiment (one market, three agent seeds) scored by
`python eval.py` on the test split at 1x costs (8 bps a trade, 10.95% a year of borrow on
shorts). `defaults`: the shipped setup (0.2 no-trade band, training at 4x costs); `before`:
no band, training at 1x. The rules have the agent's action space and trade under its band;
the best rule is the one with the highest Sharpe on those bars (which favours the rule). The
paired interval is a stationary bootstrap of the Sharpe difference over the same bars; a seed
beats the rule when its interval excludes 0.

"""
RULES = ("buy_and_hold", "ma_crossover", "ma_long_short", "momentum", "vol_target")
SHORT = {"buy_and_hold": "B&H", "ma_crossover": "MA", "ma_long_short": "MA L/S",
         "momentum": "mom.", "vol_target": "vol-tgt"}  # fmt: skip


def run(market: str, setting: str, seeds: list[int], out: Path) -> dict:
    exp = out / market / setting
    ev = exp / "eval_test"
    if not (ev / "metrics.json").is_file():
        summary = exp / "summary.json"
        done = summary.is_file() and json.loads(summary.read_text())["status"] == "completed"
        if not done:
            resume = [f"ckpt_path={exp}"] if (exp / "seeds.json").is_file() else []
            cmd = [sys.executable, "train.py", f"hydra.run.dir={exp}",
                   f"seeds=[{','.join(map(str, seeds))}]", *MARKETS[market],
                   *SETTINGS[setting], *resume]  # fmt: skip
            print(" ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        cmd = [sys.executable, "eval.py", f"ckpt_path={exp}", f"hydra.run.dir={ev}"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return json.loads((ev / "metrics.json").read_text())


def rows(market: str, setting: str, m: dict) -> str:
    seeds = [str(s) for s in m["seeds"]]
    mean, sd = m["mean"]["agent"], m["sd"]["agent"]
    per = ", ".join(f"{m['agent'][s]['sharpe']:.2f}" for s in seeds)
    rules = " / ".join(
        f"{m['baselines'][r]['sharpe']:.2f}" if r in m["baselines"] else "—" for r in RULES
    )
    vs = [m["versus_best_rule"][s] for s in seeds]
    best = sorted({SHORT.get(v["rule"], v["rule"]) for v in vs if v})
    diffs = "; ".join(f"{v['difference']:+.2f} [{v['low']:.2f}, {v['high']:.2f}]" for v in vs)
    beats = m["beats_best_rule"]
    return (
        f"| {market} | {setting} | **{mean['sharpe']:.2f} ± {sd['sharpe']:.2f}** ({per}) "
        f"| {mean['turnover']:.0f} ± {sd['turnover']:.0f} | {mean['costs']:.1%} "
        f"| {rules} | {', '.join(best)} | {diffs} | {beats['seeds']}/{beats['of']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markets", nargs="*", default=list(MARKETS))
    parser.add_argument("--settings", nargs="*", default=["defaults"])
    parser.add_argument(
        "--runs", nargs="*", default=None, help="market:setting pairs instead of every pair"
    )
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "agent_vs_rules")
    parser.add_argument(
        "--table", type=Path, default=ROOT / "experiments/results/agent_vs_rules.md"
    )
    args = parser.parse_args()
    lines = [
        "| market | setting | agent Sharpe, mean ± sd (per seed) | turnover (x equity) "
        "| costs / equity | rules: " + " / ".join(SHORT[r] for r in RULES)
        + " | best rule | agent − best rule, paired 95% (per seed) | seeds beating it |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    pairs = [tuple(p.split(":")) for p in args.runs] if args.runs else [
        (m, s) for m in args.markets for s in args.settings
    ]  # fmt: skip
    for market, setting in pairs:
        lines.append(rows(market, setting, run(market, setting, args.seeds, args.out)))
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(HEADER + table + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
