"""Time for the same PPO to solve CartPole-v1 (experiment=cartpole), beside Stable-Baselines3.

Stop rule for both: every 3072 env steps the deterministic policy plays 30 episodes; training
stops when their mean return exceeds 495, or at 100k env steps. Then 30 episodes on fresh
seeds give the "test" score; solved means test >= 475 within 100k steps. Both use rl-zoo's
CartPole hyperparameters (8 envs x 32 steps, 20 epochs, lr 1e-3 and clip 0.2 annealed,
γ 0.98, λ 0.8) and one thread (OMP/MKL/OpenBLAS and torch).

Both sides are timed the same way: the whole process, start to exit
(`python train.py experiment=cartpole seed=S` and `python experiments/sb3_cartpole.py --seed S`,
stable-baselines3 from the bench extra), one seed's ADAN and SB3 runs back to back, the first
of the pair alternating between seeds, and the 1-minute load average read before each. The
in-loop times beside them: ADAN's summary.json (rollout+update, validation, and the fit
including them and its checkpoints) and SB3's own (rollout+update, evaluation, and ``learn()``
including both).

    python experiments/bench_cartpole.py [--seeds 0 1 2] [--no-stop]

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
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def _timed(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """(process, wall seconds start to exit, 1-minute load average before it)."""
    load = os.getloadavg()[0]
    env = {**os.environ, **ONE_THREAD}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return proc, wall, load


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
    _, wall, load = _timed(cmd)
    s = json.loads((out / "summary.json").read_text())
    return {
        "steps": s["env_steps"],
        "wall": wall,
        "load": load,
        "fit": s["train_seconds"],
        "train": s["iteration_seconds"],
        "eval": s["validation_seconds"],
        "test": s["test"]["agent"]["mean_return"],
    }


def run_sb3(seed: int, no_stop: bool = False) -> dict:
    cmd = [sys.executable, str(ROOT / "experiments" / "sb3_cartpole.py"), "--seed", str(seed)]
    proc, wall, load = _timed(cmd + (["--no-stop"] if no_stop else []))
    s = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "steps": s["steps"],
        "wall": wall,
        "load": load,
        "fit": s["learn"],
        "train": s["train"],
        "eval": s["eval"],
        "test": s["test"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--no-stop", action="store_true", help="no stop rule: time the 100k budget")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, seed in enumerate(args.seeds):
            row = {}
            for side in ("ADAN", "SB3") if i % 2 == 0 else ("SB3", "ADAN"):
                if side == "ADAN":
                    row[side] = run_adan(seed, Path(tmp) / f"seed{seed}", args.no_stop)
                else:
                    row[side] = run_sb3(seed, args.no_stop)
                print(seed, side, row[side], flush=True)
            rows.append((seed, row))

    lines = [
        "| seed | side | env steps | process s | fit / learn() s | rollout+update s "
        "| validation s | test | load before |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for seed, row in rows:
        for side in ("ADAN", "SB3"):
            r = row[side]
            lines.append(
                f"| {seed} | {side} | {r['steps']:,} | {r['wall']:.2f} | {r['fit']:.2f} "
                f"| {r['train']:.2f} | {r['eval']:.2f} | {r['test']:.1f} | {r['load']:.2f} |"
            )

    def median(side: str, key: str) -> float:
        return statistics.median(row[side][key] for _, row in rows)

    def solved(side: str) -> int:
        return sum(row[side]["test"] >= 475 and row[side]["steps"] <= BUDGET for _, row in rows)

    ratio = median("ADAN", "wall") / median("SB3", "wall")
    lines += [
        "",
        f"Solved (test >= 475 within 100k steps): ADAN {solved('ADAN')} of {len(rows)} seeds, "
        f"SB3 {solved('SB3')} of {len(rows)}.",
        f"Median process time: ADAN {median('ADAN', 'wall'):.2f} s, SB3 "
        f"{median('SB3', 'wall'):.2f} s (ADAN / SB3 = {ratio:.2f}); median rollout+update: "
        f"ADAN {median('ADAN', 'train'):.2f} s, SB3 {median('SB3', 'train'):.2f} s.",
        "",
        "process s: the whole process, start to exit (imports, set-up, training, validation, "
        "the closing test, exit). fit / learn() s: ADAN's `trainer.fit` (rollouts, updates, "
        "validation, checkpoints), SB3's `learn()` (rollouts, updates, evaluation). "
        "rollout+update s: ADAN's `iteration_seconds`; SB3's `learn()` less its "
        "evaluations. validation s: the evaluator's time (ADAN's `validation_seconds`; "
        "SB3's evaluations).",
    ]
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
