"""Stop cleanly on SIGINT and SIGTERM, and remember which signal stopped the run.

SIGINT (Ctrl-C) is turned into a stop at the end of the current iteration rather than an
exception mid-rollout (a second Ctrl-C stops at once). SIGTERM is Lightning's: its signal
connector raises ``SIGTERMException`` between iterations. Either way
``adan.callbacks.RunCheckpoint`` writes ``last.ckpt`` at that point, and the train task reads
:attr:`GracefulShutdown.signal_received` to mark ``summary.json`` interrupted and exit with
128 + the signal number (130, 143), as schedulers (SLURM requeue, systemd) expect.
"""

from __future__ import annotations

import logging
import signal

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class GracefulShutdown(pl.Callback):
    def __init__(self) -> None:
        self.signal_received: int | None = None
        self._previous = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame) -> None:  # noqa: ANN001
        if self.signal_received is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal_received = signum
        log.warning("SIGINT received: finishing this iteration, then saving last.ckpt")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.signal_received is not None:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException):
            self.signal_received = signal.SIGTERM
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
