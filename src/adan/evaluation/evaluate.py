"""The eval task: rebuild a trained agent and its data from checkpoints, backtest it over a
whole held-out split beside the baselines, and write the report.

``eval.py`` is a thin Hydra entry point around :func:`evaluate`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from adan.callbacks.run_spec import CONFIG_KEY, DATA_KEY
from adan.data.bars import MarketData
from adan.evaluation.backtest import PolicyActor, record_performance, run_backtest
from adan.evaluation.baselines import LABELS, run_baselines
from adan.evaluation.checkpoint import (
    load_checkpoint,
    market_from_checkpoint,
    policy_from_checkpoint,
    resolve_checkpoint,
)
from adan.evaluation.ensemble import COMBINE, ModelEnsemble, weights_from_scores
from adan.evaluation.records import BacktestRecord, EvaluationResult

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def score(
    records: dict[str, BacktestRecord],
    bars_per_year: float,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[dict, dict, dict]:
    """(metrics, spread, sharpe_ci) of every record; a multi-run record gets the mean over its
    runs as its metrics and their standard deviation as its spread."""
    from adan.evaluation.bootstrap import sharpe_confidence_interval

    metrics, spread, ci = {}, {}, {}
    for name, rec in records.items():
        runs = [record_performance(rec, bars_per_year, r) for r in range(rec.runs)]
        keys = list(runs[0])
        table = np.array([[m[k] for k in keys] for m in runs], dtype=np.float64)
        with warnings.catch_warnings():  # an all-nan column (a flat book's Sharpe) stays nan
            warnings.simplefilter("ignore", RuntimeWarning)
            metrics[name] = dict(zip(keys, np.nanmean(table, axis=0).tolist(), strict=True))
            if rec.runs > 1:
                spread[name] = dict(zip(keys, np.nanstd(table, axis=0).tolist(), strict=True))
        if rec.runs == 1 and len(rec.equity) > 2:
            eq = rec.equity[:, 0]
            # as ``performance``: a bar that starts with no equity left returns 0
            returns = np.divide(eq[1:], eq[:-1], out=np.ones(len(eq) - 1), where=eq[:-1] > 0)
            returns -= 1.0
            ci[name] = sharpe_confidence_interval(returns, bars_per_year, n_boot=n_boot, seed=seed)
    return metrics, spread, ci


def evaluate_split(
    actor: Any,
    data: MarketData,
    trading: Any,
    reward: Any,
    window: int,
    bars_per_year: float,
    baselines: list[str] | tuple[str, ...] = ("buy_and_hold", "flat", "random", "ma_crossover"),
    random_runs: int = 5,
    ma: tuple[int, int] = (24, 96),
    n_boot: int = 1000,
    seed: int = 0,
) -> EvaluationResult:
    """The agent (``actor``) and the baselines over the whole of ``data``, scored."""
    records = {"agent": run_backtest(actor, data, trading, reward, window, bars_per_year)}
    records.update(
        run_baselines(
            list(baselines),
            data,
            trading,
            reward,
            window,
            bars_per_year,
            random_runs=random_runs,
            seed=seed,
            ma_fast=ma[0],
            ma_slow=ma[1],
        )
    )
    metrics, spread, ci = score(records, bars_per_year, n_boot, seed)
    agent = records["agent"]
    meta = {
        "split": data.meta.get("split", "?"),
        "period": [_minute(agent.timestamps[0]), _minute(agent.timestamps[-1])],
        "bars": len(agent.equity) - 1,
        "assets": list(data.assets),
        "bars_per_year": bars_per_year,
        "costs": {
            "fee_bps": trading.fee_bps,
            "half_spread_bps": trading.half_spread_bps,
            "slippage_bps": trading.slippage_bps,
        },
        "labels": {
            **LABELS,
            "ma_crossover": f"MA crossover {ma[0]}/{ma[1]}",
            "random": f"random policy ({random_runs} seeds)",
        },
    }
    return EvaluationResult(meta["split"], records, metrics, spread, ci, meta)


def _minute(t: np.datetime64) -> str:
    return str(np.datetime64(t, "m")).replace("T", " ")


def select_period(data: MarketData, period: Any, window: int) -> MarketData:
    """Bars of ``data`` from ``period[0]`` to ``period[1]`` (inclusive dates or None), plus the
    ``window - 1`` bars before the start that the first observation needs."""
    if not period:
        return data
    start, end = (list(period) + [None, None])[:2]
    ts = data.timestamps
    i0 = 0 if start is None else int(np.searchsorted(ts, np.datetime64(str(start))))
    i1 = len(ts) if end is None else int(np.searchsorted(ts, np.datetime64(str(end)), "right"))
    i0 = max(0, i0 - (window - 1))
    if i1 - i0 < window + 2:
        raise ValueError(
            f"period {list(period)} leaves {max(i1 - i0, 0)} bars of the "
            f"{data.meta.get('split')} split ({_minute(ts[0])} .. {_minute(ts[-1])}); a "
            f"backtest with env.window={window} needs {window + 2}"
        )
    return data.slice(i0, i1, name=data.meta.get("split"))


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Run the eval task (see ``conf/eval.yaml``); returns the metrics written."""
    from adan.evaluation.report import write_report

    paths = list(cfg.ensemble.ckpt_paths or []) or ([cfg.ckpt_path] if cfg.ckpt_path else [])
    if not paths:
        raise ValueError("give ckpt_path=<checkpoint or run dir> or ensemble.ckpt_paths=[...]")
    if cfg.split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {cfg.split!r}")
    if cfg.ensemble.combine not in COMBINE:
        raise ValueError(f"ensemble.combine must be one of {COMBINE}, got {cfg.ensemble.combine!r}")
    files = [resolve_checkpoint(p) for p in paths]
    ckpts = [load_checkpoint(f) for f in files]
    first = ckpts[0]
    for f, ck in zip(files[1:], ckpts[1:], strict=True):
        if ck[DATA_KEY] != first[DATA_KEY]:
            raise ValueError(
                f"{f} was trained on other data (assets, features or scalers) than {files[0]}; "
                "an ensemble needs one data contract"
            )
    train_cfg = OmegaConf.create(first[CONFIG_KEY])
    data_overrides = OmegaConf.to_container(cfg.data, resolve=True) if cfg.data else {}
    market = market_from_checkpoint(files[0], data_overrides)
    trading = instantiate(OmegaConf.merge(train_cfg.trading, cfg.trading or {}))
    reward = instantiate(train_cfg.reward)
    window, bpy = int(train_cfg.env.window), float(train_cfg.env.bars_per_year)
    data = select_period(market[cfg.split], cfg.period, window)

    policies = [policy_from_checkpoint(ck, data, trading) for ck in ckpts]
    if len(policies) == 1:
        policy, member_weights = policies[0], None
    else:
        member_weights = None
        if cfg.ensemble.combine == "weighted":
            val = market["val"]
            scores = [
                record_performance(
                    run_backtest(PolicyActor(p), val, trading, reward, window, bpy), bpy
                )["sharpe"]
                for p in policies
            ]
            member_weights = weights_from_scores(scores).tolist()
            log.info("ensemble weights from validation Sharpe %s: %s", scores, member_weights)
        policy = ModelEnsemble(policies, member_weights)
        wanted = {"mean": "gaussian", "vote": "categorical"}.get(cfg.ensemble.combine)
        kind = "gaussian" if policy.kind == "gaussian" else "categorical"
        if wanted is not None and kind != wanted:
            raise ValueError(
                f"ensemble.combine={cfg.ensemble.combine} is for "
                f"{'continuous' if wanted == 'gaussian' else 'discrete'} actions; these members "
                f"act {'continuously' if policy.kind == 'gaussian' else 'discretely'}: use "
                f"{'mean' if policy.kind == 'gaussian' else 'vote'} or weighted"
            )
    result = evaluate_split(
        PolicyActor(policy),
        data,
        trading,
        reward,
        window,
        bpy,
        baselines=list(cfg.baselines),
        random_runs=int(cfg.random_runs),
        ma=(int(cfg.ma.fast), int(cfg.ma.slow)),
        n_boot=int(cfg.n_boot),
        seed=int(cfg.seed),
    )
    result.meta.update(
        checkpoint=", ".join(str(f) for f in files),
        checkpoints=[str(f) for f in files],
        ensemble=None
        if len(files) == 1
        else {"combine": cfg.ensemble.combine, "weights": member_weights},
        in_sample=cfg.split == "train",
    )
    out_dir = Path(cfg.paths.output_dir)
    written = write_report(result, out_dir)
    print_table(result)
    log.info("report: %s", written.get("report", out_dir))
    for lg in [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]:
        log_to_logger(lg, result, written)
    return {"metrics": result.metrics, "sharpe_ci": result.sharpe_ci, "meta": result.meta}


