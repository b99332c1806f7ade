"""Where time goes in one PPO iteration of the default trading run, and whether torch.compile,
bf16 autocast or a second torch thread pay on this machine.

Each case runs the real entry point for a few iterations (`python train.py ...` with the CSV
logger) and reports the median env-steps/s over the iterations after the first two (compile
and allocator warm-up), with the share of time spent collecting the rollout.

    python experiments/bench_train_step.py            # CPU cases
    python experiments/bench_train_step.py --gpu      # adds trainer=gpu cases (needs CUDA)

Prints a markdown table and writes it to experiments/results/bench_train_step.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ITERATIONS = 8
COMMON = [
    f"agent.total_timesteps={8192 * ITERATIONS}",
    "trainer.check_val_every_n_epoch=1000",
    "callbacks.model_checkpoint.monitor=null",
    "~callbacks.progress_bar",
    "logger=csv",
]
CPU_CASES = {
    "eager, fp32, 1 thread (default)": [],
    "eager, fp32, 2 threads": ["torch_threads=2"],
    "torch.compile, fp32, 1 thread": ["model.compile=true"],
    "eager, bf16-mixed, 1 thread": ["trainer.precision=bf16-mixed"],
}
GPU_CASES = {
    "gpu eager, bf16-mixed": ["trainer=gpu"],
    "gpu eager, fp32": ["trainer=gpu", "trainer.precision=32"],
    "gpu torch.compile, bf16-mixed": ["trainer=gpu", "model.compile=true"],
}


def cpu_description() -> str:
    """CPU model and whether it has bf16 units (which decide if bf16 autocast pays)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
        "?",
    )
    bf16 = "avx512_bf16" in info or "amx_bf16" in info
    return f"{model}, {'with' if bf16 else 'without'} bf16 instructions"


def run(overrides: list[str], out: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={out}", *COMMON, *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{overrides} failed:\n{proc.stderr[-3000:]}")
    m = pd.read_csv(out / "csv" / "metrics.csv")
    steady = m.dropna(subset=["time/sps"]).iloc[2:]
    return {
        "sps": steady["time/sps"].median(),
        "rollout": steady["time/rollout_fraction"].median(),
        "wall": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true")
    args = ap.parse_args()
    cases = {**CPU_CASES, **(GPU_CASES if args.gpu else {})}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, overrides) in enumerate(cases.items()):
            r = run(overrides, Path(tmp) / str(i))
            rows.append((name, r))
            print(name, r, flush=True)
    base = rows[0][1]["sps"]
    lines = [
        "| case | env-steps/s (median, steady) | vs default | rollout share | process wall s |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {r['sps']:,.0f} | {r['sps'] / base:.2f}x | {r['rollout']:.0%} | {r['wall']:.0f} |"
        for n, r in rows
    ]
    table = "\n".join(lines)
    print(table)
    out = ROOT / "experiments" / "results" / "bench_train_step.md"
    out.write_text(
        "# One PPO iteration of the default trading run\n\n"
        f"64 envs x 128 steps, CustomCNN (16, 32 channels, window 32), 8 minibatches x 4 epochs; "
        f"{ITERATIONS} iterations per case, median of iterations 3..{ITERATIONS}. "
        f"CPU: {cpu_description()}, 2 cores, otherwise idle. "
        "Produced by `python experiments/bench_train_step.py`.\n\n" + table + "\n"
    )


if __name__ == "__main__":
    main()
