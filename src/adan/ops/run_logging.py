"""What a training run tells its loggers besides the metrics: its config at the start, and at
the end what each tracker shows best (W&B: best values, checkpoints as artifacts, the run's
identity for eval; TensorBoard: the HParams row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def log_run_config(loggers: list, cfg: DictConfig) -> None:
    """The resolved config to every logger; a W&B run's identity into the run directory
    (``wandb_run.json``, read by ``eval.py``)."""
    from adan.ops.wandb_logger import RunLogger, write_identity

    config = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(config)
        if isinstance(lg, RunLogger):
            write_identity(lg, Path(cfg.paths.output_dir))


def finish_run_logging(
    loggers: list, summary: dict[str, Any], trainer: Any, cfg: DictConfig
) -> None:
    """After the closing ``summary/*`` metrics: W&B's ``best/val/*`` summary and ``model``
    artifact, TensorBoard's HParams row."""
    from pytorch_lightning.loggers import TensorBoardLogger

    from adan.ops.tensorboard_hparams import log_hparams
    from adan.ops.wandb_logger import RunLogger, finish_training

    for lg in loggers:
        if isinstance(lg, RunLogger):
            finish_training(lg, summary, trainer, Path(cfg.paths.output_dir))
        elif isinstance(lg, TensorBoardLogger):
            log_hparams(lg, cfg, summary, trainer)
