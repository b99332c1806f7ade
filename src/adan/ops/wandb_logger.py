"""A Lightning WandbLogger that never blocks or aborts a run on the network.

The mode is ``logger.wandb.mode`` if set, else ``WANDB_MODE``, else online only when
``WANDB_API_KEY`` is set. The run is created here, up front: an online start that fails
(no network, refused connection, bad key, server error) or takes longer than
``init_timeout`` seconds falls back to an offline run with one warning, and ``wandb sync <dir>``
uploads it later. In a Hydra multirun each job becomes its own W&B run, grouped by the sweep
directory's name; in an Optuna sweep (``cfg.optuna_trial``) by the study, one run per trial
(``<study>-trial<n>``) whose config also holds the trial's parameters.

What a training run shows (:class:`RunLogger`): every metric against ``env_steps``, the run
summary's ``best/val/*`` beside the final values, ``last.ckpt`` and the best checkpoint as a
``model`` artifact, and ``wandb_run.json`` in the run directory naming the W&B run, which
``eval.py`` reads to join the training run's group and refer to it (:func:`eval_run_settings`).

What wandb 0.31 does here (read from its source, measured against a closed and a silent port):
an unreachable server makes ``wandb.init`` raise ``wandb.errors.CommError`` once
``Settings.init_timeout`` expires (the service retries until then; its default is 90 s, ours
15 s); the failed run's stream is closed by the service and no global run is left, so a fresh
offline ``wandb.init`` in the same process works. Two other waits on the network remain and are
bounded here: ``run.finish()`` blocks until every upload is done unless ``finish_timeout`` is set
(then the rest stays on disk for ``wandb sync``), and wandb's own SDK telemetry probes the server
at interpreter exit, 10 s or more against a server that does not answer, even for offline runs;
``WANDB_ERROR_REPORTING=false`` (the default set here unless the variable is already set) turns
that off.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning_fabric.utilities.logger import _add_prefix
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from adan.config.secrets import masked
from adan.errors import ConfigError, check
from adan.files import atomic_write_text
from adan.ops.trial import trial_name, trial_of, trial_params

log = logging.getLogger(__name__)
IDENTITY_FILE = "wandb_run.json"  # the training run's W&B identity, in its run directory
STEP = "env_steps"  # the x-axis of every training metric
# Directions of the validation metrics whose best value is reported (``best/val/<name>``);
# the optimized metric follows its checkpoint monitor's mode whatever this says.
HIGHER_IS_BETTER = frozenset(
    {"sharpe", "sharpe_2x_costs", "sortino", "calmar", "cagr", "total_return", "profit_factor",
     "win_rate", "mean_return"}
)  # fmt: skip
LOWER_IS_BETTER = frozenset({"max_drawdown", "max_drawdown_duration", "costs"})

MODES = ("online", "offline", "disabled")
# wandb's own spellings: "dryrun" is its old name for offline, "run" for online.
_ALIASES = {"dryrun": "offline", "run": "online"}


def _hydra_job() -> tuple[str | None, str | None]:
    """(group, name) for the current Hydra job: the sweep and job number in a multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None, None
    if hc.mode == RunMode.MULTIRUN:
        group = Path(hc.sweep.dir).name
        return group, f"{group}-job{hc.job.num}"
    return None, Path(hc.runtime.output_dir).name


def resolve_mode(mode: str | None) -> str:
    """``logger.wandb.mode`` if set, else ``WANDB_MODE``, else online only with an API key."""
    if mode is not None:
        key, value = "logger.wandb.mode", mode
    elif os.environ.get("WANDB_MODE"):
        key, value = "WANDB_MODE", os.environ["WANDB_MODE"]
    else:
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    resolved = _ALIASES.get(str(value).strip().lower(), str(value).strip().lower())
    if resolved not in MODES:
        raise ConfigError(
            f"{key} must be online, offline or disabled (or dryrun = offline)"
            + (" or null" if key == "logger.wandb.mode" else "")
            + f", got {value!r}"
        )
    return resolved


