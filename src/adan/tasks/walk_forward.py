"""Walk-forward: train and evaluate over rolling folds, then one table over all of them.

``python train.py walk_forward=rolling`` cuts the history into folds marching forward in time
(``adan.data.splits.walk_forward_folds``): each fold trains a fresh agent on its train range
(normalised on it alone), validates on the next range, and is judged on the range after that
beside the baselines, with the same costs. Every fold writes its own run directory
(``fold_<k>/``: checkpoints, summary, report and plots); the run directory gets
``walk_forward.json`` and ``walk_forward.md``: each fold's test period and metrics, and their
mean and spread over folds. A sweep over walk-forward runs optimises the mean of the folds'
*validation* metric; the test ranges are only reported.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from adan.evaluation.backtest import PolicyActor
from adan.evaluation.records import EvaluationResult
from adan.tasks.evaluate import evaluate_split
from adan.tasks.fit import fit
from adan.tasks.kinds import is_gym_task

log = logging.getLogger(__name__)
COLUMNS = ("total_return", "sharpe", "max_drawdown", "turnover", "costs")


def walk_forward(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate every fold; write and return the aggregate."""
    from adan.evaluation.report import json_safe, write_report

    if is_gym_task(cfg):
        raise ValueError("walk_forward needs market data (a data group), not a gym task")
    if cfg.get("ckpt_path"):
        raise ValueError("walk_forward trains a fresh agent per fold: drop ckpt_path")
    wf = cfg.walk_forward
    folds = instantiate(cfg.data).build_walk_forward(
        int(wf.n_folds), int(wf.val_bars), wf.train_bars, int(wf.test_bars), bool(wf.expanding)
    )
    root = Path(cfg.paths.output_dir)
    results: list[EvaluationResult] = []
    val_scores: list[dict[str, float]] = []
    for k, splits in enumerate(folds):
        fold_cfg = cfg.copy()
        with open_dict(fold_cfg):
            fold_cfg.paths.output_dir = str(root / f"fold_{k}")
            fold_cfg.walk_forward = None
        log.info(
            "walk-forward fold %d/%d: train %s .. %s, test %s .. %s",
            k + 1,
            len(folds),
            splits["train"].timestamps[0],
            splits["train"].timestamps[-1],
            splits["test"].timestamps[0],
            splits["test"].timestamps[-1],
        )
        fold_summary, module = fit(fold_cfg, splits)
        if fold_summary.get("status") == "interrupted":  # SIGINT/SIGTERM: stop the folds too
            log.warning("walk-forward stopped in fold %d of %d", k + 1, len(folds))
            return {**fold_summary, "fold": k, "folds_done": k}
        val_scores.append(fold_summary["val"]["agent"])
        # the fold's test bars, traded as its validation bars were (rules, window, annualisation)
        test = replace(module.evaluator.spec, data=splits["test"])
        result = evaluate_split(
            PolicyActor(module.policy.eval()),
            test,
            baselines=list(wf.baselines),
            seed=int(cfg.seed),
        )
        result.meta.update(fold=k, in_sample=False)
        write_report(result, root / f"fold_{k}" / "eval")
        results.append(result)
    summary = aggregate(results)
    (root / "walk_forward.json").write_text(json.dumps(json_safe(summary), indent=2))
    (root / "walk_forward.md").write_text(render(summary))
    log.info("walk-forward table: %s", root / "walk_forward.md")
    return {"walk_forward": summary, "objective": _objective(cfg, val_scores)}


def aggregate(results: list[EvaluationResult]) -> dict[str, Any]:
    """Per fold: test period and each strategy's main metrics; over folds: mean and std."""
    folds = [
        {
            "fold": r.meta.get("fold", i),
            "period": r.meta["period"],
            "metrics": {
                s: {c: m.get(c, float("nan")) for c in COLUMNS} for s, m in r.metrics.items()
            },
        }
        for i, r in enumerate(results)
    ]
    strategies = list(results[0].metrics)
    over: dict[str, dict[str, dict[str, float]]] = {}
    for s in strategies:
        values = np.array([[f["metrics"][s][c] for c in COLUMNS] for f in folds], dtype=float)
        with np.errstate(invalid="ignore"):
            over[s] = {
                c: {"mean": float(np.nanmean(values[:, j])), "std": float(np.nanstd(values[:, j]))}
                for j, c in enumerate(COLUMNS)
                if np.isfinite(values[:, j]).any()
            }
    beats = None
    if "buy_and_hold" in strategies:
        beats = sum(
            f["metrics"]["agent"]["sharpe"] > f["metrics"]["buy_and_hold"]["sharpe"] for f in folds
        )
    return {"folds": folds, "over_folds": over, "agent_beats_buy_and_hold": beats}


def render(summary: dict[str, Any]) -> str:
    """walk_forward.md: one row per fold and strategy, then the mean ± std over folds."""
    lines = [
        "# Walk-forward evaluation",
        "",
        "Each fold: a fresh agent trained on its own "
        "train range, judged on the test range after it, costs included.",
        "",
    ]
    lines += [
        "| fold | test period | strategy | total return | Sharpe | max drawdown |",
        "| --: | :-- | :-- | --: | --: | --: |",
    ]
    for f in summary["folds"]:
        for s, m in f["metrics"].items():
            lines.append(
                f"| {f['fold']} | {f['period'][0]} .. {f['period'][1]} | {s} | "
                f"{m['total_return']:+.2%} | {m['sharpe']:.2f} | {m['max_drawdown']:.2%} |"
            )
    lines += [
        "",
        "## Over folds (mean ± std)",
        "",
        "| strategy | total return | Sharpe | max drawdown |",
        "| :-- | --: | --: | --: |",
    ]
    for s, m in summary["over_folds"].items():
        lines.append(
            f"| {s} | {_cell(m, 'total_return', True)} | {_cell(m, 'sharpe', False)} | "
            f"{_cell(m, 'max_drawdown', True)} |"
        )
    n, beats = len(summary["folds"]), summary["agent_beats_buy_and_hold"]
    if beats is not None:
        lines += ["", f"The agent's Sharpe beat buy-and-hold's in {beats} of {n} folds."]
    lines.append("")
    return "\n".join(lines)


def _cell(m: dict[str, dict[str, float]], c: str, pct: bool) -> str:
    if c not in m:
        return "n/a"
    mean, std = m[c]["mean"], m[c]["std"]
    if not pct:
        return f"{mean:.2f} ± {std:.2f}"
    return f"{mean:+.2%} ± {std:.2%}" if c == "total_return" else f"{mean:.2%} ± {std:.2%}"


def _objective(cfg: DictConfig, val_scores: list[dict[str, float]]) -> dict[str, float]:
    """The optimised metric of each fold's validation range, averaged over folds: what a sweep
    may select on. The test ranges are reported, never optimised."""
    name = str(cfg.get("optimized_metric") or "val/sharpe").split("/", 1)[-1]
    values = np.array([v.get(name, float("nan")) for v in val_scores], dtype=float)
    mean = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return {f"walk_forward/val/{name}": mean}
