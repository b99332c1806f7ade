"""The eval task: rebuild a trained agent and its data from checkpoints, backtest it over a
whole held-out split beside the baselines, and write the report.

``eval.py`` is a thin Hydra entry point around :func:`evaluate`.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from adan.checkpoint_format import CONFIG_KEY, DATA_KEY
from adan.data.bars import MarketData
from adan.errors import CheckpointError
from adan.evaluation.backtest import PolicyActor, record_performance, run_backtests
from adan.evaluation.baselines import (
    LABELS,
    baseline_actors,
    buy_and_hold,
    choose_momentum_lookback,
    run_strategies,
)
from adan.evaluation.checkpoint import (
    gym_task,
    load_checkpoint,
    market_from_checkpoint,
    policy_from_checkpoint,
    resolve_checkpoint,
)
from adan.evaluation.ensemble import COMBINE, ModelEnsemble, weights_from_scores
from adan.evaluation.metrics import bar_returns
from adan.evaluation.records import BacktestRecord, EvaluationResult
from adan.market.spec import MarketSpec

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def score(
    records: dict[str, BacktestRecord],
    bars_per_year: float,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[dict, dict, dict, dict]:
    """(metrics, spread, sharpe_ci, blocks) of every record; a multi-run record gets the mean
    over its runs as its metrics and their standard deviation as its spread. ``blocks``: the
    bootstrap's mean block length of each interval and how it was chosen
    (``adan.evaluation.block_length.bootstrap_block``)."""
    from adan.evaluation.block_length import bootstrap_block
    from adan.evaluation.bootstrap import sharpe_confidence_interval

    metrics, spread, ci, blocks = {}, {}, {}, {}
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
            returns = bar_returns(rec.equity[:, 0])  # the returns the Sharpe ratio is of
            block, how = bootstrap_block(returns, rec.weights[1:, 0])
            blocks[name] = {"mean_block": block, "chosen_by": how}
            ci[name] = sharpe_confidence_interval(
                returns, bars_per_year, n_boot=n_boot, mean_block=block, seed=seed
            )
    return metrics, spread, ci, blocks


def evaluate_split(
    actor: Any,
    spec: MarketSpec,
    baselines: list[str] | tuple[str, ...] = ("buy_and_hold", "flat", "random", "ma_crossover"),
    random_runs: int = 5,
    ma: tuple[int, int] = (24, 96),
    n_boot: int = 1000,
    seed: int = 0,
    momentum_lookback: int = 24,
) -> EvaluationResult:
    """The agent (``actor``) and the baselines over the whole of ``spec``'s data, scored;
    ``meta["versus_best_rule"]`` is the agent's Sharpe minus the best simple rule's, with its
    paired bootstrap interval over the same bars."""
    data, trading, bars_per_year = spec.data, spec.trading, spec.bars_per_year
    # the agent and every baseline that trades by the same rules: one batch of the simulator
    strategies = {"agent": (actor, 1, trading)}
    strategies.update(
        baseline_actors(
            list(baselines),
            spec,
            random_runs=random_runs,
            seed=seed,
            ma_fast=ma[0],
            ma_slow=ma[1],
            momentum_lookback=momentum_lookback,
        )
    )
    records = run_strategies(strategies, spec, seed=seed)
    if "buy_and_hold" in baselines:
        records["buy_and_hold"] = buy_and_hold(spec)
    records = {name: records[name] for name in ("agent", *baselines)}
    metrics, spread, ci, blocks = score(records, bars_per_year, n_boot, seed)
    versus = _versus_best_rule(records, metrics, blocks, bars_per_year, n_boot, seed)
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
            "borrow_rate": trading.borrow_rate,
        },
        "sharpe_ci_blocks": blocks,
        "versus_best_rule": versus,
        "labels": {
            **LABELS,
            "ma_crossover": f"MA crossover {ma[0]}/{ma[1]}",
            "ma_long_short": f"MA long/short {ma[0]}/{ma[1]}",
            "momentum": f"momentum {momentum_lookback}-bar",
            "random": f"random policy ({random_runs} seeds)",
        },
    }
    return EvaluationResult(meta["split"], records, metrics, spread, ci, meta)


def _versus_best_rule(
    records: dict[str, BacktestRecord],
    metrics: dict,
    blocks: dict,
    bars_per_year: float,
    n_boot: int,
    seed: int,
) -> dict | None:
    """The agent against the simple rule with the best Sharpe ratio here: the difference of
    their Sharpe ratios and its paired interval (the agent's block length); None without a
    rule."""
    from adan.evaluation.baselines import RULES
    from adan.evaluation.bootstrap import sharpe_difference_interval

    rules = [n for n in RULES if n in records and np.isfinite(metrics[n].get("sharpe", np.nan))]
    if not rules or "agent" not in blocks:
        return None
    best = max(rules, key=lambda n: metrics[n]["sharpe"])
    diff, low, high = sharpe_difference_interval(
        bar_returns(records["agent"].equity[:, 0]),
        bar_returns(records[best].equity[:, 0]),
        bars_per_year,
        mean_block=blocks["agent"]["mean_block"],
        n_boot=n_boot,
        seed=seed,
    )
    return {"rule": best, "difference": diff, "low": low, "high": high}


def _minute(t: np.datetime64) -> str:
    return str(np.datetime64(t, "m")).replace("T", " ")


def select_period(data: MarketData, period: Any, window: int) -> MarketData:
    """Bars of ``data`` from ``period[0]`` to ``period[1]`` (dates or None; a bare date as the
    end means the end of that day; a single string is a start), plus the ``window - 1`` bars
    before the start that the first observation needs and the one spare bar after the end
    that the simulator keeps."""
    if not period:
        return data
    if isinstance(period, str):
        period = [period, None]
    start, end = (list(period) + [None, None])[:2]
    ts = data.timestamps
    split = data.meta.get("split")
    span = f"{_minute(ts[0])} .. {_minute(ts[-1])}"
    i0 = 0 if start is None else int(np.searchsorted(ts, np.datetime64(str(start))))
    if end is None:
        i1 = len(ts)
    else:
        stop = np.datetime64(str(end))
        if len(str(end).strip()) <= 10:  # a date alone: the whole day
            stop = stop.astype("datetime64[D]") + np.timedelta64(1, "D")
            i1 = int(np.searchsorted(ts, stop, "left"))
        else:
            i1 = int(np.searchsorted(ts, stop, "right"))
    if i0 >= len(ts) or i1 == 0 or i1 <= i0:
        raise ValueError(f"period {list(period)} lies outside the {split} split ({span})")
    if start is not None and np.datetime64(str(start)) < ts[0]:
        log.warning("period starts before the %s split; it starts at %s", split, span[:16])
    i0 = max(0, i0 - (window - 1))
    i1 = min(len(ts), i1 + 1)  # the spare bar: the last bar asked for is then scored
    if i1 - i0 < window + 2:
        raise ValueError(
            f"period {list(period)} leaves {i1 - i0} bars of the {split} split ({span}); a "
            f"backtest with env.window={window} needs {window + 2}"
        )
    return data.slice(i0, i1, name=split)


COST_KEYS = ("fee_bps", "half_spread_bps", "slippage_bps", "initial_cash")


def _one_profile(trading: Any, name: str | None) -> Any:
    """A backtest runs one account: the profile ``name`` of a multi-profile agent (default:
    its first)."""
    names = [n for n, _ in trading.profile_configs()]
    if len(names) == 1:
        if name not in (None, names[0]):
            raise ValueError(f"profile={name!r}: the agent was trained with {names[0]!r} only")
        return trading
    chosen = names[0] if name is None else name
    log.info("the agent was trained with profiles %s; evaluating %r (set profile=)", names, chosen)
    return trading.only(chosen)


MATCHING = ("env.window", "data.bars_per_year", "trading.action_mode", "trading.allow_short")


def _check_members(files: list[Path], ckpts: list[dict[str, Any]]) -> None:
    """Ensemble members must read the same data and act in the same way."""
    first = ckpts[0]
    for f, ck in zip(files[1:], ckpts[1:], strict=True):
        if ck[DATA_KEY] != first[DATA_KEY]:
            raise ValueError(
                f"{f} was trained on other data (assets, features or scalers) than "
                f"{files[0]}; an ensemble needs one data contract"
            )
        for key in MATCHING:
            a = OmegaConf.select(OmegaConf.create(first[CONFIG_KEY]), key)
            b = OmegaConf.select(OmegaConf.create(ck[CONFIG_KEY]), key)
            if a != b:
                raise ValueError(f"{f} has {key}={b}, {files[0]} has {a}: not one ensemble")


def _training_overlap(contract: dict[str, Any], data: MarketData) -> dict[str, bool]:
    """Which of the checkpoint's training and selection periods the evaluated bars overlap."""
    lo, hi = data.timestamps[0], data.timestamps[-1]
    out = {}
    for name, (start, end) in (contract.get("periods") or {}).items():
        out[name] = bool(np.datetime64(start) <= hi and lo <= np.datetime64(end))
    return out


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Run the eval task (see ``conf/eval.yaml``); returns the metrics written. A multi-seed
    experiment's directory is scored seed by seed (``evaluate_seeds``)."""
    from adan.evaluation.report import write_report
    from adan.tasks.seeds import seed_runs

    if cfg.ckpt_path and not cfg.ensemble.ckpt_paths:
        runs = seed_runs(Path(str(cfg.ckpt_path)))
        if runs is not None:
            return evaluate_seeds(cfg, runs)

    paths = list(cfg.ensemble.ckpt_paths or []) or ([cfg.ckpt_path] if cfg.ckpt_path else [])
    if not paths:
        raise ValueError("give ckpt_path=<checkpoint or run dir> or ensemble.ckpt_paths=[...]")
    if cfg.split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {cfg.split!r}")
    if cfg.ensemble.combine not in COMBINE:
        raise ValueError(f"ensemble.combine must be one of {COMBINE}, got {cfg.ensemble.combine!r}")
    files = [resolve_checkpoint(p) for p in paths]
    ckpts = [load_checkpoint(f) for f in files]
    for f, ck in zip(files, ckpts, strict=True):
        if ck[DATA_KEY] is None:
            raise CheckpointError(
                f"{f} {gym_task(ck)}, not on market data: eval.py backtests trading agents "
                "(the gym run's own summary.json has its evaluation episodes)"
            )
    first = ckpts[0]
    _check_members(files, ckpts)
    bad = sorted(set(cfg.trading or {}) - set(COST_KEYS))
    if bad:
        raise ValueError(
            f"trading.{bad[0]} cannot be overridden at evaluation: it changes what the agent's "
            f"actions mean; only {list(COST_KEYS)} can"
        )
    train_cfg = OmegaConf.create(first[CONFIG_KEY])
    data_overrides = OmegaConf.to_container(cfg.data, resolve=True) if cfg.data else {}
    market = market_from_checkpoint(first, data_overrides)
    trading = instantiate(OmegaConf.merge(train_cfg.trading, cfg.trading or {}))
    trading = _one_profile(trading, cfg.get("profile"))
    window = int(train_cfg.env.window)
    data = select_period(market[cfg.split], cfg.period, window)
    # the evaluated bars as the agent trades them; the annualisation is the training run's
    # (data.bars_per_year, or the bars' own), checked against these bars when they were built
    spec = MarketSpec.of(data, trading, window=window)
    overlap = _training_overlap(first[DATA_KEY], data)
    if overlap.get("val"):
        log.warning(
            "the evaluated bars overlap the validation period the checkpoint was selected on "
            "(best checkpoint, ensemble weights): read the results as optimistic"
        )

    policies = [policy_from_checkpoint(ck, spec) for ck in ckpts]
    if len(policies) == 1:
        policy, member_weights = policies[0], None
    else:
        member_weights = None
        if cfg.ensemble.combine == "weighted":
            val = replace(spec, data=market["val"])
            members = {str(i): (PolicyActor(p), 1) for i, p in enumerate(policies)}
            records = run_backtests(members, val)  # every member in one batch
            scores = [
                record_performance(records[str(i)], val.bars_per_year)["sharpe"]
                for i in range(len(policies))
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
    lookback = int(cfg.get("momentum", {}).get("lookback", 24))
    if "momentum" in cfg.baselines and "val" in market and cfg.get("momentum"):
        # chosen on the validation split, never on the bars it is scored on
        candidates = list(cfg.momentum.lookbacks)
        lookback = choose_momentum_lookback(replace(spec, data=market["val"]), candidates)
        log.info("momentum lookback %d bars, chosen on validation from %s", lookback, candidates)
    result = evaluate_split(
        PolicyActor(policy),
        spec,
        baselines=list(cfg.baselines),
        random_runs=int(cfg.random_runs),
        ma=(int(cfg.ma.fast), int(cfg.ma.slow)),
        n_boot=int(cfg.n_boot),
        seed=int(cfg.seed),
        momentum_lookback=lookback,
    )
    result.meta.update(
        checkpoint=", ".join(str(f) for f in files),
        checkpoints=[str(f) for f in files],
        ensemble=None
        if len(files) == 1
        else {"combine": cfg.ensemble.combine, "weights": member_weights},
        in_sample=cfg.split == "train" or overlap.get("train", False),
        overlaps_validation=overlap.get("val", False),
    )
    out_dir = Path(cfg.paths.output_dir)
    written = write_report(result, out_dir)
    print_table(result)
    log.info("report: %s", written.get("report", out_dir))
    for lg in _loggers(cfg, files):
        try:
            log_to_logger(lg, result, written)
        finally:
            _finish(lg)
    return {"metrics": result.metrics, "sharpe_ci": result.sharpe_ci, "meta": result.meta}


def evaluate_seeds(cfg: DictConfig, runs: dict[int, Path]) -> dict[str, Any]:
    """Every seed's run of a multi-seed experiment on the same split, each in
    ``<out>/seed_<s>/`` with its own report, then the experiment's ``metrics.json`` and
    ``report.md``: each seed, mean ± sd over seeds, the rules beside them."""
    from omegaconf import open_dict
    from rich.console import Console

    from adan.evaluation.seeds_report import write_seeds_report
    from adan.tasks.seeds import print_seeds_table

    out_dir = Path(cfg.paths.output_dir)
    per_seed, reports = {}, {}
    for s, run in sorted(runs.items()):
        one = copy.deepcopy(cfg)
        with open_dict(one):
            one.ckpt_path = str(run)
            one.paths.output_dir = str(out_dir / f"seed_{s}")
        log.info("seed %d: %s", s, run)
        per_seed[s] = evaluate(one)
        reports[s] = out_dir / f"seed_{s}" / "report.md"
    summary = write_seeds_report(per_seed, reports, out_dir)
    print_seeds_table(
        {
            "seeds": summary["seeds"],
            "mean": {summary["split"]: {"agent": summary["mean"]["agent"]}},
            "sd": {summary["split"]: {"agent": summary["sd"]["agent"]}},
            "per_seed": {k: {summary["split"]: {"agent": v}} for k, v in summary["agent"].items()},
        }
    )
    beats = summary["beats_best_rule"]
    Console(width=120).print(
        f"The agent beats the best simple rule by a paired interval excluding 0 on "
        f"{beats['seeds']} of {beats['of']} seeds."
    )
    log.info("report: %s", out_dir / "report.md")
    return summary


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
    console = Console(width=120)
    console.print(table)
    from adan.evaluation.report import versus_best_text

    text = versus_best_text(result)
    if text:
        console.print(text)


def _loggers(cfg: DictConfig, files: list[Path]) -> list[Any]:
    """The configured loggers. A W&B run is an ``eval`` job in its training run's group,
    naming that run in its config and, online, using its model artifact
    (``adan.ops.wandb_logger.eval_run_settings``)."""
    from adan.ops.wandb_logger import RunLogger, eval_run_settings, use_training_models

    loggers = []
    for c in (cfg.get("logger") or {}).values():
        if c is None:
            continue
        if not str(c.get("_target_", "")).startswith("adan.ops.wandb_logger."):
            loggers.append(instantiate(c))
            continue
        settings, runs = eval_run_settings(files)
        for key in ("group", "name", "job_type"):  # what the command line set wins
            if c.get(key) is not None:
                settings.pop(key, None)
        lg = instantiate(c, **settings)
        if isinstance(lg, RunLogger):
            use_training_models(lg, runs)
        loggers.append(lg)
    return loggers


def log_to_logger(logger: Any, result: EvaluationResult, written: dict[str, Path]) -> None:
    """Metrics to any Lightning logger; with W&B also the plots, a per-bar table and the report
    (``report.md``, ``metrics.json``, the plots) as a ``report`` artifact."""
    flat = {
        f"eval/{name}/{k}": float(v)
        for name, m in result.metrics.items()
        for k, v in m.items()
        if np.isfinite(v)
    }
    versus = result.meta.get("versus_best_rule") or {}
    for k in ("difference", "low", "high"):  # the agent's Sharpe minus the best rule's
        if k in versus and np.isfinite(versus[k]):
            flat[f"eval/versus_best_rule/{k}"] = float(versus[k])
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
        from adan.ops.wandb_logger import RunLogger, log_report

        if isinstance(logger, RunLogger):
            log_report(logger, written)


def _finish(logger: Any) -> None:
    from pytorch_lightning.loggers import WandbLogger

    if isinstance(logger, WandbLogger):
        import wandb

        wandb.finish()
    else:
        logger.save()
