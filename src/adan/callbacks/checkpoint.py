"""Lightning's ModelCheckpoint with the two guarantees a long run needs.

1. ``last.ckpt`` moves after every ``every_n_epochs`` PPO iterations whatever the monitor.
   Lightning's own ``save_last`` refreshes it only when a monitored checkpoint is written, so
   with ``monitor=val/sharpe`` a ``kill -9`` could lose every iteration since the last
   improvement. It is also written when training ends for any reason (the end of the budget,
   ``trainer.max_epochs``, the Timer, SIGINT) and on SIGTERM.
2. The best-k record survives a resume into a new run directory: Lightning drops it when the
   directory changes, so the resumed run's ``best-*.ckpt`` would be the best since the resume.
   Here the saved best files are copied into the new directory and their scores restored.

Every write goes through the trainer's checkpoint I/O, which is atomic
(``adan.evaluation.checkpoint.SafeCheckpointIO``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from weakref import proxy

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from adan.files import atomic_copy

log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) whose ``save_last`` means: after every
    ``every_n_epochs`` iterations and whenever training stops."""

    def __init__(self, *args: Any, save_last: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, save_last=False, **kwargs)  # last.ckpt is written here instead
        self.keep_last = bool(save_last)
        self._last_written: tuple[int, int] | None = None

    @property
    def last_path(self) -> Path:
        return Path(self.dirpath or ".") / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"

    def write_last(self, trainer: pl.Trainer) -> None:
        """Write ``last.ckpt`` now (once per state: epoch and optimiser step)."""
        state = (trainer.current_epoch, trainer.global_step)
        if not self.keep_last or trainer.fast_dev_run or self._last_written == state:
            return
        self.last_model_path = str(self.last_path)
        trainer.save_checkpoint(self.last_model_path, weights_only=False)  # the whole state
        self._last_written = state
        if trainer.is_global_zero:
            for logger in trainer.loggers:  # as Lightning does (W&B's log_model, say)
                logger.after_save_checkpoint(proxy(self))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        n = self._every_n_epochs
        if n >= 1 and (trainer.current_epoch + 1) % n == 0 and not trainer.sanity_checking:
            self.write_last(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self.write_last(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        super().on_exception(trainer, pl_module, exception)
        if isinstance(exception, SIGTERMException):
            # Lightning raises it between iterations: the state is consistent.
            self.write_last(trainer)
            log.info("SIGTERM: saved %s", self.last_path)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath:
            if Path(old).resolve() == Path(self.dirpath).resolve():
                state_dict = dict(state_dict, dirpath=self.dirpath)  # one directory, two spellings
            else:
                state_dict = self._carry_best_over(state_dict, Path(old), Path(self.dirpath))
        super().load_state_dict(state_dict)

    def _carry_best_over(self, state: dict[str, Any], old: Path, new: Path) -> dict[str, Any]:
        """``state`` with its best-k files copied from ``old`` into ``new`` (paths rewritten;
        rank 0 copies). Only ``.ckpt`` files directly in ``old`` are taken (the paths come from
        the file being resumed); one that no longer exists is dropped with a warning."""
        moved: dict[str, str] = {}
        best_k = {}
        for path, score in (state.get("best_k_models") or {}).items():
            source = Path(path)
            if source.suffix != ".ckpt" or source.resolve().parent != old.resolve():
                log.warning("ignoring best checkpoint %s: not a .ckpt file in %s", path, old)
                continue
            if not source.is_file():
                log.warning("best checkpoint %s of the resumed run is gone; not carried over", path)
                continue
            target = new / source.name
            if rank_zero_only.rank == 0:
                atomic_copy(source, target)
                log.info("carried the resumed run's %s (score %s) into %s", source.name, score, new)
            moved[path] = str(target)
            best_k[str(target)] = score

        state = dict(state, dirpath=str(new), best_k_models=best_k)
        state["kth_best_model_path"] = moved.get(state.get("kth_best_model_path") or "", "")
        state["last_model_path"] = str(self.last_path)
        if best_k:
            pick = max if self.mode == "max" else min
            best = pick(best_k, key=best_k.get)
            state["best_model_path"], state["best_model_score"] = best, best_k[best]
        else:
            state["best_model_path"], state["best_model_score"] = "", None
        return state
