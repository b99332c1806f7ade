"""``trainer.precision: auto``: bf16-mixed only where the CPU has bf16 units."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adan.config.precision import cpu_has_bf16, resolve_precision

FLAGS = "flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512bw"


def _cpuinfo(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\n{FLAGS} {extra}\n\n")
    return path


def test_auto_is_bf16_mixed_on_a_cpu_with_bf16_units(tmp_path):
    for flag in ("avx512_bf16", "amx_bf16"):
        info = _cpuinfo(tmp_path, flag)
        assert cpu_has_bf16(info)
        assert resolve_precision("auto", "cpu", info) == "bf16-mixed"


def test_auto_is_fp32_on_a_cpu_without_them_or_an_unreadable_cpuinfo(tmp_path):
    assert resolve_precision("auto", "cpu", _cpuinfo(tmp_path)) == 32
    assert not cpu_has_bf16(tmp_path / "missing")
    assert resolve_precision("auto", "cpu", tmp_path / "missing") == 32


def test_auto_on_a_gpu_and_explicit_values_pass_through(tmp_path):
    assert resolve_precision("auto", "gpu", _cpuinfo(tmp_path)) == "bf16-mixed"
    assert resolve_precision(32, "cpu", _cpuinfo(tmp_path, "amx_bf16")) == 32
    assert resolve_precision("bf16-mixed", "cpu", _cpuinfo(tmp_path)) == "bf16-mixed"


@pytest.mark.skipif(torch.cuda.is_available(), reason="Lightning's auto would pick the GPU")
def test_auto_accelerator_without_a_gpu_follows_the_cpu(tmp_path):
    assert resolve_precision("auto", "auto", _cpuinfo(tmp_path)) == 32
    assert resolve_precision("auto", "auto", _cpuinfo(tmp_path, "amx_bf16")) == "bf16-mixed"


def test_auto_keeps_small_minibatches_in_fp32_on_a_bf16_cpu(tmp_path):
    from adan.config.precision import BF16_MIN_MINIBATCH

    info = _cpuinfo(tmp_path, "amx_bf16")
    assert resolve_precision("auto", "cpu", info, minibatch=BF16_MIN_MINIBATCH - 1) == 32
    assert resolve_precision("auto", "cpu", info, minibatch=BF16_MIN_MINIBATCH) == "bf16-mixed"
    assert resolve_precision("auto", "gpu", info, minibatch=8) == "bf16-mixed"
    assert resolve_precision("bf16-mixed", "cpu", info, minibatch=8) == "bf16-mixed"
