"""What the train task checks before any work, beyond the typed schemas (``adan.tasks.registry``):
run settings that would otherwise fail after the work (the metric to optimise, the epoch
limit), a checkpoint to resume (read safely, and refused if the config changes the
experiment), and a run directory that holds another run's checkpoints."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from adan.checkpoint_format import CONFIG_KEY
from adan.config.deprecations import migrated
from adan.config.resume import DERIVED, check_resume
from adan.errors import ConfigError
from adan.evaluation.checkpoint import read_checkpoint, resolve_checkpoint
from adan.evaluation.gym_eval import GymEvaluator
from adan.tasks.kinds import is_gym_task


def refuse_used_checkpoint_dir(out_dir: Path, ckpt_path: str | None) -> None:
    """A run never writes over another run's checkpoints (a multirun job directory reused, or a
    caller that bypasses the Hydra entry point); resuming a checkpoint of this directory is
    allowed."""
    ckpts = out_dir / "checkpoints"
    if int(os.environ.get("LOCAL_RANK", "0")) > 0 or not ckpts.is_dir():
        return
    if not any(ckpts.glob("*.ckpt")):
        return
    if ckpt_path and out_dir.resolve() in Path(ckpt_path).resolve().parents:
        return
    raise ConfigError(
        f"{ckpts} already holds checkpoints of another run: choose a new output directory, or "
        f"resume that run with ckpt_path={ckpts / 'last.ckpt'}"
    )


def check_run_settings(cfg: DictConfig) -> None:
    """Run settings outside the typed groups that would otherwise fail after the work."""
    max_epochs = OmegaConf.select(cfg, "trainer.max_epochs")
    if max_epochs is not None and (not isinstance(max_epochs, int) or max_epochs < 1):
        raise ConfigError(
            f"trainer.max_epochs must be >= 1 or null (null: agent.total_timesteps decides), "
            f"got {max_epochs!r}"
        )
    known = validation_metrics(cfg)
    for key in ("optimized_metric", "callbacks.model_checkpoint.monitor"):
        metric = OmegaConf.select(cfg, key)
        if metric is not None and metric not in known:
            close = difflib.get_close_matches(str(metric), known, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(
                f"{key}={metric!r} is not a metric this task logs{hint} It logs: "
                f"{', '.join(known)} (or null for none)"
            )


def validation_metrics(cfg: DictConfig) -> list[str]:
    """The ``val/...`` metrics the configured task logs at each validation."""
    if is_gym_task(cfg):
        return [f"val/{k}" for k in GymEvaluator.METRICS]
    from adan.evaluation.metrics import METRICS

    names = [f"val/{k}" for k in METRICS]
    profiles = OmegaConf.select(cfg, "trading.profiles") or {}
    if len(profiles) > 1:
        names += [f"val/{p}/{k}" for p in profiles for k in METRICS]
    return names


def check_resumable(cfg: DictConfig) -> Path:
    """The checkpoint file ``cfg.ckpt_path`` names (a file or a run directory), read safely and
    refused if the composed config changes the experiment it was trained with."""
    path = resolve_checkpoint(cfg.ckpt_path)
    saved = migrated(read_checkpoint(path)[CONFIG_KEY])
    check_resume(saved, OmegaConf.to_container(cfg, resolve=True), str(path))
    for key in DERIVED:  # null (from the data) resumes with the checkpoint's value
        if OmegaConf.select(cfg, key) is None and OmegaConf.select(OmegaConf.create(saved), key):
            OmegaConf.update(cfg, key, OmegaConf.select(OmegaConf.create(saved), key))
    return path
