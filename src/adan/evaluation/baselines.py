"""Reference strategies, scored over the same bars with the same costs as the agent.

- ``buy_and_hold``: an equal-weight book bought at the first fill (paying the same fees,
  spread and slippage) and held: units, not weights, so it never rebalances.
- ``flat``: all cash, never trades (the zero line a strategy must beat after costs).
- ``random``: a seeded random policy (uniform target weights, or uniform discrete choices in
  discrete mode), one run per seed; reported as the mean and spread over seeds.
- ``ma_crossover``: per asset, long 1/A of equity (unlevered) while the ``fast``-bar simple
  moving average of closes is above the ``slow`` one, else flat; averages use closes up to t.
- ``ma_long_short``: the same, short 1/A instead of flat (the agent's action space when
  shorting is on; long-only: ``ma_crossover`` again).
- ``momentum``: time-series momentum, per asset 1/A of equity on the sign of the last
  ``k``-bar return (short on a fall when shorting is on, else flat); ``k`` is chosen on the
  validation split by ``choose_momentum_lookback``.
- ``vol_target``: volatility-targeted buy-and-hold, per asset long ``min(1, s_bar / s_t) / A``
  of equity, where ``s_t`` is the std of the last ``VOL_WINDOW`` bar returns and ``s_bar``
  its mean so far (both from closes up to t): it steps down in turbulent stretches and
  holds fully in calm ones, without leverage (the agent's own cap).

All but buy-and-hold are actors stepped through the agent's simulator; those that follow the
same trading rules step as one batch (``run_strategies``), with the records they get alone.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from adan.data.bars import MarketData
from adan.evaluation.backtest import Actor, run_backtests
from adan.evaluation.records import BacktestRecord
from adan.market.config import TradingConfig
from adan.market.sizing import num_discrete_actions
from adan.market.spec import MarketSpec

BASELINES = (
    "buy_and_hold", "flat", "random", "ma_crossover", "ma_long_short", "momentum", "vol_target"
)  # fmt: skip
# the simple rules the agent must beat (flat and random are floors, not rivals)
RULES = ("buy_and_hold", "ma_crossover", "ma_long_short", "momentum", "vol_target")
VOL_WINDOW = 168  # bars of returns in vol_target's volatility estimate (a week of hours)
LABELS = {
    "agent": "agent",
    "buy_and_hold": "buy & hold",
    "flat": "flat (cash)",
    "random": "random policy",
    "ma_crossover": "MA crossover",
    "ma_long_short": "MA long/short",
    "momentum": "momentum",
    "vol_target": "vol-targeted buy & hold",
}


def _buy_and_hold_units(
    data: MarketData, start: int, trading: TradingConfig
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(equity, units, costs paid, notional bought) of an equal-weight book bought at bar
    ``start+1``'s open, paying the agent's costs, and held: ``equity[0]`` is the cash at
    ``start``'s close, ``equity[k]`` the value at bar ``start+k``'s close."""
    cash0 = trading.initial_cash
    open_, close = data.open[start + 1], data.close[start + 1 :]
    cost_rate = trading.cost_bps * 1e-4
    budget = cash0 / (1.0 + cost_rate)  # notional such that notional + costs = cash
    units = budget / data.num_assets / open_
    equity = np.concatenate([[cash0], close @ units])
    return equity, units, budget * cost_rate, budget


def buy_and_hold(spec: MarketSpec) -> BacktestRecord:
    """The buy-and-hold record over the bars a backtest of ``spec`` covers."""
    data, trading, window = spec.data, spec.trading, spec.window
    start = window - 1
    steps = len(data) - window - 1  # as many steps as the agent's backtest
    equity, units, cost, bought = _buy_and_hold_units(data, start, trading)
    equity = equity[: steps + 1]
    rows = slice(start, start + steps + 1)
    close = data.close[rows]
    weights = np.zeros((steps + 1, 1, data.num_assets))
    weights[1:, 0] = units * close[1:] / equity[1:, None]
    costs = np.zeros((steps, 1))
    costs[0] = cost
    turnover = np.zeros((steps, 1))
    turnover[0] = bought / trading.initial_cash
    return BacktestRecord(
        name="buy_and_hold",
        timestamps=data.timestamps[rows],
        equity=equity[:, None],
        weights=weights,
        costs=costs,
        turnover=turnover,
        close=close,
        assets=tuple(data.assets),
        regimes=None if data.regimes is None else data.regimes[rows],
        initial_cash=trading.initial_cash,
    )


class FlatActor:
    """Always all cash."""

    def __call__(self, obs: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
        return np.zeros((len(t), obs["portfolio"].shape[1] - 2), dtype=np.float32)


class RandomActor:
    """Uniformly random actions of the agent's own action kind; run r uses seed ``seed + r``."""

    def __init__(self, trading: TradingConfig, num_assets: int, runs: int, seed: int = 0) -> None:
        self.trading, self.num_assets = trading, num_assets
        self.rngs = [np.random.default_rng(seed + r) for r in range(runs)]

    def __call__(self, obs: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
        a = self.num_assets
        if self.trading.action_mode == "discrete":
            k = num_discrete_actions(self.trading)
            return np.stack([rng.integers(0, k, a) for rng in self.rngs])
        low = -1.0 if self.trading.allow_short else 0.0
        return np.stack([rng.uniform(low, 1.0, a) for rng in self.rngs]).astype(np.float32)


class MACrossoverActor:
    """Long 1/A of equity per asset while SMA(fast) > SMA(slow) of closes <= t, else flat."""

    def __init__(
        self, close: np.ndarray, fast: int = 24, slow: int = 96, short: bool = False
    ) -> None:
        if not 0 < fast < slow:
            raise ValueError(f"MA crossover needs 0 < fast < slow, got {fast}, {slow}")
        csum = np.vstack([np.zeros((1, close.shape[1])), np.cumsum(close, axis=0)])

        def sma(n: int) -> np.ndarray:  # mean of closes t-n+1..t; the first n-1 rows: NaN
            out = np.full(close.shape, np.nan)
            out[n - 1 :] = (csum[n:] - csum[:-n]) / n
            return out

        fast_avg, slow_avg = sma(fast), sma(slow)
        with np.errstate(invalid="ignore"):  # NaN before the slow average exists: flat
            self.side = (fast_avg > slow_avg).astype(np.float64)
            if short:
                self.side -= fast_avg < slow_avg
        self.weight = 1.0 / close.shape[1]

    def __call__(self, obs: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
        return (self.side[t] * self.weight).astype(np.float32)


class MomentumActor:
    """1/A of equity per asset on the sign of the return over the last ``lookback`` bars
    (closes up to t); short on a fall when ``short``, else flat."""

    def __init__(self, close: np.ndarray, lookback: int, short: bool = False) -> None:
        if lookback < 1:
            raise ValueError(f"momentum needs a lookback >= 1 bar, got {lookback}")
        side = np.zeros(close.shape)
        side[lookback:] = np.sign(close[lookback:] - close[:-lookback])
        if not short:
            side = np.maximum(side, 0.0)
        self.side = side
        self.weight = 1.0 / close.shape[1]

    def __call__(self, obs: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
        return (self.side[t] * self.weight).astype(np.float32)


class VolTargetActor:
    """Long ``min(1, mean vol so far / vol now) / A`` of equity per asset; the vol is the std
    of the last ``window`` log returns of closes up to t (fully long before it exists)."""

    def __init__(self, close: np.ndarray, window: int = VOL_WINDOW) -> None:
        if window < 2:
            raise ValueError(f"vol_target needs a window >= 2 bars, got {window}")
        r = np.diff(np.log(close), axis=0)
        csum = np.vstack([np.zeros((1, r.shape[1])), np.cumsum(r, axis=0)])
        csq = np.vstack([np.zeros((1, r.shape[1])), np.cumsum(r * r, axis=0)])
        n = window
        vol = np.full(close.shape, np.nan)
        mean = (csum[n:] - csum[:-n]) / n
        var = np.maximum((csq[n:] - csq[:-n]) / n - mean**2, 0.0) * n / (n - 1)
        vol[n:] = np.sqrt(var)  # row t: returns of bars t-n+1 .. t
        seen = np.arange(1, len(close) - n + 1)[:, None]
        typical = np.full(close.shape, np.nan)
        typical[n:] = np.cumsum(vol[n:], axis=0) / seen  # the mean vol over rows n .. t
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.minimum(1.0, typical / vol)
        self.scale = np.where(np.isfinite(scale), scale, 1.0)
        self.weight = 1.0 / close.shape[1]

    def __call__(self, obs: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
        return (self.scale[t] * self.weight).astype(np.float32)


def rule_trading(trading: TradingConfig) -> TradingConfig:
    """How the rules trade: target weights with the agent's costs and no-trade band, no
    leverage, none of the agent's action smoothing."""
    return replace(trading, action_mode="continuous", max_leverage=1.0, action_smoothing=0.0)


def choose_momentum_lookback(spec: MarketSpec, candidates: tuple[int, ...] | list[int]) -> int:
    """The lookback of ``candidates`` whose momentum rule has the best Sharpe ratio over
    ``spec`` (the validation split: the test bars never choose it); every candidate in one
    batch of the simulator."""
    from adan.evaluation.backtest import record_performance

    cfg = replace(spec, trading=rule_trading(spec.trading))
    actors = {
        str(k): (MomentumActor(spec.data.close, int(k), spec.trading.allow_short), 1)
        for k in dict.fromkeys(int(k) for k in candidates)
    }
    records = run_backtests(actors, cfg)
    best, best_sharpe = int(candidates[0]), -np.inf
    for k in candidates:
        sharpe = record_performance(records[str(int(k))], spec.bars_per_year)["sharpe"]
        if np.isfinite(sharpe) and sharpe > best_sharpe:
            best, best_sharpe = int(k), float(sharpe)
    return best


Strategy = tuple[Actor, int, TradingConfig]  # (actor, runs, the trading rules it follows)


def baseline_actors(
    names: tuple[str, ...] | list[str],
    spec: MarketSpec,
    random_runs: int = 5,
    seed: int = 0,
    ma_fast: int = 24,
    ma_slow: int = 96,
    momentum_lookback: int = 24,
) -> dict[str, Strategy]:
    """The named baselines that trade through the simulator (all but buy-and-hold)."""
    data, trading = spec.data, spec.trading
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline {unknown[0]!r}; choose from {list(BASELINES)}")
    weights_cfg = rule_trading(trading)  # the random policy keeps the agent's own rules
    out: dict[str, Strategy] = {}
    for name in names:
        if name == "buy_and_hold":
            continue
        if name == "flat":
            out[name] = (FlatActor(), 1, weights_cfg)
        elif name == "random":
            actor = RandomActor(trading, data.num_assets, random_runs, seed)
            out[name] = (actor, random_runs, trading)
        elif name == "vol_target":
            out[name] = (VolTargetActor(data.close), 1, weights_cfg)
        elif name == "momentum":
            actor = MomentumActor(data.close, momentum_lookback, trading.allow_short)
            out[name] = (actor, 1, weights_cfg)
        else:
            short = name == "ma_long_short" and trading.allow_short
            out[name] = (MACrossoverActor(data.close, ma_fast, ma_slow, short), 1, weights_cfg)
    return out


def run_strategies(
    strategies: dict[str, Strategy], spec: MarketSpec, seed: int = 0
) -> dict[str, BacktestRecord]:
    """Backtests of ``strategies`` over ``spec``'s data: those that follow the same trading
    rules step as one batch (``run_backtests``), the same records as one at a time."""
    groups: list[tuple[TradingConfig, dict]] = []
    for name, (actor, runs, cfg) in strategies.items():
        group = next((g for c, g in groups if c == cfg), None)
        if group is None:
            group = {}
            groups.append((cfg, group))
        group[name] = (actor, runs)
    out: dict[str, BacktestRecord] = {}
    for cfg, group in groups:
        out.update(run_backtests(group, replace(spec, trading=cfg), seed=seed))
    return {name: out[name] for name in strategies}


def run_baselines(
    names: tuple[str, ...] | list[str],
    spec: MarketSpec,
    random_runs: int = 5,
    seed: int = 0,
    ma_fast: int = 24,
    ma_slow: int = 96,
    momentum_lookback: int = 24,
) -> dict[str, BacktestRecord]:
    """Records of the named baselines over ``spec``'s data (see the module docstring)."""
    actors = baseline_actors(names, spec, random_runs, seed, ma_fast, ma_slow, momentum_lookback)
    records = run_strategies(actors, spec, seed)
    return {name: buy_and_hold(spec) if name == "buy_and_hold" else records[name] for name in names}
