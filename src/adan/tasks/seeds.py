"""One experiment over several agent seeds: the unit of evidence.

``python train.py seeds=[0,1,2]`` trains one complete run per seed in ``<run>/seed_<s>/``.
Each is an ordinary run directory (its own checkpoints, metrics, summary and log; resumable
and scored by ``eval.py`` on its own), started as ``train.py`` with the experiment's own
command-line overrides plus ``seed=<s>``. The market is the same for every seed: a data seed
that follows ``${seed}`` (the synthetic generator's) is pinned to the experiment's value, so
only the agent (initialisation, sampling, minibatch order, env resets) changes. Up to
``seeds_parallel`` runs train at once (default: as many as the cores hold at
``torch_threads`` each).

The experiment directory gets ``seeds.json`` (each seed's run directory: ``eval.py`` reads it
to score every seed) and ``summary.json`` (every seed's summary and the mean and standard
deviation over seeds of each figure). With ``logger=wandb`` every seed's run joins one W&B
group named by the experiment, beside a ``<experiment>-seeds`` run holding the mean and sd
over seeds. SIGINT/SIGTERM reach every running seed, which saves
its ``last.ckpt``; ``python train.py seeds=[...] ckpt_path=<experiment dir>`` then resumes the
unfinished seeds and keeps the finished ones.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from adan.errors import ConfigError
from adan.evaluation.seeds_report import mean_sd
from adan.files import atomic_write_text

log = logging.getLogger(__name__)

SEEDS_FILE = "seeds.json"
# keys each seed's run sets itself (the experiment's values would contradict them)
_OWN_KEYS = ("seeds", "seeds_parallel", "seed", "ckpt_path", "data.source.seed")


def check_seeds(cfg: DictConfig) -> list[int]:
    """The experiment's seeds, refused with the key when they cannot make one."""
    seeds = list(cfg.seeds)
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"seeds must be a non-empty list of integers or null, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds repeats a seed: {seeds}; each seed trains one run")
    parallel = cfg.get("seeds_parallel")
    if parallel is not None and (not isinstance(parallel, int) or parallel < 1):
        raise ConfigError(
            f"seeds_parallel must be >= 1 or null (as the cores allow), got {parallel}"
        )
    return seeds


def seed_runs(run_dir: Path) -> dict[int, Path] | None:
    """Each seed's run directory of the multi-seed experiment at ``run_dir``; None when
    ``run_dir`` is not one."""
    file = Path(run_dir) / SEEDS_FILE
    if not file.is_file():
        return None
    runs = json.loads(file.read_text())["runs"]
    return {int(s): Path(p) for s, p in runs.items()}


