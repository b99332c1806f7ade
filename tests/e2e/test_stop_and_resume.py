"""Stopping early (SIGTERM, a wall-clock limit) leaves a checkpoint that resumes."""

import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.e2e.conftest import ROOT, run_train

LONG = [
    "debug=fast",
    "agent.total_timesteps=10000000",
    "trainer.check_val_every_n_epoch=1000",
    "callbacks.model_checkpoint.monitor=null",
    "callbacks.model_checkpoint.save_on_train_epoch_end=true",
    "~callbacks.progress_bar",
]


@pytest.mark.parametrize(
    "sig, reason", [(signal.SIGTERM, "(SIGTERM)"), (signal.SIGINT, "(signal)")]
)
def test_signal_saves_a_resumable_checkpoint(tmp_path, sig, reason):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={out}", *LONG]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert last.exists(), "no checkpoint appeared before the deadline"
    time.sleep(1.0)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    assert "saved" in output and reason in output, output[-2000:]
    ckpt = torch.load(last, weights_only=False)
    stopped_at = ckpt["epoch"]
    assert 1 <= stopped_at < 10_000_000 // 512
    assert ckpt["adan_state"]["env_steps"] == stopped_at * 512  # state matches the epoch count

    resumed = tmp_path / "resumed"
    run_train(resumed, *LONG[:-1], f"ckpt_path={last}", f"trainer.max_epochs={stopped_at + 2}")
    after = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=False)
    assert after["epoch"] == stopped_at + 2
    assert after["adan_state"]["env_steps"] == (stopped_at + 2) * 512


def test_wall_clock_limit_stops_and_checkpoints(tmp_path):
    out = tmp_path / "run"
    t0 = time.time()
    run_train(out, *LONG, "callbacks.timer.duration=00:00:00:03")
    assert time.time() - t0 < 120
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert 1 <= ckpt["epoch"] < 10_000_000 // 512
    assert (out / "summary.json").exists()
