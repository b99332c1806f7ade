"""What trading realism costs: env-steps/s of each trading profile against the foundation's.

The market is the default synthetic one (2 assets, the 9 default features, window 32, 20,000
bars). Rows: ``default`` (every realism stage off: the foundation's behaviour on today's
code), ``conservative``, ``moderate``, ``aggressive`` (each: realistic execution, sizing,
stops, risk limits, the behaviour engine and the regime in the observation) and
``multi_profile`` (all three in one batch). With ``--baseline-ref REF`` the simulator of git
revision REF (checked out into a temporary worktree) is timed too, in its own process: the
foundation's simulator itself. The slowdown column is against that row when present, else
against ``default``.

    python experiments/bench_realism.py                         # writes results/bench_realism.md
    python experiments/bench_realism.py --baseline-ref 42d6460  # also time an older simulator
    python experiments/bench_realism.py --quick
    python experiments/bench_realism.py --before b8fff0c  # every profile at REF and now
    python experiments/bench_realism.py --train   # also: PPO training env-steps/s per profile

``--before REF`` times every profile of revision REF beside today's, interleaved (REF's
profile, then today's, each in a fresh process) in the same sitting, and prints the speed-up
of each: how much a change of the simulator bought, like for like.

``--train`` runs ``python train.py trading=<profile>`` for 65,536 steps (the default model and
64 envs) and reports the median of its ``time/sps``: what realism costs a training run, where
the network's forward and backward passes share the time with the simulator.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ("default", "conservative", "moderate", "aggressive", "multi_profile")
BATCHES = (64, 1024, 4096)
RESULTS = Path(__file__).parent / "results" / "bench_realism.md"
WINDOW = 32
PATTERNS = {
    "random": "drawn anew every bar, so every position changes every bar (the worst case)",
    "persistent": "each env redraws with probability 0.05 a bar (positions held ~20 bars)",
}


def market():
    """The default synthetic market's training bars, through the default feature pipeline."""
    from adan.data import MarketPipeline, SyntheticMarket
    from adan.data.features import DEFAULT_FEATURES

    bars = SyntheticMarket(n_assets=2, n_bars=20_000, seed=0).generate()
    split = {"train": 0.98, "val": 0.01, "test": 0.01}
    return MarketPipeline(bars, list(DEFAULT_FEATURES), split).build()["train"]


def trading(profile: str):
    """``trading=<profile>`` as Hydra composes it; ``foundation``: the plain constructor (the
    one API every revision has)."""
    from adan.market import TradingConfig

    if profile == "foundation":
        return TradingConfig()
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from adan.tasks.registry import register_configs

    register_configs()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["paths.output_dir=/tmp/adan-bench", f"trading={profile}"])
    return instantiate(cfg.trading)


def actions(pattern: str, num_envs: int, steps: int = 256):
    """Pre-generated actions [steps, N, 2]: ``random`` draws every bar anew (every position
    changes every bar: the worst case); ``persistent`` keeps each env's action and redraws it
    with probability 0.05 a bar (positions held for ~20 bars, as a trained policy holds)."""
    import numpy as np

    rng = np.random.default_rng(1)
    draws = rng.uniform(-1, 1, (steps, num_envs, 2)).astype(np.float32)
    if pattern == "random":
        return draws
    keep = rng.random((steps, num_envs, 1)) > 0.05
    out = draws.copy()
    for k in range(1, steps):
        out[k] = np.where(keep[k], out[k - 1], draws[k])
    return out


def bench_cell(profile: str, num_envs: int, seconds: float, pattern: str) -> float:
    """Env-steps/s of a VecTradingEnv stepped with pre-generated actions."""

    from adan.envs import VecTradingEnv
    from adan.rewards import SimpleReward

    data = market()
    try:
        from adan.market.spec import MarketSpec
    except ImportError:  # a revision before MarketSpec (--baseline-ref 42d6460, the foundation)
        env = VecTradingEnv(data, trading(profile), SimpleReward(), num_envs=num_envs,
                            window=WINDOW, episode_length=256, seed=0)  # fmt: skip
    else:
        spec = MarketSpec.of(data, trading=trading(profile), window=WINDOW)
        env = VecTradingEnv(spec, SimpleReward(), num_envs=num_envs, episode_length=256, seed=0)
    env.reset(seed=0)
    acts = actions(pattern, num_envs)
    for i in range(20):
        env.step(acts[i])
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in acts:
            env.step(a)
        steps += len(acts)
    return steps * num_envs / (time.perf_counter() - start)


def run_child(profile: str, seconds: float, src: Path, pattern: str) -> dict[int, float]:
    """Time every batch size of one profile in a fresh process importing ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")  # fmt: skip
    code = (
        f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"import bench_realism as b; "
        f"print(json.dumps({{n: b.bench_cell({profile!r}, n, {seconds}, {pattern!r}) "
        f"for n in {BATCHES}}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    return {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def train_sps(profile: str, steps: int = 65_536) -> float:
    """Median ``time/sps`` of a short ``python train.py trading=<profile>`` run."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(ROOT / "train.py"), f"trading={profile}",
               f"agent.total_timesteps={steps}", "callbacks.model_checkpoint=null",
               f"hydra.run.dir={tmp}/run"]  # fmt: skip
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        metrics = pd.read_csv(Path(tmp) / "run" / "csv" / "metrics.csv")
    return float(metrics["time/sps"].dropna().iloc[1:].median())  # the first has warm-up


