"""The train task: every check that can run before work, then one fit or a walk-forward.

``train.py`` is a thin Hydra entry point around :func:`train`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from adan.config.deprecations import migrate
from adan.tasks.fit import fit
from adan.tasks.preflight import check_resumable, check_run_settings
from adan.tasks.registry import validate_config
from adan.tasks.sweep import requeued_trial, write_trial_file


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train one agent (with ``walk_forward``, one per fold; with ``seeds``, one run per seed:
    ``adan.tasks.seeds``); returns the final summary
    (and writes it to ``summary.json``). Every check that can run before work does: the
    config's schemas (after moving deprecated keys to their new homes), the run settings, and a resumed checkpoint against the config."""
    migrate(cfg)
    validate_config(cfg)
    check_run_settings(cfg)
    write_trial_file(cfg, Path(cfg.paths.output_dir))  # a sweep trial: which study and trial
    requeued_trial(cfg)  # a sweep trial started again (SLURM requeue) resumes its last.ckpt
    # seeds and walk_forward are imported where used: they load the evaluation report and
    # backtests (matplotlib among them), which a single fit does not need
    if cfg.get("seeds"):  # one run per seed, each checked and resumed on its own
        from adan.tasks.seeds import train_seeds

        return train_seeds(cfg)
    if cfg.get("ckpt_path"):
        cfg.ckpt_path = str(check_resumable(cfg))
    if cfg.get("walk_forward"):
        from adan.tasks.walk_forward import walk_forward

        return walk_forward(cfg)
    return fit(cfg)[0]
