"""A run as one trial of an Optuna sweep: what the job reports, and how the sweeper scores it.

The sweeper (``hydra_plugins.adan_optuna_sweeper``) gives each job ``optuna_trial.study``,
``optuna_trial.storage`` and ``optuna_trial.number``. The job then

- writes ``sweep_trial.json`` into its run directory (the study, the trial number, the sweep
  directory), the reverse of the trial's ``run_dir`` user attribute;
- reports its validation scores to the trial and stops when the pruner says so
  (``adan.callbacks.pruning``), leaving a ``pruned`` summary.

After the job, :func:`trial_outcome` turns its ``summary.json`` into the trial's state and value:
a pruned run is PRUNED (at its last reported value), a completed one COMPLETE with the objective
(over several seeds, their mean or a lower confidence bound), and a NaN objective (a policy that
never trades has no Sharpe ratio) a scored, bad trial worth ``nan_score``, not a failure.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from adan.callbacks.pruning import OptunaPruning
from adan.errors import ConfigError
from adan.files import atomic_write_text

log = logging.getLogger(__name__)

TRIAL_FILE = "sweep_trial.json"
OBJECTIVES = ("mean", "lcb")


def trial_settings(cfg: DictConfig) -> DictConfig | None:
    """The job's ``optuna_trial`` node (study, storage, number), or None outside a sweep."""
    node = cfg.get("optuna_trial")
    if not node:
        return None
    for key in ("study", "storage", "number"):
        if node.get(key) is None:
            raise ConfigError(
                f"optuna_trial.{key} is missing: the sweeper sets optuna_trial.study, .storage "
                "and .number together; remove optuna_trial to run outside a sweep"
            )
    return node


def write_trial_file(cfg: DictConfig, out_dir: Path) -> None:
    """``sweep_trial.json``: which study and trial this run directory belongs to."""
    trial = trial_settings(cfg)
    if trial is None:
        return
    from adan.config.secrets import mask_password  # (imports optuna: sweep jobs only)

    sweep_dir = None
    try:
        from hydra.core.hydra_config import HydraConfig

        sweep_dir = str(Path(HydraConfig.get().sweep.dir).resolve())
    except (ImportError, ValueError):
        pass
    body = {
        "study": str(trial.study),
        "trial_number": int(trial.number),
        "storage": mask_password(str(trial.storage)),
        "sweep_dir": sweep_dir,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / TRIAL_FILE, json.dumps(body, indent=2))


def requeued_trial(cfg: DictConfig) -> None:
    """A sweep trial launched again into its own directory (a SLURM job requeued after its
    time limit: the SIGTERM left ``last.ckpt``) resumes from that checkpoint, not from zero.
    Multi-seed trials resume their seeds the same way (``ckpt_path=<experiment dir>``)."""
    if trial_settings(cfg) is None or cfg.get("ckpt_path"):
        return
    out_dir = Path(str(cfg.paths.output_dir))
    target = out_dir if cfg.get("seeds") else out_dir / "checkpoints" / "last.ckpt"
    resumable = (out_dir / "seeds.json").is_file() if cfg.get("seeds") else target.is_file()
    if resumable:
        log.warning("sweep trial %s restarted: resuming from %s", cfg.optuna_trial.number, target)
        cfg.ckpt_path = str(target)


def search_settings(cfg: DictConfig) -> DictConfig:
    """The ``hparams_search`` node (pruner, objective, nan_score), {} when not composed."""
    return cfg.get("hparams_search") or OmegaConf.create({})


def pruning_callback(cfg: DictConfig) -> OptunaPruning | None:
    """The callback that reports this trial's validation scores and prunes it, or None (not a
    sweep job, no pruner, or no metric to report)."""
    trial = trial_settings(cfg)
    settings = search_settings(cfg)
    metric = cfg.get("optimized_metric")
    if trial is None or not settings.get("pruner") or not metric:
        return None
    return OptunaPruning(
        storage=str(trial.storage),
        study_name=str(trial.study),
        trial_number=int(trial.number),
        pruner=instantiate(settings.pruner),
        metric=str(metric),
        nan_score=float(settings.get("nan_score", 0.0)),
    )


def pruned_summary(
    module: Any, trainer: Any, pruning: OptunaPruning, checkpoint: Path | None
) -> dict[str, Any]:
    """What a pruned run reports (no closing backtests: the trial is already judged weak);
    ``checkpoint`` is its ``last.ckpt``, kept for a resume."""
    val = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    return {
        "status": "pruned",
        "pruned_at": pruning.pruned_at,
        "env_steps": module.env_steps,
        "iterations": pruning.pruned_at + 1,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "last_validation": val,
        "objective": {pruning.metric: pruning.last_value},
    }


def lower_confidence_bound(mean: float, sd: float, n: int, level: float = 0.95) -> float:
    """One-sided ``level`` lower bound of the mean over ``n`` seeds (Student t): what a trial
    can be trusted to reach on another seed's luck, not its best seed's."""
    from scipy import stats

    if n < 2 or not math.isfinite(sd):
        return mean
    return float(mean - stats.t.ppf(level, n - 1) * sd / math.sqrt(n))


@dataclass
class TrialOutcome:
    """How a finished job is told to the study."""

    state: str  # COMPLETE | PRUNED | FAIL
    value: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def trial_outcome(
    summary: dict[str, Any], objective: str = "mean", nan_score: float = 0.0
) -> TrialOutcome:
    """The trial's state and value from its job's ``summary.json`` (see the module docstring)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"hparams_search.objective must be one of {OBJECTIVES}, got {objective}")
    status = summary.get("status")
    if status == "pruned":
        return TrialOutcome("PRUNED", attrs={"pruned_at": summary.get("pruned_at")})
    if status not in ("completed", "time_limit"):
        return TrialOutcome("FAIL", reason=f"the run ended {status!r}")
    if not summary.get("objective"):
        return TrialOutcome("FAIL", reason="summary.json has no objective")
    metric, mean = next(iter(summary["objective"].items()))
    attrs: dict[str, Any] = {"objective_metric": metric}
    value = float(mean) if mean is not None else math.nan
    seeds = summary.get("seeds")
    if seeds:
        sd = float((summary.get("objective_sd") or {}).get(metric, math.nan))
        attrs.update(objective_mean=value, objective_sd=sd, seeds=list(seeds))
        if objective == "lcb" and math.isfinite(value):
            value = lower_confidence_bound(value, sd, len(seeds))
    if not math.isfinite(value):
        attrs["objective_was_nan"] = True
        return TrialOutcome(
            "COMPLETE", float(nan_score), attrs, f"{metric} is NaN (no trades): scored {nan_score}"
        )
    return TrialOutcome("COMPLETE", value, attrs)


def read_summary(run_dir: Path) -> dict[str, Any]:
    """A job's ``summary.json``, {} when it wrote none (it crashed before the end)."""
    file = Path(run_dir) / "summary.json"
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
