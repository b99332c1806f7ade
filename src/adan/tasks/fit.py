"""Fit one agent: compose the components from the config, train PPO, summarise it against
buy-and-hold. ``adan.tasks.train`` runs it once, ``adan.tasks.walk_forward`` once per fold."""

from __future__ import annotations

import json
import logging
import signal
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks.progress import ProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException

from adan.callbacks import GracefulShutdown, RunCheckpoint
from adan.callbacks.run_spec import RunSpec
from adan.checkpoint_format import data_contract
from adan.config.deprecations import migrate
from adan.config.precision import resolve_precision
from adan.errors import DiskFullError, DivergenceError
from adan.evaluation.checkpoint import SafeCheckpointIO
from adan.evaluation.gym_eval import GymEvaluator
from adan.files import atomic_write_text, first_disk_full, is_disk_full
from adan.market.spec import MarketSpec
from adan.ops.run_logging import finish_run_logging, log_run_config
from adan.tasks.kinds import is_gym_task
from adan.tasks.preflight import refuse_used_checkpoint_dir
from adan.tasks.sweep import pruned_summary, pruning_callback

log = logging.getLogger(__name__)
# pytorch-lightning 2.6 on torch 2.13 warns about its own use of a deprecated pytree API
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# the model summary sizes parameters in fp32 under bf16 autocast: they are fp32
warnings.filterwarnings("ignore", message=r"Precision bf16-mixed is not supported by the model")


def build_task(cfg: DictConfig, splits: dict | None = None) -> tuple[Any, Any, dict]:
    """(training VectorEnv, validation evaluator, market splits or {}) for the configured task.

    With a ``data`` group the task is trading on that market (``splits``, when given, replace
    the ones the data config would build: a walk-forward fold); without one
    (experiment=cartpole) it is the plain gymnasium task named by ``env.env_id``.
    """
    if is_gym_task(cfg):
        env = instantiate(cfg.env)
        return env, GymEvaluator(cfg.env.env_id, n_episodes=cfg.eval_episodes), {}

    from adan.evaluation.evaluator import TradingEvaluator

    migrate(cfg)  # moved keys to their homes (done by the train task already; idempotent)
    if splits is None:
        splits = instantiate(cfg.data).build()
    log.info("market: %s", ", ".join(f"{k}={len(v)} bars" for k, v in splits.items()))
    trading = instantiate(cfg.trading)
    # what each split is traded as: the data (its bars per year), the rules and the window
    # (the training env may pay more than the market it is scored on: train_cost_multiplier)
    train = MarketSpec.of(splits["train"], trading.for_training(), window=cfg.env.window)
    val = MarketSpec.of(splits["val"], trading, window=cfg.env.window)
    env_factory = instantiate(_env_settings(cfg.env))
    env = env_factory(spec=train, reward=instantiate(cfg.reward), seed=cfg.seed)
    return env, TradingEvaluator(val), splits


def _env_settings(env: DictConfig) -> DictConfig:
    """The env group without what the ``MarketSpec`` carries (``window``; the deprecated
    ``bars_per_year``, moved to the data group before the run starts)."""
    node = OmegaConf.to_container(env, resolve=True)
    node.pop("window")
    node.pop("bars_per_year", None)
    return OmegaConf.create(node)


