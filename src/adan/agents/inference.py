"""Forward passes on a CPU when the batch is a handful of rows (rollouts, backtests).

oneDNN (``torch.backends.mkldnn``), PyTorch's CPU convolution, sets up each call for its
blocked layouts; on the few rows of a rollout with a few envs that set-up costs more than the
convolution. PyTorch's native convolution has no such cost, and loses from about 16 rows on:
CustomCNN's forward measured 534 / 599 / 773 us with oneDNN and 315 / 442 / 1,123 us without
at 4 / 8 / 16 rows (one thread, the default model on 2 assets x 9 features, window 32; one
row: 249 / 268 us, a tie), and a training run with 8 envs went 1.10-1.17x faster
(experiments/results/bench_peers.md). Backtests use it too
(`adan.evaluation.backtest.PolicyActor`): a validation with several trading profiles steps one
row per profile. The two compute the same convolution; their sums are ordered differently, so
the log-probabilities of a rollout may differ from the update's re-evaluation in the last bits
(the PPO ratio starts at 1 +- 1e-7 instead of exactly 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

NATIVE_CONV_MAX_ROWS = 8  # largest batch that skips oneDNN's convolution


@contextlib.contextmanager
def small_batch_inference(rows: int, device: torch.device) -> Iterator[bool]:
    """Within it, fp32 forward passes of ``rows`` rows on a CPU use PyTorch's native
    convolution when ``rows <= NATIVE_CONV_MAX_ROWS``; yields whether they do. Under autocast
    (bf16) nothing changes: oneDNN computes bf16."""
    native = (
        torch.device(device).type == "cpu"
        and rows <= NATIVE_CONV_MAX_ROWS
        and not torch.is_autocast_enabled("cpu")
    )
    if not native:
        yield False
        return
    # the one flag, set directly: ``torch.backends.mkldnn.flags`` also sets (and warns about)
    # TF32 and determinism on every entry, which costs more than a small forward pass gains
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield True
    finally:
        torch.backends.mkldnn.enabled = before