def table(rows: dict[str, dict[int, float]], against: str) -> list[str]:
    lines = [
        "| trading | " + " | ".join(f"N={n}" for n in BATCHES) + " |",
        "|---|" + "---:|" * len(BATCHES),
    ]
    for name, cells in rows.items():
        parts = [f"{cells[n]:,.0f} ({rows[against][n] / cells[n]:.2f}x)" for n in BATCHES]
        lines.append(f"| {name} | " + " | ".join(parts) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.5 s cells instead of 2 s")
    parser.add_argument("--baseline-ref", help="git revision whose simulator to time as well")
    parser.add_argument("--train", action="store_true", help="also time short training runs")
    parser.add_argument("--before", help="git revision whose profiles to time beside today's")
    args = parser.parse_args()
    seconds = 0.5 if args.quick else 2.0
    lines = [
        "# What trading realism costs",
        "",
        "Env-steps/s of `VecTradingEnv` on the default synthetic market (2 assets, 9 features,",
        f"window {WINDOW}, one thread), per trading profile and batch size; in brackets the",
        "slowdown against the first row. Each profile turns on realistic execution, sizing,",
        "stops, risk limits, the behaviour engine and the regime in the observation.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Command: `python experiments/bench_realism.py"
        + (f" --baseline-ref {args.baseline_ref}" if args.baseline_ref else "")
        + (" --train`" if args.train else "`"),
    ]
    if args.before:  # its own file: results/bench_realism_<ref>.md
        before_and_after(args.before, seconds)
        return
    tree = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline_ref:
            tree = Path(tmp) / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.baseline_ref],
                           cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        try:
            for pattern in PATTERNS:
                rows: dict[str, dict[int, float]] = {}
                if tree is not None:
                    name = f"foundation ({args.baseline_ref})"
                    rows[name] = run_child("foundation", seconds, tree / "src", pattern)
                for profile in PROFILES:
                    rows[profile] = run_child(profile, seconds, ROOT / "src", pattern)
                    print(pattern, profile, {n: f"{v:,.0f}" for n, v in rows[profile].items()},
                          flush=True)  # fmt: skip
                lines += ["", f"## {pattern} actions: {PATTERNS[pattern]}", ""]
                lines += table(rows, next(iter(rows)))
                if tree is not None:
                    lines += ["", "Against `default` (today's code, every stage off):", ""]
                    lines += table({k: v for k, v in rows.items() if k in PROFILES}, "default")
        finally:
            if tree is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               check=True, capture_output=True)  # fmt: skip
    if args.train:
        sps = {profile: train_sps(profile) for profile in PROFILES}
        lines += [
            "",
            "## Training: `python train.py trading=<profile>` (65,536 steps, 64 envs, CustomCNN)",
            "",
            "| trading | env-steps/s | slowdown |",
            "|---|---:|---:|",
        ]
        lines += [f"| {p} | {v:,.0f} | {sps['default'] / v:.2f}x |" for p, v in sps.items()]
    _write(lines)


def _write(lines: list[str], path: Path = RESULTS) -> None:
    text = "\n".join(lines) + "\n"
    print(text)
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)


def before_and_after(ref: str, seconds: float) -> list[str]:
    """Every profile at revision ``ref`` and now, interleaved, random actions: a table of
    env-steps/s and the speed-up per batch size (written to results/bench_realism_<ref>.md
    too)."""
    rows: dict[str, tuple[dict[int, float], dict[int, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
        try:
            for profile in PROFILES:
                old = run_child(profile, seconds, tree / "src", "random")
                new = run_child(profile, seconds, ROOT / "src", "random")
                rows[profile] = (old, new)
                print(profile, {n: f"{new[n] / old[n]:.2f}x" for n in BATCHES}, flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           check=True, capture_output=True)  # fmt: skip
    out = [
        f"## Before ({ref}) and now, random actions: env-steps/s, speed-up in brackets",
        "",
        "| trading | " + " | ".join(f"N={n}" for n in BATCHES) + " |",
        "|---|" + "---:|" * len(BATCHES),
    ]
    for name, (old, new) in rows.items():
        cells = [f"{old[n]:,.0f} -> {new[n]:,.0f} ({new[n] / old[n]:.2f}x)" for n in BATCHES]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "Time per step over `default`'s, in the same revision:", "",
            "| trading | " + " | ".join(f"N={n} before / now" for n in BATCHES) + " |",
            "|---|" + "---:|" * len(BATCHES)]  # fmt: skip
    base_old, base_new = rows["default"]
    for name, (old, new) in rows.items():
        cells = [f"{base_old[n] / old[n]:.2f}x / {base_new[n] / new[n]:.2f}x" for n in BATCHES]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    head = [
        "# What trading realism costs: before and after",
        "",
        "`VecTradingEnv` env-steps/s on the default synthetic market (2 assets, 9 features,",
        f"window {WINDOW}, one thread), revision {ref} and today's tree timed in turn, each in a",
        f"fresh process, {seconds:g} s a cell. Machine: {platform.processor() or platform.machine()},",
        f"{os.cpu_count()} cores. Command: `python experiments/bench_realism.py --before {ref}`",
        "",
    ]
    _write([*head, *out], RESULTS.with_name(f"bench_realism_{ref}.md"))
    return out


if __name__ == "__main__":
    main()
