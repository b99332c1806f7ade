"""Time for the same PPO to solve CartPole-v1 (experiment=cartpole), beside Stable-Baselines3.

Stop rule for both: every 1024 env steps the deterministic policy plays 30 episodes; training
stops when their mean return exceeds 495, or at 100k env steps. Then 30 episodes on fresh
seeds give the "test" score; solved means test >= 475 within 100k steps. Both use rl-zoo's
CartPole hyperparameters (8 envs x 32 steps, 20 epochs, lr 1e-3 and clip 0.2 annealed,
γ 0.98, λ 0.8) and one torch thread.

ADAN runs the real entry point (`python train.py experiment=cartpole seed=S`) in a
subprocess; SB3 runs experiments/sb3_cartpole.py when stable_baselines3 is importable (see
that file; it is not an ADAN dependency).

    python experiments/bench_cartpole.py [--seeds 0 1 2] [--sb3-path /tmp/sb3] [--no-stop]

With --no-stop both train the whole 100k budget (results/bench_cartpole_100k.md).

Prints a markdown table and writes it to experiments/results/bench_cartpole.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# 100k env steps, as each library rounds it up to whole rollouts (8 envs x 32 steps)
BUDGET = 100_000 + 256


def run_adan(seed: int, out: Path, no_stop: bool = False) -> dict:
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "experiment=cartpole",
        f"seed={seed}",
        f"hydra.run.dir={out}",
        "~callbacks.progress_bar",
        *(["~callbacks.early_stopping"] if no_stop else []),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{proc.stderr[-3000:]}")
    s = json.loads((out / "summary.json").read_text())
    return {
        "seed": seed,
        "steps": s["env_steps"],
        "train": s["iteration_seconds"],
        "fit": s["train_seconds"],
        "wall": wall,
        "test": s["test"]["agent"]["mean_return"],
    }


def run_sb3(seed: int, sb3_path: str, no_stop: bool = False) -> dict | None:
    env = {**os.environ, "PYTHONPATH": sb3_path}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "sb3_cartpole.py"), "--seed", str(seed)]
        + (["--no-stop"] if no_stop else []),
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        print(
            f"SB3 not run (seed {seed}): {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr
        )
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sb3-path", default="/tmp/sb3", help="where stable_baselines3 is installed")
    ap.add_argument("--no-stop", action="store_true", help="no stop rule: time the 100k budget")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            adan = run_adan(seed, Path(tmp) / f"seed{seed}", args.no_stop)
            sb3 = run_sb3(seed, args.sb3_path, args.no_stop)
            rows.append((adan, sb3))
            print(adan, sb3, flush=True)

    def fmt(r: dict | None, key: str, f: str) -> str:
        return "n/a" if r is None else format(r[key], f)

    lines = [
        "| seed | ADAN steps | ADAN s (rollout+update) | ADAN s (fit incl. validation) | ADAN process s "
        "| ADAN test | SB3 steps | SB3 s (excl. evaluation) | SB3 test |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a, b in rows:
        lines.append(
            f"| {a['seed']} | {a['steps']:,} | {a['train']:.1f} | {a['fit']:.1f} | {a['wall']:.1f} "
            f"| {a['test']:.1f} | {fmt(b, 'steps', ',')} | {fmt(b, 'train', '.1f')} | {fmt(b, 'test', '.1f')} |"
        )
    solved = sum(a["test"] >= 475 and a["steps"] <= BUDGET for a, _ in rows)
    lines += [
        "",
        f"ADAN solved (test >= 475 within 100k steps): {solved} of {len(rows)} seeds; "
        f"median rollout+update time {statistics.median(a['train'] for a, _ in rows):.1f} s.",
    ]
    sb3 = [b for _, b in rows if b is not None]
    if sb3:
        sb3_solved = sum(b["test"] >= 475 and b["steps"] <= BUDGET for b in sb3)
        ratio = statistics.median(b["train"] for b in sb3) / statistics.median(
            a["train"] for a, _ in rows
        )
        lines.append(
            f"SB3 solved {sb3_solved} of {len(sb3)}; median SB3 time / median ADAN time = {ratio:.2f}."
        )
    table = "\n".join(lines)
    print(table)
    name = "bench_cartpole_100k.md" if args.no_stop else "bench_cartpole.md"
    out = ROOT / "experiments" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    title = "the whole 100k-step budget (no stop rule)" if args.no_stop else "time to solve"
    command = "python experiments/bench_cartpole.py" + (" --no-stop" if args.no_stop else "")
    out.write_text(
        f"# CartPole-v1: {title}, ADAN vs Stable-Baselines3\n\n"
        f"Produced by `{command}` on this 2-core machine (no GPU).\n\n" + table + "\n"
    )


if __name__ == "__main__":
    main()
