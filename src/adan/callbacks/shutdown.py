"""Save a resumable checkpoint when training stops early: SIGTERM, SIGINT or a time limit.

Lightning's Timer and its SIGTERM handling stop the loop between iterations; this callback makes
sure that a ``last.ckpt`` holding the state at that point is written before the process exits.
SIGINT (Ctrl-C) is turned into the same graceful stop rather than an exception mid-rollout.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class GracefulShutdown(pl.Callback):
    def __init__(self, dirpath: str, filename: str = "last.ckpt") -> None:
        self.path = Path(dirpath) / filename
        self.signal_received: int | None = None
        self._previous = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame) -> None:  # noqa: ANN001
        if self.signal_received is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal_received = signum
        log.warning("SIGINT received: finishing this iteration, then saving %s", self.path)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.signal_received is not None:
            trainer.should_stop = True

    def save(self, trainer: pl.Trainer, reason: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(self.path)  # written by global rank 0 only
        if trainer.is_global_zero:
            log.info("saved %s (%s)", self.path, reason)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        reason = "signal" if self.signal_received else "end of training"
        self.save(trainer, reason)
        self._restore()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException):
            # Raised by Lightning right after an iteration completed: the state is consistent.
            self.save(trainer, "SIGTERM")
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
