"""Report each validation score to the run's Optuna trial, and stop the run when the study's
pruner says the trial is weak.

A sweep job (``python train.py -m hparams_search=...``) knows its trial from the overrides the
sweeper gives it (``optuna_trial.{study,storage,number}``, see
``hydra_plugins.adan_optuna_sweeper``). At every validation the optimised metric is reported at
step = the PPO iteration; a NaN (a flat policy's Sharpe ratio) is reported as ``nan_score``, so
the pruner compares numbers. When the pruner answers yes, training stops at the end of the
iteration (``last.ckpt`` is written as for any stop) and :attr:`pruned_at` holds the iteration;
the train task then writes a ``pruned`` summary and the sweeper marks the trial PRUNED.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import pytorch_lightning as pl

log = logging.getLogger(__name__)


class OptunaPruning(pl.Callback):
    """Intermediate values for one Optuna trial, and pruning by the study's pruner."""

    def __init__(
        self,
        storage: str,
        study_name: str,
        trial_number: int,
        pruner: Any,
        metric: str,
        nan_score: float = 0.0,
    ) -> None:
        self.storage = storage
        self.study_name = study_name
        self.trial_number = int(trial_number)
        self.pruner = pruner
        self.metric = metric
        self.nan_score = float(nan_score)
        self.pruned_at: int | None = None
        self.last_value: float | None = None
        self._trial: Any = None

    def _open_trial(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(
            study_name=self.study_name, storage=self.storage, pruner=self.pruner
        )
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(
            study._study_id, self.trial_number
        )
        return optuna.trial.Trial(study, trial_id)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # every process validates; rank 0 reports and asks, and its answer is every rank's
        if trainer.sanity_checking or self.pruned_at is not None:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            return
        step = int(trainer.current_epoch)
        prune = trainer.is_global_zero and self._report(float(value), step)
        if trainer.world_size > 1:
            prune = bool(trainer.strategy.broadcast(prune, src=0))
        if not prune:
            return
        self.pruned_at = step
        trainer.should_stop = True
        if trainer.is_global_zero:
            log.warning(
                "trial %d of study %s pruned at iteration %d (%s = %.4g): stopping; "
                "last.ckpt is kept",
                self.trial_number,
                self.study_name,
                step,
                self.metric,
                self.last_value,
            )

    def _report(self, value: float, step: int) -> bool:
        """Report ``value`` at ``step`` (NaN as ``nan_score``); whether the pruner prunes."""
        if not math.isfinite(value):
            value = self.nan_score
        if self._trial is None:
            self._trial = self._open_trial()
        with warnings.catch_warnings():  # a step reported before a resume is kept, not an error
            warnings.simplefilter("ignore", UserWarning)
            self._trial.report(value, step)
        self.last_value = value
        return bool(self._trial.should_prune())
