"""Every run gets a directory of its own, and no run writes over another's.

Hydra creates the run directory and writes its ``.hydra/`` files there before the task
starts, and its default name has a resolution of one second, so two runs started in the same
second, or a second run pointed at an old directory, would write into one directory. Here:

- :func:`run_name` (the ``${adan_run_name:}`` resolver in ``conf/hydra/default.yaml``) is the
  start time plus the process id, fixed once per process: two runs never share a default name;
- :class:`RunDirGuard`, a Hydra callback, refuses before Hydra writes anything a run directory
  that already holds files, unless the run resumes a checkpoint of that very directory (Hydra
  then writes the resumed run's config to ``.hydra.resume-<n>/``, leaving ``.hydra/`` as it
  was), and one that cannot be written (a read-only mount), with the key to set.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from adan.errors import ConfigError

_NAME: str | None = None
_RANKS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def run_name() -> str:
    """``2026-12-04_03-00-00_12345``: this process's start time and id (fixed per process)."""
    global _NAME
    if _NAME is None:
        _NAME = f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{os.getpid()}"
    return _NAME


def register_resolver() -> None:
    if not OmegaConf.has_resolver("adan_run_name"):
        OmegaConf.register_new_resolver("adan_run_name", run_name)


def _resumes(run_dir: Path, ckpt_path: Any) -> bool:
    """Whether ``ckpt_path`` is a checkpoint of ``run_dir`` (or ``run_dir`` itself)."""
    if not ckpt_path:
        return False
    target = Path(str(ckpt_path)).expanduser().resolve()
    return target == run_dir or run_dir in target.parents


class RunDirGuard(Callback):
    """Hydra callback: refuse a used or unwritable run directory before anything is written.

    ``resume_key``: the config key naming a checkpoint this task resumes (``ckpt_path`` for
    training); ``None`` for tasks that never resume into their own directory (eval).
    Hydra turns a callback's exception into a warning, so a refusal ends the process here
    (``SystemExit`` with the message, exit status 1)."""

    def __init__(self, resume_key: str | None = "ckpt_path") -> None:
        self.resume_key = resume_key

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if any(int(os.environ.get(k, "0") or 0) > 0 for k in _RANKS):
            return  # a DDP worker (Lightning's, or a scheduler's task) in rank 0's run directory
        run_dir = Path(str(config.hydra.run.dir)).expanduser().resolve()
        ckpt = OmegaConf.select(config, self.resume_key) if self.resume_key else None
        try:
            subdir = check_run_dir(run_dir, resume=_resumes(run_dir, ckpt))
        except ConfigError as err:
            raise SystemExit(f"Error: {err}") from None
        if subdir is not None and config.hydra.output_subdir is not None:
            with open_dict(config.hydra):  # the same config object run_job reads next
                config.hydra.output_subdir = subdir

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir)).expanduser().resolve()
        try:
            _require_writable(sweep_dir, "hydra.sweep.dir")
        except ConfigError as err:
            raise SystemExit(f"Error: {err}") from None


def check_run_dir(run_dir: Path, resume: bool) -> str | None:
    """Refuse ``run_dir`` if it holds another run's files (unless ``resume``: a resume of a
    checkpoint inside it) or cannot be written. For a resume, the name of a fresh
    ``.hydra.resume-<n>`` for Hydra's files, so the original ``.hydra/`` is kept as it was."""
    subdir = None
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not resume:
            raise ConfigError(
                f"hydra.run.dir={run_dir} already holds a run ({_listing(run_dir)}): a second "
                "run would write over its files. Choose another directory (or leave "
                "hydra.run.dir unset for a new one), or resume that run with "
                f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"
            )
        n = 1
        while (run_dir / f".hydra.resume-{n}").exists():
            n += 1
        subdir = f".hydra.resume-{n}"
    _require_writable(run_dir, "hydra.run.dir")
    return subdir


def _listing(run_dir: Path, n: int = 4) -> str:
    names = sorted(p.name for p in run_dir.iterdir())
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _require_writable(directory: Path, key: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ConfigError(
            f"{key}={directory} cannot be written ({err.strerror or err}): point {key} or "
            "paths.log_dir at a writable directory"
        ) from None