def train_seeds(cfg: DictConfig) -> dict[str, Any]:
    """Train one run per seed of ``cfg.seeds`` (see the module docstring); the experiment's
    summary, also written to ``summary.json``."""
    seeds = check_seeds(cfg)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    earlier = _earlier_runs(cfg.get("ckpt_path"), seeds)
    runs = {s: out_dir / f"seed_{s}" for s in seeds}
    done = {s: p for s, p in earlier.items() if _status(p) == "completed"}
    runs.update(done)
    _write_seeds_file(out_dir, seeds, runs)
    base = _member_overrides(cfg)
    todo = [s for s in seeds if s not in done]
    if done:
        log.info("seeds %s already completed in %s: kept", sorted(done), cfg.ckpt_path)
    parallel = cfg.get("seeds_parallel") or max(
        1, min(len(todo), (os.cpu_count() or 1) // max(1, int(cfg.torch_threads)))
    )
    log.info("%d seeds %s on one market, %d at a time, in %s", len(seeds), seeds, parallel, out_dir)
    codes = _run_members(cfg, base, todo, runs, earlier, parallel)
    summary = aggregate({s: _read_summary(runs[s]) for s in seeds}, seeds)
    summary["runs"] = {str(s): str(runs[s]) for s in seeds}
    failed = {s: c for s, c in codes.items() if c not in (0, 130, 143)}
    stopped = {s: c for s, c in codes.items() if c in (130, 143)}
    if failed:
        summary["status"] = "failed"
        summary["failed"] = {str(s): c for s, c in failed.items()}
    elif stopped:
        summary["status"] = "interrupted"
        summary["exit_code"] = max(stopped.values())
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    print_seeds_table(summary)
    _log_to_wandb(cfg, summary, out_dir)
    log.info("summary written to %s", out_dir / "summary.json")
    if failed:
        which = ", ".join(f"{s} (exit {c}, log {_log_file(runs[s])})" for s, c in failed.items())
        raise RuntimeError(
            f"seed {which} failed; the others are in {out_dir}. Resume with ckpt_path={out_dir}"
        )
    if stopped:
        log.warning("stopped: resume every unfinished seed with ckpt_path=%s", out_dir)
    return summary


def _log_to_wandb(cfg: DictConfig, summary: dict[str, Any], out_dir: Path) -> None:
    """With ``logger=wandb``: one more run in the seeds' group, ``<experiment>-seeds``, whose
    summary holds the mean and sd over seeds (``seeds/mean/val/agent/sharpe``, ...)."""
    node = OmegaConf.select(cfg, "logger.wandb")
    if node is None:
        return
    from hydra.utils import instantiate

    group = OmegaConf.select(cfg, "logger.wandb.group") or out_dir.name
    with open_dict(node):
        node.group, node.name = group, f"{out_dir.name}-seeds"
    logger = instantiate(node)
    flat = {
        f"seeds/{stat}/{split}/{who}/{k}": v
        for stat in ("mean", "sd")
        for split, whos in summary[stat].items()
        for who, metrics in whos.items()
        for k, v in metrics.items()
    }
    logger.experiment.summary.update({**flat, "seeds/n": len(summary["seeds"])})
    logger.experiment.config.update({"seeds": summary["seeds"]}, allow_val_change=True)
    import wandb

    wandb.finish()


def _earlier_runs(ckpt_path: Any, seeds: list[int]) -> dict[int, Path]:
    """The seeds' run directories of the experiment ``ckpt_path`` resumes ({} for none)."""
    if not ckpt_path:
        return {}
    runs = seed_runs(Path(str(ckpt_path)))
    if runs is None:
        raise ConfigError(
            f"ckpt_path={ckpt_path} is not a multi-seed experiment (no {SEEDS_FILE}): with "
            "seeds set, ckpt_path names the experiment directory a seeds=[...] run wrote"
        )
    extra = sorted(set(runs) - set(seeds))
    if extra:
        raise ConfigError(
            f"ckpt_path={ckpt_path} also trained seeds {extra}: resume with seeds={sorted(runs)}"
        )
    return {s: p for s, p in runs.items() if s in seeds}


def _status(run: Path) -> str | None:
    file = run / "summary.json"
    return json.loads(file.read_text()).get("status") if file.is_file() else None


def _write_seeds_file(out_dir: Path, seeds: list[int], runs: dict[int, Path]) -> None:
    body = {"seeds": seeds, "runs": {str(s): str(runs[s].resolve()) for s in seeds}}
    atomic_write_text(out_dir / SEEDS_FILE, json.dumps(body, indent=2))


def _member_overrides(cfg: DictConfig) -> list[str]:
    """The experiment's command-line overrides, less the keys each seed's run sets itself, plus
    the pinned data seed and no progress bar (several runs share one terminal)."""
    from hydra.core.hydra_config import HydraConfig

    given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    keep = [o for o in given if o.lstrip("~+").split("=", 1)[0] not in _OWN_KEYS]
    # a sweep trial's seeds are its members, not trials: the experiment reports to the study
    keep = [o for o in keep if not o.lstrip("~+").startswith("optuna_trial")]
    data_seed = OmegaConf.select(cfg, "data.source.seed")
    if data_seed is not None:
        keep.append(f"data.source.seed={int(data_seed)}")
    if OmegaConf.select(cfg, "callbacks.progress_bar") is not None:
        keep.append("callbacks.progress_bar=null")
    if OmegaConf.select(cfg, "logger.wandb") is not None and not any(
        o.lstrip("+").startswith("logger.wandb.group=") for o in given
    ):  # every seed's W&B run in one group, named by the experiment (a sweep trial's: the study)
        trial = cfg.get("optuna_trial")
        group = trial.study if trial else Path(str(cfg.paths.output_dir)).name
        keep.append(f"+logger.wandb.group={group}")
    return keep


def _run_members(
    cfg: DictConfig,
    base: list[str],
    todo: list[int],
    runs: dict[int, Path],
    earlier: dict[int, Path],
    parallel: int,
) -> dict[int, int]:
    """Run ``train.py`` for each seed of ``todo``, ``parallel`` at a time; exit code per seed.
    A signal to this process is passed on to every running seed, and no new one starts."""
    script = Path(str(cfg.paths.root_dir)) / "train.py"
    queue, running, codes = list(todo), {}, {}
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        for proc in running.values():
            proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while queue or running:
            while queue and len(running) < parallel and not received:
                s = queue.pop(0)
                running[s] = _start(script, base, s, runs[s], earlier.get(s))
            for s, proc in list(running.items()):
                if proc.poll() is not None:
                    codes[s] = proc.returncode
                    del running[s]
                    _log_finished(s, runs[s], proc.returncode)
            if received and not running:
                break
            time.sleep(0.2)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return codes


def _start(script: Path, base: list[str], seed: int, run: Path, earlier: Path | None) -> Any:
    # hydra.mode=RUN: a member of a sweep trial (hparams_search sets MULTIRUN) is one run
    args = [*base, f"hydra.run.dir={run}", f"seed={seed}", "seeds=null", "hydra.mode=RUN"]
    last = earlier / "checkpoints" / "last.ckpt" if earlier is not None else None
    if last is not None and last.is_file():
        args.append(f"ckpt_path={last}")
    stdout = open(_log_file(run), "ab")  # noqa: SIM115 (the child holds it open)
    log.info("seed %d: training in %s%s", seed, run, f" (resuming {last})" if last else "")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), *args], stdout=stdout, stderr=subprocess.STDOUT, env=env
    )


