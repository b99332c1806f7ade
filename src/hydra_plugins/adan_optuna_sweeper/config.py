"""``hydra/sweeper=adan_optuna``: hydra-optuna-sweeper's settings plus ours (see
``conf/hparams_search/ppo_optuna.yaml``, where they follow ``hparams_search.*``)."""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class AdanOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.adan_optuna_sweeper.sweeper.AdanOptunaSweeper"
    # an instantiable Optuna pruner (e.g. optuna.pruners.MedianPruner); null: no pruning
    pruner: Any | None = None
    # score each trial over these agent seeds (one run per seed); null: the run's own seed
    seeds: list[int] | None = None
    # over seeds: "mean", or "lcb" (the one-sided 95% lower confidence bound of the mean)
    objective: str = "mean"
    # the value of a trial whose objective is NaN (a policy that never trades)
    nan_score: float = 0.0
    # write sweep_report.md (+ PNGs, sweep_report.json) into the sweep directory at the end
    report: bool = True


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="adan_optuna",
    node=AdanOptunaSweeperConf,
    provider="adan",
)
