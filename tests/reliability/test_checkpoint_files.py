"""No code runs from a checkpoint: a planted payload, foreign, empty, truncated and garbage files
each get one clear error naming the file, through ``eval.py``, ``train.py ckpt_path=`` and the
library; a checkpoint holds only tensors, arrays and plain values (the gym task's env too)."""

from __future__ import annotations

import os
import pickle
import zipfile

import pytest
import torch

from adan.errors import CheckpointError
from adan.evaluation.checkpoint import read_checkpoint
from tests.reliability.conftest import FAST, output, run, train_in_process


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real checkpoint of a short default run."""
    out = tmp_path_factory.mktemp("trained") / "run"
    train_in_process(out, *FAST, "trainer.max_epochs=2")
    return out / "checkpoints" / "last.ckpt"


class _Payload:
    """Pickles to a call of os.system: what a planted checkpoint runs on torch.load."""

    def __init__(self, marker) -> None:  # noqa: ANN001
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def _planted(tmp_path, trained):
    """A real ADAN checkpoint with a payload planted beside its weights."""
    marker = tmp_path / "PAYLOAD_RAN"
    ckpt = torch.load(trained, weights_only=False)  # the test's own trusted file
    ckpt["adan_state"]["payload"] = _Payload(marker)
    path = tmp_path / "evil.ckpt"
    torch.save(ckpt, path)
    return path, marker


def test_a_planted_payload_is_refused_by_eval_and_never_runs(tmp_path, trained):
    path, marker = _planted(tmp_path, trained)
    proc = run("eval.py", tmp_path / "eval", f"ckpt_path={path}")
    assert proc.returncode != 0
    assert not marker.exists(), "the payload ran"
    assert f"{path} was refused without loading it" in proc.stderr
    assert "posix.system" in proc.stderr


def test_a_planted_payload_is_refused_on_resume_and_never_runs(tmp_path, trained):
    path, marker = _planted(tmp_path, trained)
    with pytest.raises(CheckpointError, match="was refused without loading it"):
        train_in_process(tmp_path / "run", *FAST, f"ckpt_path={path}")
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "run").exists()  # refused before any work


def test_a_bare_pickle_payload_is_not_even_unpickled(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / "legacy.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": {}, "x": _Payload(marker)}))
    with pytest.raises(CheckpointError, match="bare pickle"):
        read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p, good: p.write_bytes(b""), "is empty (0 bytes)"),
        (lambda p, good: p.write_bytes(good[: len(good) // 2]), "is truncated or corrupt"),
        (
            lambda p, good: p.write_bytes(b"\x13\x37" + os.urandom(4094)),
            "is not a PyTorch checkpoint",
        ),
        (lambda p, good: p.write_text("epoch,step\n1,2\n"), "is not a PyTorch checkpoint"),
        (
            lambda p, good: torch.save({"state_dict": {"w": torch.zeros(2)}}, p),
            "was not written by ADAN's train task",
        ),
        (lambda p, good: _damage_a_member(p, good), "is truncated or corrupt"),
    ],
    ids=["empty", "truncated", "garbage", "text", "foreign", "damaged-member"],
)
def test_bad_checkpoint_files_get_one_clear_error_naming_the_file(tmp_path, trained, make, message):
    path = tmp_path / "bad.ckpt"
    make(path, trained.read_bytes())
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert len(str(err.value)) < 600  # one message, not a dump


def _damage_a_member(path, good: bytes) -> None:
    """The zip directory intact, the pickled data inside garbled."""
    path.write_bytes(good)
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        info = z.getinfo(name)
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start : start + info.compress_size] = b"\x00" * info.compress_size
    path.write_bytes(bytes(raw))


def test_eval_of_a_bad_file_says_so_in_one_line(tmp_path, trained):
    path = tmp_path / "half.ckpt"
    path.write_bytes(trained.read_bytes()[:1000])
    proc = run("eval.py", tmp_path / "eval", f"ckpt_path={path}")
    assert proc.returncode != 0
    line = next(x for x in proc.stderr.splitlines() if x.startswith("adan.errors.CheckpointError"))
    assert str(path) in line and "truncated or corrupt" in line


CARTPOLE = [
    "experiment=cartpole",
    "~callbacks.progress_bar",
    "agent.total_timesteps=4096",  # 4 iterations of 8 envs x 128 steps
    "trainer.check_val_every_n_epoch=100",
]


def test_a_cartpole_checkpoint_holds_no_pickle_and_eval_says_what_it_is(tmp_path):
    out = tmp_path / "run"
    train_in_process(out, *CARTPOLE, "trainer.max_epochs=1")
    ckpt = read_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["adan_state"]["env"]["kind"] == "attributes"  # plain values, not a pickle
    proc = run("eval.py", tmp_path / "eval", f"ckpt_path={out}")
    assert proc.returncode != 0
    assert "was trained on the gym task CartPole-v1, not on market data" in proc.stderr
    assert len(proc.stderr) < 5000  # not a dump of the checkpoint


@pytest.mark.slow
def test_a_cartpole_run_resumes_exactly_from_its_plain_env_state(tmp_path):
    straight, first, resumed = tmp_path / "straight", tmp_path / "first", tmp_path / "resumed"
    for out, extra in ((straight, []), (first, ["trainer.max_epochs=2"])):
        proc = run("train.py", out, *CARTPOLE, *extra)
        assert proc.returncode == 0, output(proc)[-3000:]
    half = first / "checkpoints" / "last.ckpt"
    proc = run("train.py", resumed, *CARTPOLE, f"ckpt_path={half}")
    assert proc.returncode == 0, output(proc)[-3000:]
    a = read_checkpoint(straight / "checkpoints" / "last.ckpt")["state_dict"]
    b = read_checkpoint(resumed / "checkpoints" / "last.ckpt")["state_dict"]
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=0, msg=key)
