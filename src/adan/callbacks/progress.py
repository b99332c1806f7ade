"""One Rich progress bar over the whole run: PPO iterations, env steps, steps/s, return.

Lightning's RichProgressBar draws one bar per epoch; with one PPO iteration per epoch that is a
bar of 1/1 redrawn 100 times. This is a Lightning ``ProgressBar`` (so it replaces Lightning's
default) built on ``rich.progress`` with a single bar from the first iteration to the last.
"""

from __future__ import annotations

import sys
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks.progress import ProgressBar
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainingProgressBar(ProgressBar):
    """``Training ━━━━ 37/145 0:00:31 • 0:01:35  steps 303,104  sps 10,250  ep_ret 4.19 …``.

    Shows every metric the module logs with ``prog_bar=True`` (PPO: env steps, steps/s,
    mean episode return) and the last validation metrics it logged (``val/…``)."""

    def __init__(self, show_val: tuple[str, ...] = ("val/sharpe", "val/mean_return")) -> None:
        super().__init__()
        self._enabled = True
        self.show_val = show_val
        self._progress: Progress | None = None
        self._task: Any = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.trainer.is_global_zero

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.is_enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]Training"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("•"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            refresh_per_second=4,
            # piped to a file or CI log, rich would squeeze the line into 80 columns
            console=None if sys.stdout.isatty() else Console(width=150),
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=trainer.max_epochs, completed=trainer.current_epoch, metrics=""
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._progress is None:
            return
        self._progress.update(
            self._task,
            completed=trainer.current_epoch + 1,
            metrics=self._format(trainer, pl_module),
        )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._progress is not None and not trainer.sanity_checking:
            self._progress.update(self._task, metrics=self._format(trainer, pl_module))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _format(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
        items = self.get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        parts = []
        for key, value in items.items():
            value = float(value)
            text = f"{int(value):,}" if key in ("steps", "sps") else f"{value:.2f}"
            parts.append(f"{key} {text}")
        metrics = trainer.callback_metrics
        parts += [f"{k} {float(metrics[k]):.2f}" for k in self.show_val if k in metrics]
        return "  ".join(parts)
