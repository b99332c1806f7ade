"""TensorBoard's HParams view: each run (each job of a sweep) as one row of its
hyperparameters and final validation metrics.

At the end of training the run's hparams plugin summary is written through Lightning's
``TensorBoardLogger.log_hyperparams(params, metrics, step)`` (it writes the plugin's
experiment, session-start and session-end summaries, and the metrics as scalars; its
``hparams.yaml``, written once when the run starts, keeps the full config). The
hyperparameters are the trial's (its overrides) in a sweep, else the scalar settings of the
experiment's groups; the metrics are the final validation ones, ``hp/val_<name>``, and
``hp/best_<monitor>`` (the best checkpoint's score).
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from adan.ops.trial import trial_of, trial_params

# the groups whose scalar settings describe a run outside a sweep
GROUPS = ("agent", "model", "env", "reward", "trading")
TOP = ("seed", "optimized_metric")


def hyperparameters(cfg: DictConfig, overrides: list[str] | None = None) -> dict[str, Any]:
    """A sweep trial's parameters (its overrides), else the scalar leaves of ``GROUPS``
    (``agent.learning_rate``, ...) and ``seed``; ``_target_``-like keys left out."""
    if trial_of(cfg) is not None:
        params = trial_params(overrides)
        if params:
            return {k: _scalar(v) for k, v in params.items()}
    container = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, Any] = {k: container[k] for k in TOP if k in container}
    for group in GROUPS:
        flat.update(_leaves(container.get(group), group))
    return {k: _scalar(v) for k, v in flat.items()}


def _leaves(node: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in node.items():
        if str(k).startswith("_"):
            continue
        key = f"{prefix}.{k}"
        if isinstance(v, dict):
            out.update(_leaves(v, key))
        elif not isinstance(v, list):
            out[key] = v
    return out


def _scalar(value: Any) -> Any:
    """What the hparams plugin takes: a number, a string or a bool (None and lists as text)."""
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def final_metrics(summary: dict[str, Any], trainer: Any = None) -> dict[str, float]:
    """``hp/val_<name>`` from the closing validation of the agent (a stopped run: its last
    validation), and ``hp/best_<monitor>`` from the best checkpoint."""
    val = (summary.get("val") or {}).get("agent")
    if val is None:  # interrupted: the last validation's val/<name>
        val = {k.split("/", 1)[1]: v for k, v in (summary.get("last_validation") or {}).items()}
    metrics = {f"hp/val_{k}": float(v) for k, v in val.items() if _number(v)}
    ckpt = getattr(trainer, "checkpoint_callback", None)
    score = getattr(ckpt, "best_model_score", None)
    if ckpt is not None and ckpt.monitor and score is not None and _number(float(score)):
        metrics[f"hp/best_{ckpt.monitor.replace('/', '_')}"] = float(score)
    return metrics


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def log_hparams(logger: Any, cfg: DictConfig, summary: dict[str, Any], trainer: Any = None) -> None:
    """Write the HParams row of this run to a TensorBoardLogger, at the run's last env step."""
    metrics = final_metrics(summary, trainer)
    step = summary.get("env_steps")
    logger.log_hyperparams(hyperparameters(cfg), metrics=metrics or None, step=step)
