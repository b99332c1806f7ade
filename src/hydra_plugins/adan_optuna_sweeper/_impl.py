"""The sweep itself (`AdanOptunaSweeperImpl`), described in
``hydra_plugins.adan_optuna_sweeper.sweeper``. Hydra's plugin scan skips modules whose name
starts with ``_``, so Optuna loads only when a sweep starts, not in every ``train.py`` run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from omegaconf import OmegaConf
from optuna.trial import TrialState

from adan.config.secrets import mask_password
from adan.tasks.sweep import OBJECTIVES, read_summary, trial_outcome
from hydra_plugins.adan_optuna_sweeper.sweeper import trial_seed

log = logging.getLogger(__name__)


class AdanOptunaSweeperImpl(OptunaSweeperImpl):
    def __init__(
        self,
        *,
        pruner: Any = None,
        seeds: list[int] | None = None,
        objective: str = "mean",
        nan_score: float = 0.0,
        report: bool = True,
        **plugin: Any,
    ) -> None:
        super().__init__(**plugin)
        if objective not in OBJECTIVES:
            raise ValueError(
                f"hparams_search.objective must be one of {OBJECTIVES}, got {objective!r}"
            )
        if seeds is not None and (not list(seeds) or not all(isinstance(s, int) for s in seeds)):
            raise ValueError(
                f"hparams_search.seeds must be a non-empty list of integers or null, got {seeds}"
            )
        self.pruner = pruner
        self.seeds = list(seeds) if seeds else None
        self.objective = objective
        self.nan_score = float(nan_score)
        self.report = report

    # -- proposals ---------------------------------------------------------------------------

    def _sampler_for(self, number: int) -> Any:
        """A sampler whose randomness is trial ``number``'s own (:func:`trial_seed`)."""
        node = OmegaConf.select(self.config, "hydra.sweeper.sampler")
        seed = node.get("seed") if node is not None else None
        if node is None or "seed" not in node or seed is None:
            return self.sampler  # unseeded: fresh randomness anyway
        return instantiate(node, seed=trial_seed(int(seed), int(number)))

    def _trial_overrides(self, trial: Any, params: tuple[str, ...]) -> tuple[str, ...]:
        storage = str(self.storage).replace("'", "\\'")
        extra = [
            f"++optuna_trial.study={self.study_name}",
            f"++optuna_trial.storage='{storage}'",
            f"++optuna_trial.number={trial.number}",
        ]
        if self.seeds:
            extra.append(f"seeds=[{','.join(str(s) for s in self.seeds)}]")
        return (*params, *extra)

    # -- the loop ----------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None
        if self.study_name is None:
            raise ValueError("hparams_search.study_name must be set: trials are found by it")
        self._process_searchspace_config()
        params_conf = self._parse_sweeper_params_config()
        params_conf.extend(arguments)
        space, fixed = create_params_from_overrides(params_conf)
        if self.search_space_distributions:
            space = {**self.search_space_distributions, **space}
        for name in fixed:
            space.pop(name, None)
        if callable(self.sampler) and not isinstance(self.sampler, optuna.samplers.BaseSampler):
            raise ValueError(
                "GridSampler is not supported by the adan_optuna sweeper; use hydra's basic "
                "sweeper for grids (python train.py -m key=a,b,c)"
            )
        directions = self._get_directions()
        if len(directions) != 1:
            raise ValueError("the adan_optuna sweeper optimises one objective (one direction)")
        study = _open_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=self.sampler,
            pruner=self.pruner,
            direction=directions[0],
        )
        earlier = len(study.trials)
        log.info(
            "Study %s in %s: %d trials so far, %d to run, %d at a time; pruner %s",
            study.study_name,
            mask_password(self.storage),
            earlier,
            self.n_trials,
            self.n_jobs,
            type(self.pruner).__name__ if self.pruner is not None else "none",
        )
        to_go = self.n_trials
        while to_go > 0:
            batch = min(to_go, self.n_jobs)
            trials = [study.ask() for _ in range(batch)]
            overrides = []
            for trial in trials:
                study.sampler = self._sampler_for(trial.number)
                (params,) = self._configure_trials([trial], space, fixed)
                overrides.append(self._trial_overrides(trial, params))
                # what the study keeps: the job's overrides, with no database password
                for name, value in fixed.items():
                    if "://" in str(value):
                        trial.set_user_attr(name, mask_password(str(value)))
                trial.set_user_attr("overrides", [_masked_override(p) for p in params])
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
            failures = [self._tell(study, t, r) for t, r in zip(trials, returns, strict=True)]
            failures = [f for f in failures if f is not None]
            if len(failures) / len(returns) > self.max_failure_rate:
                log.error(
                    "%d of %d trials failed (max_failure_rate=%s): %s",
                    len(failures),
                    len(returns),
                    self.max_failure_rate,
                    "; ".join(failures),
                )
                for ret in returns:
                    ret.return_value  # noqa: B018 (re-raises the job's own exception)
                raise RuntimeError(f"{len(failures)} trials failed: {'; '.join(failures)}")
            to_go -= batch
        self._finish(study)

    def _tell(self, study: optuna.Study, trial: Any, ret: JobReturn) -> str | None:
        """Tell the study how the job ended; the failure's reason, or None."""
        run_dir = _run_dir(ret)
        if run_dir is not None:
            trial.set_user_attr("run_dir", str(run_dir))
        if ret.cfg is not None and OmegaConf.select(ret.cfg, "seed") is not None:
            trial.set_user_attr("seed", int(OmegaConf.select(ret.cfg, "seed")))
        if ret.status != JobStatus.COMPLETED or run_dir is None:
            study.tell(trial, state=TrialState.FAIL)
            reason = f"trial {trial.number}: {ret._return_value!r}"
            log.warning("Failed trial: %s", reason)
            return reason
        outcome = trial_outcome(read_summary(run_dir), self.objective, self.nan_score)
        for key, value in outcome.attrs.items():
            trial.set_user_attr(key, value)
        if outcome.reason:
            log.warning("trial %d: %s", trial.number, outcome.reason)
        if outcome.state == "PRUNED":
            study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d pruned at iteration %s", trial.number, outcome.attrs["pruned_at"])
            return None
        if outcome.state == "FAIL":
            study.tell(trial, state=TrialState.FAIL)
            return f"trial {trial.number}: {outcome.reason} ({run_dir})"
        study.tell(trial, outcome.value)
        log.info("trial %d: %.4g (%s)", trial.number, outcome.value, run_dir)
        return None

    def _finish(self, study: optuna.Study) -> None:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        done = [t for t in study.trials if t.state == TrialState.COMPLETE]
        states = {s.name: sum(t.state == s for t in study.trials) for s in TrialState}
        results: dict[str, Any] = {
            "name": "optuna",
            "study": study.study_name,
            "trials": {k: v for k, v in states.items() if v},
        }
        if done:
            best = study.best_trial
            results.update(
                best_trial=best.number,
                best_params=best.params,
                best_value=best.value,
                best_run_dir=best.user_attrs.get("run_dir"),
            )
            log.info("Best trial %d: %.4g %s", best.number, best.value, best.params)
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        if self.report and done:
            try:
                from adan.evaluation.sweep_report import write_sweep_report

                path = write_sweep_report(study, sweep_dir)
            except Exception as err:  # the trials are stored; a report must not lose them
                log.error("sweep_report.md could not be written: %s", err, exc_info=True)
            else:
                log.info("Sweep report: %s", path)


def _open_study(**kwargs: Any) -> optuna.Study:
    """Create the study, or load it if it exists. Several workers starting on one empty
    database race to create Optuna's tables and the study: the loser tries again, and then
    finds them made."""
    # the loser sees a unique-key violation, "relation already exists" or a lock timeout:
    # IntegrityError, ProgrammingError, OperationalError, all DBAPIErrors
    from sqlalchemy.exc import DBAPIError
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random

    @retry(
        retry=retry_if_exception_type(DBAPIError),
        stop=stop_after_attempt(5),
        wait=wait_random(0.2, 1.5),
        reraise=True,
    )
    def open_once() -> optuna.Study:
        return optuna.create_study(load_if_exists=True, **kwargs)

    return open_once()


def _masked_override(override: str) -> str:
    key, _, value = override.partition("=")
    return f"{key}={mask_password(value)}" if "://" in value else override


def _run_dir(ret: JobReturn) -> Path | None:
    try:
        return Path(str(ret.hydra_cfg.hydra.runtime.output_dir)).resolve()
    except Exception:  # noqa: BLE001 (a job that failed before Hydra set it up)
        return None