def _log_file(run: Path) -> Path:
    """Where a seed's console output goes: beside its run directory, which Hydra's run-dir
    guard needs empty."""
    return run.parent / f"{run.name}.log"


def _log_finished(seed: int, run: Path, code: int) -> None:
    if code == 0:
        val = (_read_summary(run).get("val") or {}).get("agent", {})
        log.info("seed %d: done, val Sharpe %.2f (%s)", seed, val.get("sharpe", np.nan), run)
    else:
        log.error("seed %d: exited %d; its output is in %s", seed, code, _log_file(run))


def _read_summary(run: Path) -> dict[str, Any]:
    from adan.tasks.sweep import read_summary

    return read_summary(run)


def aggregate(per_seed: dict[int, dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Every seed's summary, and the mean and standard deviation (ddof 1) over the seeds that
    have it of each ``split/strategy/metric`` figure and of the objective."""
    out: dict[str, Any] = {"status": "completed", "seeds": seeds, "mean": {}, "sd": {}}
    out["per_seed"] = {str(s): per_seed[s] for s in seeds}
    incomplete = [s for s in seeds if per_seed[s].get("status") != "completed"]
    if incomplete:
        out["status"] = "incomplete"
        out["incomplete"] = incomplete
    for split in ("train", "val", "test"):
        tables = [per_seed[s].get(split) for s in seeds if per_seed[s].get(split)]
        if not tables:
            continue
        for who in tables[0]:
            for key in tables[0][who]:
                values = [t.get(who, {}).get(key) for t in tables]
                if not all(isinstance(v, int | float) for v in values):
                    continue
                m, sd = mean_sd(values)
                out["mean"].setdefault(split, {}).setdefault(who, {})[key] = m
                out["sd"].setdefault(split, {}).setdefault(who, {})[key] = sd
    objectives = [per_seed[s].get("objective") for s in seeds if per_seed[s].get("objective")]
    if objectives:
        metric = next(iter(objectives[0]))
        m, sd = mean_sd([o[metric] for o in objectives])
        out["objective"] = {metric: m}  # what a sweep over this experiment maximises
        out["objective_sd"] = {metric: sd}
    bpy = [per_seed[s].get("bars_per_year") for s in seeds if per_seed[s].get("bars_per_year")]
    if bpy:
        out["bars_per_year"] = bpy[0]
    return out


def print_seeds_table(summary: dict[str, Any]) -> None:
    """The agent on each split, mean ± sd over seeds and each seed, beside buy-and-hold."""
    from rich.console import Console
    from rich.table import Table

    seeds = summary["seeds"]
    table = Table(title=f"{len(seeds)} seeds {seeds}: mean ± sd over seeds")
    for col in ("split", "strategy", "Sharpe", "per seed", "total return", "turnover", "costs"):
        table.add_column(col)
    for split, whos in summary["mean"].items():
        for who, m in whos.items():
            sd = summary["sd"][split][who]
            each = [
                summary["per_seed"][str(s)].get(split, {}).get(who, {}).get("sharpe") for s in seeds
            ]
            table.add_row(
                split,
                who,
                _pm(m.get("sharpe"), sd.get("sharpe"), "{:.2f}"),
                ", ".join("—" if v is None else f"{v:.2f}" for v in each),
                _pm(m.get("total_return"), sd.get("total_return"), "{:.1%}"),
                _pm(m.get("turnover"), sd.get("turnover"), "{:.0f}"),
                _pm(m.get("costs"), sd.get("costs"), "{:.1%}"),
            )
    Console(width=140).print(table)


def _pm(m: float | None, sd: float | None, fmt: str) -> str:
    if m is None or not np.isfinite(m):
        return "—"
    if sd is None or not np.isfinite(sd):
        return fmt.format(m)
    return f"{fmt.format(m)} ± {fmt.format(sd)}"
