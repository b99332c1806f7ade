"""``trainer.precision: auto``: bf16 autocast where the CPU computes in bf16, fp32 elsewhere.

On a CPU with bf16 units (AVX512-BF16 or AMX) bf16-mixed makes the default run's update
faster (experiments/results/bench_train_step.md); on one without them bf16 is emulated and
measured 8-19x slower, so ``auto`` picks fp32 there. Even with bf16 units, small batches
run faster in fp32 (bf16's casts and its kernels' set-up outweigh the smaller matmuls), so a
CPU run whose update minibatch has fewer than ``BF16_MIN_MINIBATCH`` rows stays in fp32
(experiments/results/precision_gate.md). On a GPU ``auto`` is bf16-mixed. The value chosen is
logged and saved with the run's config (``trainer.precision`` resolved).
"""

from __future__ import annotations

from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# Smallest update minibatch (rows) at which bf16 autocast paid on a CPU with bf16 units:
# 8 envs (minibatches of 128) ran 0.85x fp32's speed, 64 envs (1,024) 1.2x.
BF16_MIN_MINIBATCH = 512


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU lists bf16 instructions (``/proc/cpuinfo`` flags; False if unreadable)."""
    try:
        flags = Path(cpuinfo).read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_FLAGS)


def resolve_precision(
    precision: str | int,
    accelerator: str,
    cpuinfo: str | Path = "/proc/cpuinfo",
    minibatch: int | None = None,
) -> str | int:
    """``precision`` as given, or for ``auto`` the one this machine runs fastest at the same
    learning: bf16-mixed on a GPU, or on a CPU with bf16 units when the update's ``minibatch``
    (rows; None: unknown) has at least ``BF16_MIN_MINIBATCH``; else 32."""
    if str(precision) != "auto":
        return precision
    if accelerator == "auto":  # Lightning's choice: a GPU when one is visible
        import torch

        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator != "cpu":
        return "bf16-mixed"
    if minibatch is not None and minibatch < BF16_MIN_MINIBATCH:
        return 32
    return "bf16-mixed" if cpu_has_bf16(cpuinfo) else 32
