"""A Lightning WandbLogger that never blocks a run on the network.

Without ``WANDB_API_KEY`` it runs offline (``wandb sync <dir>`` uploads later). In a Hydra
multirun each job becomes its own W&B run, grouped by the sweep directory's name.
"""

from __future__ import annotations

import os
from pathlib import Path

from pytorch_lightning.loggers import WandbLogger


def _hydra_job() -> tuple[str | None, str | None]:
    """(group, name) for the current Hydra job: the sweep and job number in a multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None, None
    if hc.mode == RunMode.MULTIRUN:
        group = Path(hc.sweep.dir).name
        return group, f"{group}-job{hc.job.num}"
    return None, Path(hc.runtime.output_dir).name


def wandb_logger(
    project: str = "adan",
    save_dir: str = ".",
    tags: list[str] | None = None,
    mode: str | None = None,
    group: str | None = None,
    name: str | None = None,
) -> WandbLogger:
    """Build the logger; ``mode=None`` means online only when an API key is configured."""
    if mode is None:
        mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(
            f"logger.wandb.mode must be online, offline, disabled or null, got {mode!r}"
        )
    job_group, job_name = _hydra_job()
    import wandb

    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project,
        save_dir=save_dir,
        tags=list(tags or []),
        group=group or job_group,
        name=name or job_name,
        mode=mode,
        settings=wandb.Settings(init_timeout=60, silent=True),
    )
