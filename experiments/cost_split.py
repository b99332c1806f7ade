"""Split an agent's test-split costs into trading costs and the borrow of its shorts.

    python experiments/cost_split.py RUN_DIR [RUN_DIR ...]

eval.py reports all costs together; the borrow of short positions (trading.borrow_rate, per
bar on short notional) does not fall with turnover, so a no-churn setting is judged on the
trading part. Each run is backtested on its test split as eval.py does; the borrow is summed
bar by bar from the short weights held and the equity, the rest is trading costs.
"""

from __future__ import annotations

import sys

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf

from adan.evaluation.backtest import PolicyActor, run_backtest
from adan.evaluation.checkpoint import (
    load_checkpoint,
    market_from_checkpoint,
    policy_from_checkpoint,
)
from adan.market.spec import MarketSpec


def split(run: str) -> tuple[float, float, float]:
    """(all costs, borrow, trading costs) over the test split, as fractions of start cash."""
    ck = load_checkpoint(f"{run}/checkpoints/last.ckpt")
    cfg = OmegaConf.create(ck["adan_config"])
    trading = instantiate(cfg.trading)
    spec = MarketSpec.of(market_from_checkpoint(ck, {})["test"], trading, window=cfg.env.window)
    rec = run_backtest(PolicyActor(policy_from_checkpoint(ck, spec)), spec)
    held, equity = rec.weights[:-1, 0], rec.equity[:-1, 0]  # the book during each bar
    short = np.maximum(-held, 0.0).sum(axis=1)
    borrow = float((trading.borrow_rate / spec.bars_per_year * short * equity).sum())
    total = float(rec.costs.sum())
    cash = trading.initial_cash
    return total / cash, borrow / cash, (total - borrow) / cash


if __name__ == "__main__":
    print("| run | costs / start cash | borrow of shorts | trading costs |")
    print("|---|---|---|---|")
    for run in sys.argv[1:]:
        total, borrow, trade = split(run)
        print(f"| {run} | {total:.1%} | {borrow:.1%} | {trade:.1%} |", flush=True)
