"""End-to-end runs of the real entry point (`python train.py ...`) in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_multirun(sweep_dir: Path, *overrides: str, timeout: float = 900, env: dict | None = None):
    """Run ``train.py -m`` with Hydra's sweep dir set to ``sweep_dir``; fail on a non-zero exit."""
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env
    )
    if proc.returncode != 0:
        pytest.fail(
            f"train.py -m {' '.join(overrides)} exited {proc.returncode}:\n{proc.stderr[-5000:]}"
        )
    return proc


def run_train(
    out_dir: Path,
    *overrides: str,
    timeout: float = 300,
    check: bool = True,
    env: dict | None = None,
):
    """Run train.py with Hydra's run dir set to ``out_dir``; return the CompletedProcess."""
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={out_dir}", *overrides]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"train.py {' '.join(overrides)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc
