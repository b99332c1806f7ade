"""Per-episode trading statistics, accumulated online over the batch and reported at the end."""

from __future__ import annotations

import time

import numpy as np

_FLOAT = (
    "ret_sum",
    "ret_sq_sum",
    "max_drawdown",
    "turnover",
    "costs",
    "elapsed_before",
)
_INT = ("length", "hold_bars", "win_bars", "trades", "stop_exits", "risk_clips")


class EpisodeStats:
    """Running sums per env for the gymnasium ``episode`` and our ``trading`` summaries;
    `kernels.close_bar` adds each step.

    Sharpe uses per-bar net simple returns (mean / sample std, annualised by
    ``sqrt(bars_per_year)``); win rate is the fraction of bars with positive net PnL among
    bars that held a position (0 if none did); costs are cash paid over initial equity;
    trades counts (bar, asset) fills with a non-zero quantity, stop exits included;
    ``stop_exits`` the fills made by stops and targets; ``risk_clips`` the steps on which a
    risk limit changed the agent's orders.
    """

    def __init__(self, num_envs: int, initial_cash: float, bars_per_year: float) -> None:
        self.initial_cash = float(initial_cash)
        self.bars_per_year = float(bars_per_year)
        for name in _FLOAT:
            setattr(self, name, np.zeros(num_envs))
        for name in _INT:
            setattr(self, name, np.zeros(num_envs, dtype=np.int64))
        self.start_time = np.full(num_envs, time.perf_counter())

    def reset(self, idx: np.ndarray | slice) -> None:
        for name in _FLOAT + _INT:
            getattr(self, name)[idx] = 0
        self.start_time[idx] = time.perf_counter()

    def summary(self, done: np.ndarray, equity: np.ndarray) -> dict[str, dict | np.ndarray]:
        """Vector-env info entries for the envs where ``done``: gymnasium's ``episode``
        {l, t} and ``trading`` {log_return, sharpe, max_drawdown, win_rate, turnover,
        costs, trades, final_equity}, each [N] with zeros where not done, plus ``_`` masks."""
        n = np.maximum(self.length, 1)
        mean = self.ret_sum / n
        # sample std (ddof=1), as evaluation.metrics.performance and empyrical use
        var = (self.ret_sq_sum - n * mean * mean) / np.maximum(n - 1, 1)
        std = np.sqrt(np.maximum(var, 0.0))
        sharpe = np.divide(mean, std, out=np.zeros_like(mean), where=std > 1e-12)
        sharpe *= np.sqrt(self.bars_per_year)
        win_rate = np.divide(
            self.win_bars, self.hold_bars, out=np.zeros_like(mean), where=self.hold_bars > 0
        )
        elapsed = self.elapsed_before + time.perf_counter() - self.start_time
        trading = {
            "log_return": np.log(np.maximum(equity, 1e-300) / self.initial_cash),
            "sharpe": sharpe,
            "max_drawdown": self.max_drawdown,
            "win_rate": win_rate,
            "turnover": self.turnover,
            "costs": self.costs / self.initial_cash,
            "trades": self.trades,
            "stop_exits": self.stop_exits,
            "risk_clips": self.risk_clips,
            "final_equity": equity,
        }
        trading = {k: np.where(done, v, 0).astype(v.dtype) for k, v in trading.items()}
        episode = {  # the env adds the episode's return "r" (rewards are not the market's)
            "l": np.where(done, self.length, 0).astype(np.int32),
            "t": np.where(done, np.round(elapsed, 6), 0.0),
        }
        mask = done.copy()
        return {"episode": episode, "_episode": mask, "trading": trading, "_trading": mask.copy()}

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {name: getattr(self, name).copy() for name in _FLOAT + _INT}
        state["elapsed_before"] = self.elapsed_before + time.perf_counter() - self.start_time
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name in _FLOAT + _INT:
            current = getattr(self, name)
            setattr(self, name, np.asarray(state[name], dtype=current.dtype).copy())
        self.start_time = np.full(len(self.length), time.perf_counter())