def fit(cfg: DictConfig, splits: dict | None = None) -> tuple[dict[str, Any], Any]:
    """Train one agent on ``splits`` (default: the data config's); (summary, PPO module)."""
    torch.set_num_threads(int(cfg.torch_threads))
    pl.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    refuse_used_checkpoint_dir(out_dir, cfg.get("ckpt_path"))

    # trainer.precision: auto becomes this machine's choice before the config is saved
    agent = cfg.agent
    minibatch = cfg.env.num_envs * agent.n_steps // agent.n_minibatches
    precision = resolve_precision(
        cfg.trainer.get("precision", 32), cfg.trainer.accelerator, minibatch=minibatch
    )
    if precision != cfg.trainer.get("precision", 32):
        log.info(
            "trainer.precision=auto: %s on this machine (update minibatches of %d rows)",
            precision,
            minibatch,
        )
        with open_dict(cfg):
            cfg.trainer.precision = precision
    env, evaluator, splits = build_task(cfg, splits)
    module = instantiate(cfg.agent)(env=env, policy=instantiate(cfg.model), evaluator=evaluator)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    contract = data_contract(splits) if splits else None
    callbacks.append(RunSpec(OmegaConf.to_container(cfg, resolve=True), contract))
    # a sweep trial reports its validation scores and may be pruned (not per walk-forward fold)
    pruning = None if cfg.get("walk_forward") else pruning_callback(cfg)
    if pruning is not None:
        callbacks.append(pruning)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    # One epoch is one PPO iteration; trainer.max_epochs may stop earlier (annealing schedules
    # still span agent.total_timesteps, so a stopped run resumes exactly where it left off).
    max_epochs = cfg.trainer.get("max_epochs") or module.num_updates
    extra = {}
    if "enable_progress_bar" not in cfg.trainer:
        # callbacks.progress_bar=null means no bar, not Lightning's default (a bar of 1/1 per
        # PPO iteration, redrawn by a thread up to 100 times a second)
        extra["enable_progress_bar"] = any(isinstance(c, ProgressBar) for c in callbacks)
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        **extra,
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[SafeCheckpointIO()],  # atomic writes, reads that run no code
    )
    log_run_config(loggers, cfg)  # W&B: also its run's identity, for eval.py
    log.info(
        "training %d PPO iterations of %d steps (%d envs x %d) = %d env steps",
        module.num_updates,
        module.batch_per_rollout,
        module.num_envs,
        module.hparams.n_steps,
        module.num_updates * module.batch_per_rollout,
    )
    shutdown = next((c for c in callbacks if isinstance(c, GracefulShutdown)), None)
    signum = None
    try:
        t0 = time.perf_counter()
        try:
            trainer.fit(module, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        except SIGTERMException:
            signum = signal.SIGTERM  # last.ckpt is saved (RunCheckpoint)
        except BaseException as err:
            explained = _explained(err, trainer, out_dir)
            if explained is err:
                raise
            raise explained from err
        train_seconds = time.perf_counter() - t0
        if not trainer.is_global_zero:  # under DDP, rank 0 alone scores and reports
            return {}, module
        if signum is None and shutdown is not None:
            signum = shutdown.signal_received  # SIGINT: stopped at the end of an iteration
        if signum is not None:
            summary = interrupted_summary(module, trainer, signum)
        elif pruning is not None and pruning.pruned_at is not None:
            summary = pruned_summary(module, trainer, pruning, _last_checkpoint(trainer))
        else:
            summary = summarise(cfg, module, evaluator, splits)
            summary["status"] = "time_limit" if _timed_out(trainer) else "completed"
        summary["train_seconds"] = train_seconds  # trainer.fit: iterations, validation, checkpoints
        summary["iteration_seconds"] = module.iteration_seconds  # rollouts and updates only
        summary["validation_seconds"] = module.validation_seconds  # the evaluator's share of fit
        _finish_loggers(loggers, summary, module.env_steps, trainer, cfg)
    finally:
        _close_wandb(loggers)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    log.info("summary written to %s", out_dir / "summary.json")
    return summary, module


def interrupted_summary(module: Any, trainer: pl.Trainer, signum: int) -> dict[str, Any]:
    """What a run stopped by a signal reports: how far it got and where it can resume (the
    closing backtests are skipped: a scheduler's grace period is short)."""
    name = signal.Signals(signum).name
    last = _last_checkpoint(trainer)
    iterations = module.env_steps // (module.batch_per_rollout * trainer.world_size)
    log.warning("%s: stopped after %d iterations; resume with ckpt_path=%s", name, iterations, last)
    val = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    return {
        "status": "interrupted",
        "signal": name,
        "exit_code": 128 + int(signum),
        "env_steps": module.env_steps,
        "iterations": iterations,
        "checkpoint": str(last) if last else None,
        "last_validation": val,
    }


def _last_checkpoint(trainer: pl.Trainer) -> Path | None:
    for cb in trainer.callbacks:
        if isinstance(cb, RunCheckpoint) and cb.keep_last:
            return cb.last_path if cb.last_path.is_file() else None
    return None


def _timed_out(trainer: pl.Trainer) -> bool:
    from pytorch_lightning.callbacks import Timer

    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    return bool(
        timer is not None and timer.time_remaining() is not None and timer.time_remaining() <= 0
    )


def _explained(err: BaseException, trainer: pl.Trainer, out_dir: Path) -> BaseException:
    """``err`` with where the run can resume from; a full disk as one DiskFullError."""
    last = _last_checkpoint(trainer)
    where = (
        f"the last good checkpoint is {last} (resume with ckpt_path={last})"
        if last
        else "no checkpoint was written"
    )
    if is_disk_full(err):
        first = first_disk_full(err)
        text = str(first) if first else f"disk full: no space left while writing {out_dir}"
        return DiskFullError(f"{text}\nThe run stopped; {where}.")
    if isinstance(err, DivergenceError):
        return DivergenceError(f"{err}\nThe run stopped; {where}.")
    return err


def summarise(cfg: DictConfig, module: Any, evaluator: Any, splits: dict) -> dict[str, Any]:
    """Score the final policy: for trading, on the train and val splits beside buy-and-hold;
    for gym tasks, the deterministic evaluation episodes."""
    policy = module.policy.eval()
    summary: dict[str, Any] = {"env_steps": module.env_steps, "iterations": module.current_epoch}
    if not splits:
        summary["val"] = {"agent": evaluator(policy)}
        # Validation episodes also decided early stopping; fresh seeds give an unbiased score.
        fresh = GymEvaluator(evaluator.env_id, evaluator.n_episodes, seed=evaluator.seed + 10_000)
        summary["test"] = {"agent": fresh(policy)}
    else:
        from adan.evaluation.backtest import print_summary
        from adan.evaluation.evaluator import TradingEvaluator

        # In-sample reference on the most recent stretch of the training split, as long as the
        # validation split (a full pass over train would cost several times the validation).
        train = splits["train"]
        recent = train.slice(max(0, len(train) - len(splits["val"])), len(train), name="train")
        train_eval = TradingEvaluator(replace(evaluator.spec, data=recent))
        summary["train"] = train_eval.compare(policy)
        summary["val"] = evaluator.compare(policy)
        summary["bars_per_year"] = evaluator.bars_per_year  # the annualisation of the ratios
        _write_val_returns(Path(cfg.paths.output_dir), evaluator)
        print_summary(summary)
    metric = cfg.get("optimized_metric")
    if metric:
        split, name = metric.split("/", 1)
        summary["objective"] = {
            metric: float(summary.get(split, {}).get("agent", {}).get(name, float("nan")))
        }
    return summary


def _write_val_returns(out_dir: Path, evaluator: Any) -> None:
    """``val_returns.csv``: the final policy's net return per validation bar, which a sweep's
    report compares across trials (the Probability of Backtest Overfitting)."""
    import pandas as pd

    times, returns = evaluator.agent_returns()
    frame = pd.DataFrame({"time": pd.to_datetime(times), "agent": returns})
    atomic_write_text(out_dir / "val_returns.csv", frame.to_csv(index=False))


def _finish_loggers(
    loggers: list, summary: dict, step: int, trainer: pl.Trainer, cfg: DictConfig
) -> None:
    """The closing ``summary/*`` values, at the run's last env step; then W&B's best values
    and checkpoint artifacts, TensorBoard's HParams row (``adan.ops.run_logging``)."""
    flat = {
        f"summary/{split}/{who}/{k}": v
        for split in ("train", "val")
        if split in summary
        for who, metrics in summary[split].items()
        for k, v in metrics.items()
    }
    for lg in loggers:
        lg.log_metrics(flat, step=step)
    finish_run_logging(loggers, summary, trainer, cfg)
    for lg in loggers:
        lg.save()


def _close_wandb(loggers: list) -> None:
    """Each Hydra multirun job must end its W&B run, or the next job would reuse it."""
    from pytorch_lightning.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger):
            import wandb

            wandb.finish()
