"""Fault cases run against the real entry points; helpers shared by them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

# debug=fast on a shorter synthetic history (8,000 bars: validation and the closing backtests
# over 1,200 bars instead of 3,000); the faults do not depend on the market's length
DEBUG = ["debug=fast", "~callbacks.progress_bar"]  # any task and market
FAST = [*DEBUG, "data.source.n_bars=8000"]  # the synthetic market


def run(script: str, out_dir: Path, *overrides: str, timeout: float = 300, env=None):
    """``python <script> hydra.run.dir=<out_dir> ...`` in a subprocess; the CompletedProcess
    (never fails by itself: fault tests check the exit status)."""
    cmd = [sys.executable, str(ROOT / script), f"hydra.run.dir={out_dir}", *overrides]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env
    )


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


@pytest.fixture
def tmpfs(tmp_path):
    """``make(size, read_only=False)``: a fresh tmpfs of ``size`` mounted under tmp_path
    (root only, which CI is); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounts: list[Path] = []

    def make(size: str, read_only: bool = False) -> Path:
        point = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
        point.mkdir()
        opts = f"size={size}" + (",ro" if read_only else "")
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
        mounts.append(point)
        return point

    yield make
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def compose_train(out_dir: Path, *overrides: str):
    """The train config ``python train.py <overrides>`` composes, with its run directory at
    ``out_dir`` (for in-process runs of ``adan.tasks.train.train``: the same task, without the
    seconds of a fresh interpreter)."""
    from hydra import compose, initialize_config_dir

    from adan.ops.run_dir import register_resolver
    from adan.tasks.registry import register_configs

    register_configs()
    register_resolver()
    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={out_dir}", *overrides])


def train_in_process(out_dir: Path, *overrides: str) -> dict:
    """``adan.tasks.train.train`` on ``compose_train(out_dir, *overrides)``: its summary."""
    from adan.tasks.train import train

    return train(compose_train(out_dir, *overrides))
