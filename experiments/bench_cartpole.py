"""Time for the same PPO to solve CartPole-v1 (experiment=cartpole), over several seeds.

"Solved" is gymnasium's threshold: a mean return >= 475 over 10 deterministic episodes. Each
seed runs the real entry point (`python train.py experiment=cartpole seed=S`) in a subprocess;
training stops once validation reaches 475 or at 100k environment steps. The closing summary
re-scores the policy on 10 fresh seeds, which is the number reported as "test".

    python experiments/bench_cartpole.py [--seeds 0 1 2]

Prints a markdown table and writes it to experiments/results/bench_cartpole.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SB3_SECONDS = 60.0  # Stable-Baselines3 + rl-zoo hyperparameters on this machine (issue #2)


def run(seed: int, out: Path, extra: list[str]) -> dict:
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "experiment=cartpole",
        f"seed={seed}",
        f"hydra.run.dir={out}",
        "logger=csv",
        "~callbacks.progress_bar",
        *extra,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "seed": seed,
        "wall": wall,
        "train": summary["train_seconds"],
        "steps": summary["env_steps"],
        "val": summary["val"]["agent"]["mean_return"],
        "test": summary["test"]["agent"]["mean_return"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rows.append(run(seed, Path(tmp) / f"seed{seed}", args.overrides))
            print(rows[-1], flush=True)
    solved = sum(r["test"] >= 475 and r["steps"] <= 100_000 for r in rows)
    lines = [
        "| seed | env steps | training s | process wall s | val mean (stop rule) | test mean (fresh seeds) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['seed']} | {r['steps']:,} | {r['train']:.1f} | {r['wall']:.1f} | {r['val']:.1f} | {r['test']:.1f} |"
            for r in rows
        ),
    ]
    mean_train = sum(r["train"] for r in rows) / len(rows)
    mean_wall = sum(r["wall"] for r in rows) / len(rows)
    lines += [
        "",
        f"Solved (test mean >= 475 within 100k steps): {solved} of {len(rows)} seeds.",
        f"Mean training time {mean_train:.1f} s ({SB3_SECONDS / mean_train:.1f}x faster than SB3's ~{SB3_SECONDS:.0f} s);"
        f" mean wall time of the whole process incl. imports {mean_wall:.1f} s ({SB3_SECONDS / mean_wall:.1f}x).",
    ]
    table = "\n".join(lines)
    print(table)
    (ROOT / "experiments" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "experiments" / "results" / "bench_cartpole.md").write_text(
        "# CartPole-v1: time to solve\n\n" + table + "\n"
    )


if __name__ == "__main__":
    main()
