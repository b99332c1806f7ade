"""Backtest: a strategy over a whole split, one continuous episode, with the training costs.

One engine scores everything: the agent during training (``val/sharpe`` …), the closing
summary, ``eval.py``, and the baselines beside the agent. A strategy is an *actor*: a function
from the observation (and the bar index) to actions, stepped through the same
``MarketSimulator`` the agent trained in, so fills, costs and timing are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import torch

from adan.agents.inference import small_batch_inference
from adan.agents.rollout import obs_to_tensor
from adan.evaluation.metrics import performance
from adan.evaluation.records import BacktestRecord
from adan.market.simulator import MarketSimulator
from adan.market.spec import MarketSpec

Actor = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]  # (obs, bar t [N]) -> [N, A]


class PolicyActor:
    """A trained policy's deterministic (mode) action: its ``act`` (the actor alone), on the
    native convolution when the batch has a few rows (`adan.agents.inference`)."""

    def __init__(self, policy: torch.nn.Module) -> None:
        self.policy = policy
        self.device = next(policy.parameters()).device

    def __call__(self, obs: dict[str, np.ndarray], t: np.ndarray | None) -> np.ndarray:
        rows = len(obs["market"])  # t is None when trading live
        with torch.no_grad(), small_batch_inference(rows, self.device):
            action = self.policy.act(obs_to_tensor(obs, self.device))
        return self.policy.to_env_action(action)


def run_backtest(
    actor: Actor,
    spec: MarketSpec,
    num_runs: int = 1,
    seed: int = 0,
    name: str = "agent",
) -> BacktestRecord:
    """Step ``num_runs`` accounts with ``actor`` over ``spec``'s data, from bar ``window-1``
    (``spec.window``) to the second-to-last
    bar (the simulator keeps the last one spare), marking each at the next bar's close.

    Every run starts at the same bar; runs differ only through the actor (e.g. one random
    seed each). The trading config's ruin threshold does not apply: a backtest scores every
    strategy over the same whole period, however badly it does.
    """
    record, ended = _simulate(actor, spec, num_runs, seed, name)
    return _first_steps(record, int(ended.max()))


def _simulate(
    actor: Actor, spec: MarketSpec, num_runs: int, seed: int, name: str
) -> tuple[BacktestRecord, np.ndarray]:
    """The whole period's record (a run that ended keeps its last values) and the step each
    run ended at [num_runs]; stops early once every run has ended."""
    data, window = spec.data, spec.window
    length = len(data) - window - 1
    if length < 1:
        raise ValueError(f"a backtest needs more than window + 1 = {window + 1} bars")
    trading = replace(spec.trading, ruin_threshold=0.0)
    sim = MarketSimulator(replace(spec, trading=trading), num_runs, length, seed=seed)
    obs = sim.reset(seed=seed)
    start = int(sim.t[0])
    a = data.num_assets
    equity = np.empty((length + 1, num_runs))
    weights = np.zeros((length + 1, num_runs, a))
    costs = np.zeros((length, num_runs))
    turnover = np.zeros((length, num_runs))
    equity[0] = trading.initial_cash
    alive = np.ones(num_runs, dtype=bool)
    ended = np.full(num_runs, length)
    for k in range(length):
        obs, _, terminated, truncated, info = sim.step(actor(obs, sim.t.copy()))
        eq = np.where(alive, info["equity"], equity[k])
        equity[k + 1] = eq
        # the book after the step, marked at the bar's close (a run that ended stays put)
        held = sim.portfolio.units * data.close[start + k + 1] / eq[:, None]
        weights[k + 1] = np.where(alive[:, None], held, weights[k])
        costs[k] = np.where(alive, info["cost"], 0.0)
        turnover[k] = np.where(alive, info["turnover"], 0.0)
        done = alive & (terminated | truncated)
        ended[done] = k + 1
        alive &= ~done
        if not alive.any():
            break
    rows = slice(start, start + length + 1)
    record = BacktestRecord(
        name=name,
        timestamps=data.timestamps[rows],
        equity=equity,
        weights=weights,
        costs=costs,
        turnover=turnover,
        close=data.close[rows],
        assets=tuple(data.assets),
        regimes=None if data.regimes is None else data.regimes[rows],
        initial_cash=trading.initial_cash,
    )
    return record, ended


def _first_steps(
    record: BacktestRecord, steps: int, runs: slice = slice(None), name: str | None = None
) -> BacktestRecord:
    """``record`` cut to its first ``steps`` steps and the runs ``runs``."""
    bars = slice(0, steps + 1)
    return replace(
        record,
        name=record.name if name is None else name,
        timestamps=record.timestamps[bars],
        equity=record.equity[bars, runs].copy(),
        weights=record.weights[bars, runs].copy(),
        costs=record.costs[:steps, runs].copy(),
        turnover=record.turnover[:steps, runs].copy(),
        close=record.close[bars],
        regimes=None if record.regimes is None else record.regimes[bars],
    )


class _Stacked:
    """Several actors as one: rows ``[start, stop)`` of the batch are one actor's runs, and it
    sees only those rows (so a policy's forward pass has its own batch size, as alone)."""

    def __init__(self, actors: Mapping[str, tuple[Actor, int]]) -> None:
        self.parts: list[tuple[Actor, slice]] = []
        start = 0
        for actor, runs in actors.values():
            self.parts.append((actor, slice(start, start + runs)))
            start += runs
        self.runs = start

    def __call__(self, obs: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
        out = [actor({k: v[rows] for k, v in obs.items()}, t[rows]) for actor, rows in self.parts]
        return np.concatenate([np.asarray(a, dtype=np.float32) for a in out])


def run_backtests(
    actors: Mapping[str, tuple[Actor, int]], spec: MarketSpec, seed: int = 0
) -> dict[str, BacktestRecord]:
    """``run_backtest`` of every ``name: (actor, runs)`` over the same ``spec``, stepped as one
    batch of the simulator: one pass over the bars instead of one per strategy. Each record is
    the one ``run_backtest`` gives alone, bit for bit: accounts never interact, every run
    starts at the same bar, and each actor sees only its own runs.

    Needs a single trading profile (``trading.only(name)``): with several, the simulator deals
    the profiles out over the whole batch, so a strategy's runs would change profile.
    """
    profiles = [n for n, _ in spec.trading.profile_configs()]
    if len(actors) > 1 and len(profiles) > 1:
        raise ValueError(
            f"run_backtests steps strategies as one batch of a single profile; the trading "
            f"config has {profiles}: pass trading.only(<profile>)"
        )
    stacked = _Stacked(actors)
    record, ended = _simulate(stacked, spec, stacked.runs, seed, "batch")
    return {
        name: _first_steps(record, int(ended[rows].max()), rows, name)
        for name, (_, rows) in zip(actors, stacked.parts, strict=True)
    }


def record_performance(record: BacktestRecord, bars_per_year: float, run: int = 0) -> dict:
    """``performance`` of one run of a record."""
    return performance(
        record.equity[:, run],
        bars_per_year,
        record.turnover[:, run],
        record.costs[:, run],
        record.weights[:, run],
    )


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
