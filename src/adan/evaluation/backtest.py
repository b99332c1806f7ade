"""Backtest: the deterministic policy over a whole split, one continuous episode, with the
training costs, beside buy-and-hold on the same bars.

Used by the validation loop during training (``val/sharpe`` …) and by the closing summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adan.agents.rollout import obs_to_tensor
from adan.data.bars import MarketData
from adan.evaluation.baselines import buy_and_hold_equity
from adan.evaluation.metrics import performance
from adan.market.config import TradingConfig
from adan.market.simulator import MarketSimulator
from adan.rewards.base import RewardFunction


@dataclass
class BacktestResult:
    equity: np.ndarray  # [n+1] equity at the start bar's close, then after each bar
    turnover: float
    costs: float  # cash paid in fees, spread and slippage, as a fraction of initial cash
    start: int  # bar index (within the split) of the first decision


def run_backtest(
    policy: torch.nn.Module,
    data: MarketData,
    trading: TradingConfig,
    reward: RewardFunction,
    window: int,
    bars_per_year: float,
) -> BacktestResult:
    """Step one env from bar ``window-1`` to the last bar with the policy's mode action."""
    length = len(data) - window - 1
    sim = MarketSimulator(
        data,
        num_envs=1,
        window=window,
        episode_length=length,
        trading=trading,
        reward=reward,
        seed=0,
        bars_per_year=bars_per_year,
    )
    obs = sim.reset(seed=0)
    start = int(sim.t[0])
    device = next(policy.parameters()).device
    equity = [trading.initial_cash]
    turnover = costs = 0.0
    with torch.no_grad():
        for _ in range(length):
            action, _, _ = policy(obs_to_tensor(obs, device), deterministic=True)
            obs, _, terminated, truncated, info = sim.step(policy.to_env_action(action))
            equity.append(float(info["equity"][0]))
            turnover += float(info["turnover"][0])
            costs += float(info["fee"][0] + info["spread"][0] + info["slippage"][0])
            if terminated[0] or truncated[0]:
                break
    return BacktestResult(np.asarray(equity), turnover, costs / trading.initial_cash, start)


class TradingEvaluator:
    """Scores a policy on one split: ``__call__`` gives the agent's metrics (for ``val/…``),
    ``compare`` the agent beside buy-and-hold."""

    def __init__(
        self,
        data: MarketData,
        trading: TradingConfig,
        reward: RewardFunction,
        window: int,
        bars_per_year: float,
    ) -> None:
        split = data.meta.get("split", "evaluation")
        if len(data) < window + 2:
            raise ValueError(
                f"the {split} split has {len(data)} bars; a backtest with env.window={window} "
                f"needs at least {window + 2}: lengthen the data or change data.split"
            )
        self.data, self.trading, self.reward = data, trading, reward
        self.window, self.bars_per_year = window, bars_per_year

    def __call__(self, policy: torch.nn.Module) -> dict[str, float]:
        result = run_backtest(
            policy, self.data, self.trading, self.reward, self.window, self.bars_per_year
        )
        return performance(result.equity, self.bars_per_year, result.turnover, result.costs)

    def compare(self, policy: torch.nn.Module) -> dict[str, dict[str, float]]:
        result = run_backtest(
            policy, self.data, self.trading, self.reward, self.window, self.bars_per_year
        )
        bh = buy_and_hold_equity(self.data, result.start, self.trading)[: len(result.equity)]
        return {
            "agent": performance(result.equity, self.bars_per_year, result.turnover, result.costs),
            "buy_and_hold": performance(bh, self.bars_per_year),
        }


def print_summary(summary: dict) -> None:
    """A closing table: agent vs buy-and-hold on each split."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ADAN: final policy, deterministic backtest with costs (train = in-sample)")
    for col in (
        "split",
        "strategy",
        "total return",
        "Sharpe",
        "max drawdown",
        "turnover",
        "costs / start equity",
    ):
        table.add_column(col, justify="right" if col not in ("split", "strategy") else "left")
    for split in ("train", "val"):
        for who, m in summary.get(split, {}).items():
            table.add_row(
                split,
                who.replace("_", "-"),
                f"{m['total_return']:+.2%}",
                f"{m['sharpe']:.2f}",
                f"{m['max_drawdown']:.2%}",
                f"{m['turnover']:.1f}",
                f"{m['costs']:.2%}",
            )
    Console(width=120).print(table)
