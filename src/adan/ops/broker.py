"""Where the live loop's orders go: a ``Broker`` interface and its one implementation, the
paper broker, which fills them with the backtest's own trading desk.

The paper broker is not a second model of execution: each bar it rebuilds a one-account
``MarketSimulator`` over the live market, restores the account (book, desk, behaviour engine,
risk and stop state) and steps it with the working order. Sizing, the behaviour engine, risk
limits, stops, fills at the next open and every cost are the code ``eval.py`` runs, so a
replay of a split trades exactly as its backtest did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from adan.data.bars import MarketData
from adan.market.config import TradingConfig
from adan.market.simulator import MarketSimulator
from adan.market.spec import MarketSpec
from adan.ops.live_market import with_spare_rows

Obs = dict[str, np.ndarray]


@dataclass(frozen=True)
class BarFill:
    """What one bar did to the account: its orders' fills and stop exits per asset, costs and
    the book marked at the bar's close."""

    units: np.ndarray  # [A] units bought (+) or sold (-) by the working order
    price: np.ndarray  # [A] fill prices (0 where nothing filled)
    exit_units: np.ndarray  # [A] units closed by stops and targets
    exit_price: np.ndarray
    fee: float
    cost: float  # every cost paid this bar (fees, spread, slippage, impact, borrow)
    turnover: float
    equity: float
    cash: float
    drawdown: float
    holdings: np.ndarray  # [A] units held after the bar
    weights: np.ndarray  # [A] position value / equity at the close
    risk_clipped: bool
    net_return: float


class Broker(Protocol):
    """An account that takes one working order per bar (target convictions per asset, the
    policy's action) and reports what each closed bar did to it."""

    def start(self, market: MarketData) -> Obs:
        """Open the account at the newest bar of ``market``; the observation there."""
        ...

    def on_bar(self, market: MarketData, order: np.ndarray) -> tuple[BarFill, Obs]:
        """Fill ``order`` (decided at the previous bar) during ``market``'s newest bar."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class PaperBroker:
    """Paper fills through ``MarketSimulator`` with ``trading`` (the checkpoint's rules, as a
    backtest runs them: no ruin stop). ``window``: the observation length."""

    def __init__(
        self, trading: TradingConfig, window: int, bars_per_year: float | None = None
    ) -> None:
        self.trading = replace(trading, ruin_threshold=0.0)
        self.window = int(window)
        self.bars_per_year = bars_per_year
        self._state: dict[str, Any] | None = None

    @property
    def started(self) -> bool:
        return self._state is not None

    def reconfigure(self, trading: TradingConfig) -> None:
        """New rules from the next bar on (a hot-reloaded risk limit, say)."""
        self.trading = replace(trading, ruin_threshold=0.0)

    def check(self, trading: TradingConfig, market: MarketData) -> None:
        """Refuse new rules the open account cannot continue under (a component switched on
        or off changes the desk's state): ``ValueError`` saying so."""
        if self._state is None:
            return
        old = self.trading
        try:
            self.trading = replace(trading, ruin_threshold=0.0)
            self._restore(self._simulator(market))
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(
                f"the account cannot continue under these trading settings ({err!r}): "
                "switching a component on or off needs a restart on a new state file"
            ) from None
        finally:
            self.trading = old

    def _restore(self, sim: MarketSimulator) -> None:
        """Put the account into ``sim``. A risk manager or behaviour engine that the rules
        switched on since the last bar starts fresh at this bar (as at an episode start:
        today's opening equity is the equity now); one switched off is dropped."""
        state = self._state
        missing = [k for k in sim.desk.state_dict() if k not in state["desk"]]
        if missing:
            fresh = sim.desk.state_dict()
            state = {**state, "desk": {**state["desk"], **{k: fresh[k] for k in missing}}}
        sim.set_state(state)
        everyone = np.ones(1, dtype=bool)
        if "risk" in missing:
            sim.desk.risk.reset_envs(everyone, sim.portfolio.equity, sim.t)
        if "dbe" in missing:
            sim.desk.dbe.reset_envs(everyone, sim.desk.regimes[sim.t])

    def _simulator(self, market: MarketData) -> MarketSimulator:
        spec = MarketSpec.of(
            with_spare_rows(market), self.trading, window=self.window,
            bars_per_year=self.bars_per_year,
        )  # fmt: skip
        return MarketSimulator(spec, 1, 1, seed=0)

    def start(self, market: MarketData) -> Obs:
        if len(market) != self.window:
            raise ValueError(f"the account opens at the first full window ({self.window} bars)")
        sim = self._simulator(market)
        obs = sim.reset(seed=0)
        self._state = sim.get_state()
        return obs

    def on_bar(self, market: MarketData, order: np.ndarray) -> tuple[BarFill, Obs]:
        if self._state is None:
            raise RuntimeError("PaperBroker.on_bar before start")
        sim = self._simulator(market)
        self._restore(sim)
        if int(sim.t[0]) != len(market) - 2:
            raise RuntimeError(
                f"the account is at bar {int(sim.t[0])}, the market's newest bar is "
                f"{len(market) - 1}: bars were skipped or repeated"
            )
        obs, outcome, _, _, info = sim.step(np.asarray(order, dtype=np.float64).reshape(1, -1))
        pf = sim.portfolio
        equity = float(info["equity"][0])
        close = market.close[-1]
        fill = BarFill(
            units=info["fills"]["units"][0].copy(),
            price=info["fills"]["price"][0].copy(),
            exit_units=info["exits"]["units"][0].copy(),
            exit_price=info["exits"]["price"][0].copy(),
            fee=float(info["fee"][0]),
            cost=float(info["cost"][0]),
            turnover=float(info["turnover"][0]),
            equity=equity,
            cash=float(pf.cash[0]),
            drawdown=float(info["drawdown"][0]),
            holdings=pf.units[0].copy(),
            weights=pf.units[0] * close / equity,
            risk_clipped=bool(info["risk_clipped"][0]),
            net_return=float(outcome.net_return[0]),
        )
        self._state = sim.get_state()
        return fill, obs

    def state_dict(self) -> dict[str, Any]:
        return {"simulator": self._state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state = state["simulator"]