def print_table(result: EvaluationResult) -> None:
    """The agent and each baseline, one row each, on the console."""
    from rich.console import Console
    from rich.table import Table

    labels = result.meta.get("labels", {})
    period = " .. ".join(result.meta["period"])
    table = Table(title=f"ADAN eval: {result.split} split, {period}, costs included")
    cols = ("strategy", "total return", "Sharpe", "Sharpe 95% CI", "max drawdown", "trades")
    for col in cols:
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for name, m in result.metrics.items():
        lo, hi = result.sharpe_ci.get(name, (float("nan"), float("nan")))
        table.add_row(
            labels.get(name, name),
            f"{m['total_return']:+.2%}",
            f"{m['sharpe']:.2f}",
            "" if np.isnan(lo) else f"[{lo:.2f}, {hi:.2f}]",
            f"{m['max_drawdown']:.2%}",
            f"{m.get('trades', float('nan')):.0f}",
        )
    Console(width=120).print(table)


def log_to_logger(logger: Any, result: EvaluationResult, written: dict[str, Path]) -> None:
    """Metrics to any Lightning logger; with W&B also the plots and a per-bar table."""
    flat = {
        f"eval/{name}/{k}": float(v)
        for name, m in result.metrics.items()
        for k, v in m.items()
        if np.isfinite(v)
    }
    logger.log_metrics(flat)
    from pytorch_lightning.loggers import WandbLogger

    if isinstance(logger, WandbLogger):
        import wandb

        run = logger.experiment
        run.log(
            {
                f"eval/plots/{p.stem}": wandb.Image(str(p))
                for k, p in written.items()
                if str(p).endswith(".png")
            }
        )
        agent = result.records["agent"]
        columns = ["timestamp", "equity", *[f"weight_{a}" for a in agent.assets]]
        rows = [
            [str(t), float(e), *map(float, w)]
            for t, e, w in zip(
                agent.timestamps, agent.equity[:, 0], agent.weights[:, 0], strict=True
            )
        ]
        run.log({"eval/bars": wandb.Table(columns=columns, data=rows)})
        wandb.finish()
    else:
        logger.save()
