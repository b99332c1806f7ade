"""A Lightning WandbLogger that never blocks or aborts a run on the network.

The mode is ``logger.wandb.mode`` if set, else ``WANDB_MODE``, else online only when
``WANDB_API_KEY`` is set. The run is created here, up front: an online start that fails
(no network, refused connection, bad key, server error) or takes longer than
``init_timeout`` seconds falls back to an offline run with one warning, and ``wandb sync <dir>``
uploads it later. In a Hydra multirun each job becomes its own W&B run, grouped by the sweep
directory's name.

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

import logging
import math
import os
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger

from adan.errors import ConfigError, check

log = logging.getLogger(__name__)

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
) -> WandbLogger:
    """Build the logger with its run already started (offline if online cannot start).

    ``init_timeout``: seconds an online start may take before falling back to offline.
    ``finish_timeout``: seconds the end of an online run may spend uploading (0: no limit);
    what is left stays on disk for ``wandb sync``.
    """
    mode = resolve_mode(mode)
    init_timeout = _seconds(init_timeout, "logger.wandb.init_timeout")
    finish_timeout = _seconds(finish_timeout, "logger.wandb.finish_timeout", zero_ok=True)
    job_group, job_name = _hydra_job()
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    init = {
        "project": project,
        "dir": save_dir,
        "tags": list(tags or []),
        "group": group or job_group,
        "name": name or job_name,
    }
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:  # other DDP ranks never log; Lightning gives them a dummy
        return WandbLogger(save_dir=save_dir, mode=mode, **_without(init, "dir"))
    run = _start_run(mode, init_timeout, finish_timeout, init)
    # What WandbLogger does to runs it starts itself: metrics against the trainer's step.
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    return WandbLogger(experiment=run, save_dir=save_dir, **_without(init, "dir"))


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
