"""Collect garbage (and empty the CUDA cache) when memory use passes a threshold."""

from __future__ import annotations

import gc
import logging

import psutil
import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)


class MemoryMonitor(pl.Callback):
    """After every ``every_n_epochs`` iterations, log system and process memory; above
    ``threshold_percent`` of system memory, run ``gc.collect()`` and ``torch.cuda.empty_cache()``
    and log what it freed. Collections are counted in ``memory/gc_collections``."""

    def __init__(self, threshold_percent: float = 90.0, every_n_epochs: int = 1) -> None:
        if not 0 < threshold_percent <= 100:
            raise ValueError(
                f"callbacks.memory.threshold_percent must be in (0, 100], got {threshold_percent}"
            )
        self.threshold_percent = threshold_percent
        self.every_n_epochs = max(1, every_n_epochs)
        self.collections = 0
        self._process = psutil.Process()

    def check(self) -> dict[str, float]:
        """Measure, collect if above the threshold, and return the figures."""
        used = psutil.virtual_memory().percent
        rss = self._process.memory_info().rss / 2**20
        freed = 0.0
        if used >= self.threshold_percent:
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.collections += 1
            after = self._process.memory_info().rss / 2**20
            freed = rss - after
            log.warning(
                "memory at %.1f%% >= %.1f%%: collected garbage, freed %.1f MiB",
                used,
                self.threshold_percent,
                freed,
            )
            rss = after
        stats = {
            "memory/system_percent": used,
            "memory/process_rss_mib": rss,
            "memory/gc_collections": float(self.collections),
            "memory/freed_mib": freed,
        }
        if torch.cuda.is_available():
            stats["memory/cuda_allocated_mib"] = torch.cuda.memory_allocated() / 2**20
        return stats

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch % self.every_n_epochs == 0:
            stats = self.check()
            if hasattr(pl_module, "log_metrics"):
                pl_module.log_metrics(stats)
            else:
                pl_module.log_dict(stats, on_step=False, on_epoch=True, batch_size=1)
