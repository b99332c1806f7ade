"""hydra-optuna-sweeper's sweep, with what a long study needs.

It subclasses ``OptunaSweeperImpl`` (search-space parsing, launching and the optimisation
results are the plugin's) and changes the sweep loop:

- **Pruning.** The study gets ``pruner``; each job learns its trial from the overrides
  ``++optuna_trial.{study,storage,number}`` and reports its validation scores
  (``adan.callbacks.pruning``). A job that stopped as pruned is told PRUNED (at its last
  reported value, Optuna's rule) and does not count against ``max_failure_rate``.
- **Resume without duplicates.** The plugin seeds its sampler once per process, so running
  the same command again (or a second worker on the same storage) proposes the same points.
  Here each trial's parameters are drawn by a sampler seeded from ``(seed, trial.number)``
  (:func:`trial_seed`): reproducible from the seed, new for every trial of the study whichever
  process asks, and unrelated across study seeds.
- **Provenance.** Each trial stores ``run_dir``, ``overrides`` and ``seed`` (and
  ``pruned_at``) as user attributes; each run directory holds ``sweep_trial.json``.
- **Seeds.** With ``seeds``, each trial is a multi-seed experiment (``seeds=[...]``) scored by
  the mean over seeds or its lower confidence bound (``objective=lcb``).
- **Scores, not failures.** A NaN objective (a policy that never trades) is a COMPLETE trial
  worth ``nan_score``.
- **Report.** ``sweep_report.md`` with the selection statistics (``adan.evaluation.sweep_report``).
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class AdanOptunaSweeper(Sweeper):
    """The Hydra entry point (``hydra/sweeper=adan_optuna``); the work is in
    ``_impl.AdanOptunaSweeperImpl``, imported when a sweep is made: Hydra imports this module
    in every run to find its plugins, and Optuna costs about a second to import."""

    def __init__(self, **settings: Any) -> None:
        # hydra-optuna-sweeper's settings (sampler, direction, storage, study_name, n_trials,
        # n_jobs, max_failure_rate, search_space, custom_search_space, params) and ours
        from hydra_plugins.adan_optuna_sweeper._impl import AdanOptunaSweeperImpl

        self.sweeper = AdanOptunaSweeperImpl(**settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` of a study seeded ``seed``: numpy's SeedSequence
    of the pair. (``seed + number`` would give study seed s's trial k the draw of study seed
    s + 1's trial k - 1: neighbouring study seeds would share almost every proposal.)"""
    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(number)]).generate_state(1)[0])