def _seconds(value: Any, key: str, *, zero_ok: bool = False) -> float:
    """A finite number of seconds, > 0 (or >= 0 with ``zero_ok``), else a ConfigError naming key."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if zero_ok else value > 0)
    check(ok, key, f"must be a number of seconds {'>= 0' if zero_ok else '> 0'}", value)
    return float(value)


def wandb_logger(
    project: str = "adan",
    save_dir: str = ".",
    tags: list[str] | None = None,
    mode: str | None = None,
    group: str | None = None,
    name: str | None = None,
    init_timeout: float = 15.0,
    finish_timeout: float = 60.0,
    trial: Any = None,
    job_type: str = "train",
    run_config: Mapping[str, Any] | None = None,
) -> RunLogger:
    """Build the logger with its run already started (offline if online cannot start).

    ``init_timeout``: seconds an online start may take before falling back to offline.
    ``finish_timeout``: seconds the end of an online run may spend uploading (0: no limit);
    what is left stays on disk for ``wandb sync``.
    ``trial``: the sweep trial (``cfg.optuna_trial``: study, number) or None. A trial's run
    joins the study's group as ``<study>-trial<number>``, its config holding ``optuna_trial``
    and ``trial_params`` (the job's overrides); an explicit ``group``/``name`` wins.
    ``job_type``: ``train`` runs log every metric against ``env_steps``; others (``eval``) are
    left on W&B's own step. ``run_config``: more entries for the run's config.
    """
    mode = resolve_mode(mode)
    init_timeout = _seconds(init_timeout, "logger.wandb.init_timeout")
    finish_timeout = _seconds(finish_timeout, "logger.wandb.finish_timeout", zero_ok=True)
    job_group, job_name = _hydra_job()
    trial = trial_of(trial)
    if isinstance(run_config, DictConfig):  # as Hydra's instantiate passes it
        run_config = OmegaConf.to_container(run_config, resolve=True)
    extra = dict(run_config or {})
    if trial is not None:
        job_group, job_name = trial["study"], trial_name(trial)
        extra = {"optuna_trial": trial, "trial_params": trial_params(), **extra}
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    init = {
        "project": project,
        "dir": save_dir,
        "tags": list(tags or []),
        "group": group or job_group,
        "name": name or job_name,
        "job_type": job_type,
    }
    if rank_zero_only.rank != 0:  # other DDP ranks never log; Lightning gives them a dummy
        return RunLogger(save_dir=save_dir, mode=mode, **_without(init, "dir"))
    config = masked(extra) or None  # an override may hold a storage URL with a password
    run = _start_run(mode, init_timeout, finish_timeout, {**init, "config": config})
    if job_type == "train":
        # every metric against the environment steps (RunLogger puts them in each row)
        run.define_metric(STEP)
        run.define_metric("*", step_metric=STEP, step_sync=True)
    return RunLogger(experiment=run, save_dir=save_dir, **_without(init, "dir"))


class RunLogger(WandbLogger):
    """Lightning's WandbLogger, with the run's rows on the ``env_steps`` axis and the best
    validation values kept for the summary.

    ADAN logs every training quantity with ``step`` = environment steps (``PPO.log_metrics``,
    the callbacks, the closing ``summary/*``), so each row gets ``env_steps`` = ``step``
    (Lightning's would be ``trainer/global_step``, the same number under another name). Rows
    without a step (eval's) are logged as they are."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.val_range: dict[str, tuple[float, float]] = {}  # val/<name> -> (min, max) seen

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        row = dict(_add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR))
        for key, value in row.items():
            if key.startswith("val/") and isinstance(value, int | float) and math.isfinite(value):
                lo, hi = self.val_range.get(key, (value, value))
                self.val_range[key] = (min(lo, value), max(hi, value))
        if step is not None:
            row[STEP] = int(step)
        self.experiment.log(row)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        if isinstance(params, Mapping):
            params = masked(dict(params))  # a database URL's password stays off W&B
        super().log_hyperparams(params)

    def best_values(self, monitor: str | None = None, mode: str = "max") -> dict[str, float]:
        """``best/val/<name>``: the best value seen of each validation metric with a known
        direction, and of ``monitor`` (the optimized metric) by ``mode``."""
        best = {}
        for key, (lo, hi) in self.val_range.items():
            name = key.split("/", 1)[1]
            if key == monitor:
                best[f"best/{key}"] = lo if mode == "min" else hi
            elif name in HIGHER_IS_BETTER:
                best[f"best/{key}"] = hi
            elif name in LOWER_IS_BETTER:
                best[f"best/{key}"] = lo
        return best

    @property
    def run(self) -> Any:
        """The wandb run (None on the DDP ranks that do not log, and for disabled runs)."""
        run = self._experiment
        return None if run is None or getattr(run, "disabled", False) else run


def _identity(run: Any) -> dict[str, Any]:
    """What names a W&B run: enough to find it online, or its files offline."""
    entity = run.entity or ""
    path = "/".join(p for p in (entity, run.project, run.id) if p)
    return {
        "id": run.id,
        "project": run.project,
        "entity": entity,
        "path": path,
        "group": run.group or None,
        "name": run.name,
        "job_type": run.job_type or None,
        "mode": "offline" if run.offline else "online",
        "dir": str(Path(run.settings.sync_dir).resolve()),
        "url": None if run.offline else run.url,
    }


def write_identity(logger: RunLogger, run_dir: Path, **extra: Any) -> None:
    """``<run_dir>/wandb_run.json``: the training run's W&B identity (and ``extra``)."""
    if logger.run is None:
        return
    file = Path(run_dir) / IDENTITY_FILE
    body = {**_identity(logger.run), **extra}
    atomic_write_text(file, json.dumps(body, indent=2))


def read_identity(checkpoint: Path) -> dict[str, Any] | None:
    """The W&B identity of the training run that wrote ``checkpoint`` (a file in
    ``<run>/checkpoints/`` or ``<run>/``), or None when it logged to no W&B run."""
    checkpoint = Path(checkpoint).resolve()
    for d in (checkpoint.parent, checkpoint.parent.parent):
        file = d / IDENTITY_FILE
        if file.is_file():
            try:
                body = json.loads(file.read_text())
            except (OSError, ValueError) as e:
                log.warning("ignoring %s: %s", file, e)
                return None
            return body if isinstance(body, dict) and body.get("id") else None
    return None


def model_artifact_name(run_id: str) -> str:
    return f"model-{run_id}"


def finish_training(
    logger: RunLogger, summary: dict[str, Any], trainer: Any, run_dir: Path
) -> None:
    """At the end of training: ``best/val/*`` into the run summary, ``last.ckpt`` and the best
    checkpoint as one ``model`` artifact (``model-<run id>``, aliases ``latest`` and ``best``),
    and the identity file updated with its name. A run stopped by a signal (its resumed run
    logs them at its end, and a scheduler's grace period is short) or pruned by the sweep
    logs no artifact."""
    run = logger.run
    if run is None:
        return
    ckpt = getattr(trainer, "checkpoint_callback", None)
    monitor, mode = getattr(ckpt, "monitor", None), getattr(ckpt, "mode", "max")
    best = logger.best_values(monitor, mode)
    score = getattr(ckpt, "best_model_score", None)
    if monitor and score is not None and math.isfinite(float(score)):
        # the best checkpoint's score counts the iterations before a resume too; it is a
        # float32 copy, so it wins only where it is better than the values logged here
        score, seen = float(score), best.get(f"best/{monitor}")
        tol = 1e-6 * max(1.0, abs(score))
        if seen is None or (score > seen + tol if mode == "max" else score < seen - tol):
            best[f"best/{monitor}"] = score
    if best:
        run.summary.update(best)
    artifact = None
    if summary.get("status") not in ("interrupted", "pruned") and ckpt is not None:
        artifact = _log_checkpoints(run, ckpt, summary, monitor, mode, score)
    write_identity(logger, run_dir, model_artifact=artifact)


def _log_checkpoints(
    run: Any, ckpt: Any, summary: dict, monitor: str | None, mode: str, score: Any
) -> str | None:
    import wandb

    last = Path(ckpt.last_model_path or Path(ckpt.dirpath or ".") / "last.ckpt")
    best = Path(ckpt.best_model_path) if ckpt.best_model_path else None
    files = {p.name: p for p in (last, best) if p is not None and p.is_file()}
    if not files:
        return None
    name = model_artifact_name(run.id)
    metadata = {
        "env_steps": summary.get("env_steps"),
        "status": summary.get("status"),
        "monitor": monitor,
        "mode": mode,
        "best_model_score": None if score is None else float(score),
        "last": last.name if last.name in files else None,
        "best": best.name if best is not None and best.name in files else None,
    }
    artifact = wandb.Artifact(name, type="model", metadata=metadata)
    for entry, path in files.items():
        # a copy is staged (the run directory may be resumed into, and so rewritten, before
        # an offline run is synced); no second copy into wandb's cache after the upload
        artifact.add_file(str(path), name=entry, skip_cache=True)
    aliases = ["latest"] + (["best"] if metadata["best"] else [])
    run.log_artifact(artifact, aliases=aliases)
    return f"{name}:latest"


def eval_run_settings(checkpoints: list[Path]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(``wandb_logger`` arguments, training runs' identities) for an eval run of
    ``checkpoints``: ``job_type`` eval and, when the (first) checkpoint's training run logged to
    W&B, its group, a name after it (``<training name>-eval``) and ``training_run_id`` /
    ``training_run_path`` (every run's path in ``training_runs``) in the config."""
    settings: dict[str, Any] = {"job_type": "eval"}
    runs: list[dict[str, Any]] = []
    for f in checkpoints:
        identity = read_identity(f)
        if identity is not None and identity["id"] not in [r["id"] for r in runs]:
            runs.append(identity)
    if not runs:
        return settings, runs
    first = runs[0]
    config = {
        "training_run_id": first["id"],
        "training_run_path": first.get("path"),
        "training_run_dir": first.get("dir"),
        "training_runs": [r.get("path") for r in runs],
    }
    settings.update(group=first.get("group"), name=f"{first.get('name')}-eval", run_config=config)
    return settings, runs


def use_training_models(logger: RunLogger, runs: list[dict[str, Any]]) -> None:
    """Declare each training run's model artifact as an input of this (eval) run.

    wandb 0.31 refuses ``use_artifact`` in an offline run (``TypeError: Cannot use artifact
    when in offline mode``, in ``Run.use_artifact``): offline, the config's
    ``training_run_id``/``training_run_path`` are the link. Online it is tried, and a training
    run that was never synced (its artifact unknown to the server) leaves only that link too."""
    run = logger.run
    if run is None:
        return
    for identity in runs:
        name = identity.get("model_artifact")
        if not name:
            continue
        if run.offline:
            log.info("W&B offline: eval refers to training run %s in its config", identity["id"])
            continue
        project = "/".join(p for p in (identity.get("entity"), identity.get("project")) if p)
        try:
            run.use_artifact(f"{project}/{name}" if project else name, type="model")
        except Exception as e:  # an unsynced run's artifact: the config still names the run
            log.warning("W&B: could not use the training run's artifact %s (%s)", name, e)


def log_report(logger: RunLogger, written: Mapping[str, Path]) -> None:
    """Eval's report (``report.md``, ``metrics.json`` and the plots) as a ``report`` artifact."""
    run = logger.run
    if run is None:
        return
    import wandb

    artifact = wandb.Artifact(f"report-{run.id}", type="report")
    for path in written.values():
        path = Path(path)
        if path.is_file():
            artifact.add_file(str(path), name=_report_entry(path))
    run.log_artifact(artifact)


def _report_entry(path: Path) -> str:
    """``report.md``, ``metrics.json``, ``plots/<name>.png``: the layout eval writes."""
    return f"{path.parent.name}/{path.name}" if path.parent.name == "plots" else path.name


def _without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def _start_run(mode: str, init_timeout: float, finish_timeout: float, init: dict) -> Any:
    import wandb

    settings = {
        "init_timeout": init_timeout,
        "login_timeout": init_timeout,  # an interactive key prompt waits no longer either
        "finish_timeout": finish_timeout,
        "silent": True,
    }
    # "finish_previous": a job that died before finishing its run never hands it to the next.
    start = dict(init, reinit="finish_previous")
    if mode != "online":
        return wandb.init(mode=mode, settings=wandb.Settings(**settings), **start)
    try:
        run = wandb.init(mode="online", settings=wandb.Settings(**settings), **start)
    except Exception as e:  # any failure to start online (CommError, UsageError, ...) -> offline
        lines = str(e).strip().splitlines()
        reason = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    else:
        if not run.disabled:
            return run
        # wandb turns a timed-out key prompt into a disabled run, which would lose the run.
        reason = "no API key was given in time"
        wandb.finish()
    run = wandb.init(mode="offline", settings=wandb.Settings(**settings), **start)
    sync_dir = run.settings.sync_dir
    log.warning(
        "W&B could not start an online run (%s; logger.wandb.init_timeout=%gs); "
        "logging offline to %s instead. Upload it later with `wandb sync %s`.",
        reason[:500],
        init_timeout,
        sync_dir,
        sync_dir,
    )
    return run
