"""Finding a checkpoint from a file or a run directory."""

import pytest

from adan.evaluation.checkpoint import resolve_checkpoint


def test_checkpoint_paths_are_resolved_or_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at nowhere/last.ckpt"):
        resolve_checkpoint("nowhere/last.ckpt")
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(FileNotFoundError, match="without checkpoints/last.ckpt"):
        resolve_checkpoint(tmp_path)
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert resolve_checkpoint(tmp_path) == tmp_path / "checkpoints" / "last.ckpt"
