"""Throughput of `VecTradingEnv`: env-steps/s and observation bytes/s versus batch size.

Two observation sizes: (a) the default, window 32 x 2 assets x 9 features; (b) a small one,
window 32 x 1 asset x 2 features (gym-anytrading's size). Random actions are generated up
front, the market is a synthetic random walk of 20,000 bars, each cell runs ~1.5 s.
Each thread setting runs in its own process (the variables must be set before numpy loads).

    python experiments/bench_env.py            # both thread settings, writes results/bench_env.md
    python experiments/bench_env.py --quick    # shorter cells
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from adan.market.spec import MarketSpec

CASES = {"a": (32, 2, 9), "b": (32, 1, 2)}  # window, assets, features (a = conf default)
BATCHES = (1, 64, 1024, 4096)
NUM_BARS = 20_000
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
RESULTS = Path(__file__).parent / "results" / "bench_env.md"


def random_walk_market(num_bars: int, num_assets: int, num_features: int, seed: int = 0):
    """A MarketData of geometric random-walk prices and standard-normal features."""
    import numpy as np

    from adan.data.bars import MarketData

    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (num_bars, num_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.002, close.shape))
    return MarketData(
        timestamps=np.arange(num_bars).astype("datetime64[h]").astype("datetime64[ns]"),
        assets=tuple(f"A{i}" for i in range(num_assets)),
        feature_names=tuple(f"f{i}" for i in range(num_features)),
        features=rng.standard_normal((num_bars, num_assets, num_features), dtype=np.float32),
        open=open_,
        high=np.maximum(open_, close) * 1.001,
        low=np.minimum(open_, close) * 0.999,
        close=close,
        volume=np.ones_like(close),
    )


def bench_cell(case: str, num_envs: int, seconds: float) -> dict:
    """Step a VecTradingEnv with pre-generated random actions for about ``seconds``."""
    import numpy as np

    from adan.envs import VecTradingEnv
    from adan.market import TradingConfig
    from adan.rewards import SimpleReward

    window, assets, features = CASES[case]
    env = VecTradingEnv(
        MarketSpec.of(
            random_walk_market(NUM_BARS, assets, features), trading=TradingConfig(), window=window
        ),
        SimpleReward(),
        num_envs=num_envs,
        seed=0,
    )
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (64, num_envs, assets)).astype(np.float32)
    for i in range(20):  # warm-up
        env.step(actions[i % 64])
    steps, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for i in range(64):
            env.step(actions[i])
        steps += 64
        now = time.perf_counter()
        if now >= deadline:
            break
    elapsed = now - start
    obs_bytes = 4 * (window * assets * features + assets + 4)
    return {
        "case": case,
        "num_envs": num_envs,
        "env_steps_per_s": steps * num_envs / elapsed,
        "obs_bytes_per_s": steps * num_envs * obs_bytes / elapsed,
        "us_per_step": 1e6 * elapsed / steps,
    }


def worker(seconds: float) -> None:
    rows = [bench_cell(case, n, seconds) for case in CASES for n in BATCHES]
    print(json.dumps(rows))


def run_setting(threads: str | None, seconds: float) -> list[dict]:
    env = dict(os.environ)
    for var in THREAD_VARS:
        if threads is None:
            env.pop(var, None)
        else:
            env[var] = threads
    cmd = [sys.executable, __file__, "--worker", "--seconds", str(seconds)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(results: dict[str, list[dict]]) -> str:
    settings = list(results)
    head = ["case", "obs shape (W x A x F)", "N"]
    for s in settings:
        head += [f"env-steps/s ({s})", f"obs MB/s ({s})", f"us/step ({s})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, row in enumerate(results[settings[0]]):
        w, a, f = CASES[row["case"]]
        cells = [row["case"], f"{w} x {a} x {f}", str(row["num_envs"])]
        for s in settings:
            r = results[s][i]
            cells += [
                f"{r['env_steps_per_s']:,.0f}",
                f"{r['obs_bytes_per_s'] / 1e6:,.0f}",
                f"{r['us_per_step']:,.1f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=1.5, help="duration of one cell")
    parser.add_argument("--quick", action="store_true", help="0.3 s per cell")
    args = parser.parse_args()
    seconds = 0.3 if args.quick else args.seconds
    if args.worker:
        worker(seconds)
        return
    results = {
        "threads=1": run_setting("1", seconds),
        "default threads": run_setting(None, seconds),
    }
    import numpy as np

    report = "\n".join(
        [
            "# VecTradingEnv throughput",
            "",
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"Python {platform.python_version()}, numpy {np.__version__}. Random continuous "
            f"actions, SimpleReward, NextStep autoreset, episode_length 512, {NUM_BARS} bars; "
            f"{seconds} s per cell. Produced by `python experiments/bench_env.py`.",
            "",
            table(results),
            "",
        ]
    )
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)


if __name__ == "__main__":
    main()
