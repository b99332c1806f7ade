"""Checkpoints are there when they are needed: after every iteration whatever the monitor,
written atomically (a full disk never leaves half a file), best-k kept across a resume,
signals saved and reported with 128 + signal, run directories never shared.

Every run here uses the shipped defaults (``monitor=val/sharpe``) unless a case is about a
setting."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from adan.callbacks import RunCheckpoint
from adan.errors import ConfigError
from adan.evaluation.checkpoint import SafeCheckpointIO, read_checkpoint
from tests.e2e.conftest import ROOT
from tests.reliability import probe
from tests.reliability.conftest import FAST, output, run, train_in_process

# 12 iterations of 512 steps; debug=fast validates every 2 iterations
BUDGET = [*FAST, "agent.total_timesteps=6144"]


def _probe(path: Path) -> list[str]:
    return [
        "+callbacks.probe._target_=tests.reliability.probe.LastCheckpointProbe",
        f"+callbacks.probe.path={path}",
    ]


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(ckpt)["state_dict"]


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key, value in wa.items():
        torch.testing.assert_close(wb[key], value, rtol=0, atol=0, msg=key)


def test_kill_9_at_a_random_point_then_resume_equals_an_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight"
    proc = run("train.py", straight, *BUDGET)
    assert proc.returncode == 0, output(proc)[-3000:]

    seed = random.randrange(10**6)
    rng = random.Random(seed)
    target = rng.randint(3, 9)  # the iteration during which the run is killed
    killed, log = tmp_path / "killed", tmp_path / "probe.jsonl"
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={killed}", *BUDGET, *_probe(log)]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and child.poll() is None:
        rows = probe.read(log)
        if rows and rows[-1]["iteration"] >= target:
            break
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.4))
    child.kill()
    child.wait()
    rows = probe.read(log)
    assert rows and rows[-1]["iteration"] >= target, f"seed {seed}: never reached {target}"
    # At the start of iteration k, last.ckpt holds the k iterations before it (512 steps
    # each): a kill loses at most the iteration in progress.
    for row in rows:
        assert row["last_ckpt_steps"] == 512 * row["iteration"], (seed, rows)
    last = killed / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["adan_state"]["env_steps"] >= 512 * rows[-1]["iteration"]

    resumed = tmp_path / "resumed"
    proc = run("train.py", resumed, *BUDGET, f"ckpt_path={killed}")
    assert proc.returncode == 0, output(proc)[-3000:]
    _assert_same_weights(
        straight / "checkpoints" / "last.ckpt", resumed / "checkpoints" / "last.ckpt"
    )
    # the resumed run's best checkpoint is the best of the whole run: the uninterrupted run's
    best_straight = sorted((straight / "checkpoints").glob("best-*.ckpt"))
    best_resumed = sorted((resumed / "checkpoints").glob("best-*.ckpt"))
    assert [p.name for p in best_resumed] == [p.name for p in best_straight], seed
    _assert_same_weights(best_straight[0], best_resumed[0])
    a, b = (json.loads((d / "summary.json").read_text()) for d in (straight, resumed))
    assert a["val"] == b["val"] and a["env_steps"] == b["env_steps"]


def test_resume_into_its_own_run_directory_continues_the_metrics(tmp_path):
    out = tmp_path / "run"
    proc = run("train.py", out, *FAST, "trainer.max_epochs=2")
    assert proc.returncode == 0, output(proc)[-3000:]
    first_rows = (out / "csv" / "metrics.csv").read_text().splitlines()
    config = (out / ".hydra" / "config.yaml").read_text()
    proc = run("train.py", out, *FAST, f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}")
    assert proc.returncode == 0, output(proc)[-3000:]
    rows = (out / "csv" / "metrics.csv").read_text().splitlines()
    assert len(rows) > len(first_rows)
    steps = [float(r.split(",")[rows[0].split(",").index("step")]) for r in rows[1:]]
    assert min(steps) <= 1024 < max(steps)  # the first two iterations' rows are still there
    assert (out / ".hydra" / "config.yaml").read_text() == config  # kept as it was
    assert (out / ".hydra.resume-1" / "config.yaml").exists()
    assert read_checkpoint(out / "checkpoints" / "last.ckpt")["adan_state"]["env_steps"] == 2048


def test_a_second_run_into_a_used_run_directory_is_refused(tmp_path):
    out = tmp_path / "run"
    train_in_process(out, *FAST, "trainer.max_epochs=1")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    proc = run("train.py", out, *FAST, "trainer.max_epochs=1")
    assert proc.returncode != 0
    assert "already holds a run" in proc.stderr and "ckpt_path=" in proc.stderr
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing touched
    # a caller that bypasses the entry point (a multirun job dir reused) is refused by the task
    with pytest.raises(ConfigError, match="already holds checkpoints of another run"):
        train_in_process(out, *FAST, "trainer.max_epochs=1")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_run_names_differ_between_processes_started_together():
    code = "from adan.ops.run_dir import run_name; print(run_name())"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]  # fmt: skip
    names = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert len(set(names)) == 4 and all(n[:4].isdigit() for n in names), names


@pytest.mark.slow
def test_two_runs_started_in_the_same_second_get_their_own_directories(tmp_path):
    cmd = [sys.executable, str(ROOT / "train.py"), f"paths.log_dir={tmp_path}", *FAST,
           "agent.total_timesteps=512", "trainer.check_val_every_n_epoch=100"]  # fmt: skip
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(2)]  # fmt: skip
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out.decode()[-3000:]
    runs = sorted((tmp_path / "debug" / "runs").iterdir())
    assert len(runs) == 2
    for r in runs:
        assert (r / "summary.json").exists() and (r / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_last_and_exits_with_128_plus_the_signal(tmp_path, sig, code):
    out = tmp_path / "run"
    log = tmp_path / "probe.jsonl"
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={out}", *FAST,
           "agent.total_timesteps=10000000", *_probe(log)]  # fmt: skip
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while time.time() < deadline and child.poll() is None:
        rows = probe.read(log)
        if rows and rows[-1]["iteration"] >= 3:
            break
        time.sleep(0.05)
    child.send_signal(sig)
    text, _ = child.communicate(timeout=120)
    assert child.returncode == code, text.decode()[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == sig.name
    ckpt = read_checkpoint(out / "checkpoints" / "last.ckpt")
    assert summary["iterations"] >= 3
    assert ckpt["adan_state"]["env_steps"] == summary["env_steps"] == 512 * summary["iterations"]
    if sig == signal.SIGINT:
        return  # the same checkpoint code path as SIGTERM's, resumed below

    resumed = tmp_path / "resumed"
    stop = summary["iterations"] + 2
    proc = run("train.py", resumed, *FAST, "agent.total_timesteps=10000000",
               f"ckpt_path={out}", f"trainer.max_epochs={stop}")  # fmt: skip
    assert proc.returncode == 0, output(proc)[-3000:]
    steps = read_checkpoint(resumed / "checkpoints" / "last.ckpt")["adan_state"]["env_steps"]
    assert steps == 512 * stop
    assert json.loads((resumed / "summary.json").read_text())["status"] == "completed"


def test_a_wall_clock_limit_stops_saves_and_says_so(tmp_path):
    out = tmp_path / "run"
    train_in_process(out, *FAST, "agent.total_timesteps=10000000",
                     "callbacks.timer.duration=00:00:00:03")  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "time_limit"
    ckpt = read_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["adan_state"]["env_steps"] == summary["env_steps"] == 512 * summary["iterations"]


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_where(tmpfs):
    disk = tmpfs("1m")  # room for two checkpoints of debug=fast, not three
    out = disk / "run"
    proc = run("train.py", out, *FAST)
    assert proc.returncode != 0
    text = output(proc)
    assert f"disk full: no space left on the device holding {out / 'checkpoints'} (" in text, text[
        -3000:
    ]
    assert "bytes free) while writing" in text and "is intact" in text
    assert "Traceback" not in text.split("disk full")[-1]  # the message is the last word
    ckpts = list((out / "checkpoints").iterdir())
    assert not [p for p in ckpts if p.name.endswith(".tmp")], ckpts  # no half-written file
    finals = [p for p in ckpts if p.suffix == ".ckpt"]
    assert finals, "the first checkpoint fits on this disk"
    for p in finals:
        ckpt = read_checkpoint(p)  # every file under a final name is whole
        assert ckpt["adan_state"]["env_steps"] >= 512
    assert "last good checkpoint" in text


def test_a_read_only_output_directory_is_refused_before_any_work(tmpfs):
    disk = tmpfs("1m", read_only=True)
    proc = run("train.py", disk / "run", *FAST)
    assert proc.returncode != 0
    assert "hydra.run.dir" in proc.stderr and "cannot be written" in proc.stderr
    assert "Read-only file system" in proc.stderr
    assert "training" not in proc.stdout  # refused before the data or the model were built


# ---------------------------------------------------------------- in process


class _Scripted(pl.LightningModule):
    """A tiny model whose validation score follows a script, one value per epoch."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.scores = scores

    def training_step(self, batch, batch_idx):  # noqa: ANN001
        return self.layer(batch).pow(2).mean()

    def validation_step(self, batch, batch_idx):  # noqa: ANN001
        self.log("val/score", self.scores[self.current_epoch])

    def train_dataloader(self):  # noqa: ANN201
        return torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=4)

    def val_dataloader(self):  # noqa: ANN201
        return torch.utils.data.DataLoader(torch.randn(4, 2), batch_size=4)

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(dirpath: Path, scores: list[float], epochs: int, ckpt_path: Path | None = None):
    callback = RunCheckpoint(
        dirpath=dirpath, filename="best-{epoch}", monitor="val/score", mode="max", save_top_k=1
    )
    trainer = pl.Trainer(
        max_epochs=epochs, callbacks=[callback], logger=False, enable_progress_bar=False,
        enable_model_summary=False, plugins=[SafeCheckpointIO(require_adan=False)], num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(_Scripted(scores), ckpt_path=ckpt_path, weights_only=True)
    return callback


def test_best_k_is_the_best_of_the_whole_run_after_a_resume_into_a_new_directory(tmp_path):
    scores = [1.0, 5.0, 2.0, 3.0, 4.0]  # the best (5) comes before the resume
    first = _fit(tmp_path / "a", scores, epochs=3)
    assert Path(first.best_model_path).name == "best-epoch=1.ckpt"
    resumed = _fit(tmp_path / "b", scores, epochs=5, ckpt_path=tmp_path / "a" / "last.ckpt")
    best = Path(resumed.best_model_path)
    assert best.parent == tmp_path / "b" and best.name == "best-epoch=1.ckpt"
    assert float(resumed.best_model_score) == 5.0
    assert sorted(p.name for p in (tmp_path / "b").glob("best-*")) == ["best-epoch=1.ckpt"]
    assert read_checkpoint(best, require_adan=False)["epoch"] == 1
    assert (tmp_path / "a" / "best-epoch=1.ckpt").exists()  # the first run's files untouched
    assert read_checkpoint(tmp_path / "b" / "last.ckpt", require_adan=False)["epoch"] == 5


def test_last_is_written_after_every_iteration_whatever_the_monitor(tmp_path):
    seen = []

    class Watch(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):  # noqa: ANN001
            last = tmp_path / "last.ckpt"
            seen.append(
                read_checkpoint(last, require_adan=False)["epoch"] if last.exists() else None
            )

    callback = RunCheckpoint(dirpath=tmp_path, monitor="val/score", mode="max")
    trainer = pl.Trainer(
        max_epochs=6, callbacks=[callback, Watch()], logger=False, enable_progress_bar=False,
        enable_model_summary=False, plugins=[SafeCheckpointIO(require_adan=False)], check_val_every_n_epoch=3,
        num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(_Scripted([9.0, 8.0, 7.0, 1.0, 1.0, 1.0]))
    assert seen == [None, 0, 1, 2, 3, 4]  # the epoch (index) each last.ckpt was written at


def test_a_resumed_file_cannot_make_the_run_copy_files_from_elsewhere(tmp_path):
    """best_k_models comes from the resumed checkpoint: only .ckpt files in its own checkpoint
    directory are carried over."""
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    (old / "best-epoch=1.ckpt").write_bytes(b"a checkpoint")
    secret = tmp_path / "id_rsa"
    secret.write_text("private")
    callback = RunCheckpoint(dirpath=new, monitor="val/score", mode="max")
    callback.dirpath = str(new)  # as Lightning's setup sets it
    new.mkdir()
    callback.load_state_dict({
        "monitor": "val/score", "dirpath": str(old), "best_model_path": str(secret),
        "best_model_score": torch.tensor(9.0), "kth_best_model_path": str(secret),
        "kth_value": torch.tensor(2.0), "last_model_path": "",
        "best_k_models": {str(secret): torch.tensor(9.0),
                          str(old / "best-epoch=1.ckpt"): torch.tensor(2.0)},
    })  # fmt: skip
    assert sorted(p.name for p in new.iterdir()) == ["best-epoch=1.ckpt"]
    assert callback.best_model_path == str(new / "best-epoch=1.ckpt")
    assert float(callback.best_model_score) == 2.0
