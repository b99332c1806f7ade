"""The trading desk: from the agent's actions to fills, for every env of the batch at once.

One step of the desk, for actions decided at bar t's close:

1. **size** (`PositionSizer`): actions become target weights (fraction of equity), blended
   with the last targets when ``trading.action_smoothing`` is on;
2. **behave** (`DynamicBehaviourEngine`): the regime and the account's recent record scale the
   size, stop and target distances and cap the exposure;
3. **limit** (`RiskManager`): kill switch, daily loss, hedge, capital tier, position, net,
   concentration and gross limits clip the targets; each clip is counted;
4. **execute** (`WorkingOrders`, `ExecutionModel`): an asset whose target is inside the
   no-trade band (``execution.rebalance_band``) is left as held; orders fill during bar t+1
   (at its open, or at a resting limit), capped by participation, and pay fee, spread,
   slippage and impact;
5. **protect** (`StopBook`): stops and targets are checked against bar t+1's range; exits fill
   at the level, or at the open when the bar gapped through it, and pay the same costs.

Each stage is chosen per profile in ``trading`` and skipped when no profile uses it, so the
default desk is the foundation's: fixed-fraction targets, filled in full at the next open.
"""

from __future__ import annotations

import logging

import numpy as np

from adan.data.bars import MarketData
from adan.data.regime_detection import MarketRegimeDetector
from adan.market.batch import row_sum
from adan.market.behaviour import DynamicBehaviourEngine
from adan.market.config import TradingConfig, assign_profiles
from adan.market.execution import ExecutionModel, Fills, WorkingOrders
from adan.market.kernels import close_exits, fill_at_open, fill_orders
from adan.market.portfolio import Portfolio
from adan.market.risk import RiskManager
from adan.market.sizing import PositionSizer
from adan.market.stops import StopBook

log = logging.getLogger(__name__)


def _risk_on(risk) -> bool:
    limits = ("max_position", "max_gross", "max_net", "max_concentration", "daily_loss")
    return (
        any(getattr(risk, k) is not None for k in limits)
        or risk.max_drawdown is not None
        or bool(risk.tiers)
        or risk.hedge.asset is not None
    )


class TradingDesk:
    """Sizing, behaviour, risk, execution and stops of ``num_envs`` accounts."""

    def __init__(
        self, data: MarketData, num_envs: int, trading: TradingConfig, bars_per_year: float
    ) -> None:
        profiles = trading.profile_configs()
        self.profile_names = tuple(name for name, _ in profiles)
        self.profile = assign_profiles(num_envs, len(profiles))
        cfgs = [p for _, p in profiles]
        self.num_envs, self.num_assets = num_envs, data.num_assets
        high = np.asarray(data.high, dtype=np.float64)
        low = np.asarray(data.low, dtype=np.float64)
        close = np.asarray(data.close, dtype=np.float64)
        open_ = np.asarray(data.open, dtype=np.float64)
        self._open, self._high, self._low, self._close = open_, high, low, close

        # [T] causal market regime: as the data pipeline labelled it over the whole history
        # (data.regime), else the default rules over these bars alone (data built by hand: a
        # cold start, the first bars' volatility has no history)
        self.regimes = data.detected_regimes
        if self.regimes is None or len(self.regimes) != len(data):
            self.regimes = MarketRegimeDetector().detect(high, low, close)
        self.regimes = np.asarray(self.regimes, dtype=np.int64)
        self.sizer = PositionSizer(
            [c.sizing for c in cfgs],
            self.profile,
            trading.action_mode,
            trading.allow_short,
            trading.max_leverage,
            close,
            bars_per_year,
        )
        self.dbe = None
        if any(c.dbe.enabled for c in cfgs):
            self.dbe = DynamicBehaviourEngine([c.dbe for c in cfgs], self.profile, bars_per_year)
        self.risk = None
        if any(_risk_on(c.risk) for c in cfgs):
            day = data.timestamps.astype("datetime64[D]").astype(np.int64)
            self.risk = RiskManager([c.risk for c in cfgs], self.profile, data.assets, close, day)
        self.stops = StopBook(
            [c.stops for c in cfgs], self.profile, data.num_assets, high, low, close
        )
        if not self.stops.active:
            self.stops = None
        ex = trading.execution
        self.execution = ExecutionModel(
            ex,
            trading.fee_bps,
            trading.half_spread_bps,
            trading.slippage_bps,
            open_,
            high,
            low,
            close,
            data.volume,
        )
        self.orders = None
        if ex.partial_fills:
            self.orders = WorkingOrders(num_envs, data.num_assets, ex.ttl)
        self.smoothing = float(trading.action_smoothing)
        self.smoothed = np.zeros((num_envs, data.num_assets)) if self.smoothing > 0 else None
        self.clipped = np.zeros(num_envs, dtype=bool)  # a risk rule acted this step
        self.max_leverage = float(trading.max_leverage)
        self._intrabar: np.ndarray | None = None  # [N, A] limit fills inside this bar
        self.equity_open = np.ones(num_envs)  # equity at the last fill bar's open

    def stop_distance(self, t: np.ndarray) -> np.ndarray:
        """Distance of a stop set at bar t, as a fraction of its close [N, A]."""
        mult = self.dbe.params["stop"] if self.dbe is not None else None
        return self.stops.stop_fraction(t, self._close.take(t, axis=0), mult)

    # ------------------------------------------------------------------------ one decision
    def decide(self, actions: np.ndarray, t: np.ndarray, pf: Portfolio) -> np.ndarray:
        """Target weights [N, A] for actions decided at bars ``t`` (stages 1-3)."""
        tier_risk = distance = None
        if self.sizer.needs_stop_distance:  # risk-per-trade sizing: the stop, the tier's risk
            distance = self.stop_distance(t)
            if self.risk is not None:
                tier_risk = self.risk.risk_per_trade(pf.equity)
        weights = self.sizer.weights(actions, t, distance, tier_risk)
        if self.smoothed is not None:  # EMA of the sized targets: a jittery policy holds still
            weights = self.smoothing * self.smoothed + (1.0 - self.smoothing) * weights
            self.smoothed = weights.copy()
        cap = None
        if self.dbe is not None:  # the engine scales the size; its exposure caps the gross
            weights *= self.dbe.params["size"][:, None]
            cap = np.minimum(self.dbe.params["exposure"], 1.0)
            cap *= self.max_leverage
        if self.risk is not None:
            weights = self.risk.apply(weights, t, pf.equity, pf.drawdown, cap)
            self.clipped = np.logical_or.reduce(list(self.risk.breached.values()))
            self.clipped |= self.risk.killed | self.risk.halted  # flat orders go out every bar
        elif cap is not None:
            gross = row_sum(np.abs(weights))
            self.clipped = gross > cap
            weights *= np.minimum(1.0, cap / np.maximum(gross, 1e-300))[:, None]
        return weights

    def execute(self, weights: np.ndarray, t: np.ndarray, pf: Portfolio, floor: float) -> Fills:
        """Send the orders for ``weights`` and book their fills during bar t+1 (stage 4)."""
        open1 = self._open.take(t + 1, axis=0)
        band = self.execution.config.rebalance_band
        before = pf.units
        fills = self._fill(weights, t, open1, pf, floor, band)
        if self.stops is not None:
            mult = self.dbe.params if self.dbe is not None else {}
            self.stops.on_fill(
                before, pf.units, fills.price, t, mult.get("stop"), mult.get("target")
            )
            # a resting limit filled inside the bar: the bar's high (low) may have come
            # before the entry, so its target is not checked against this bar
            self._intrabar = None
            if self.execution.limit:
                self._intrabar = (fills.units != 0) & (fills.price != open1)
        return fills

    def _fill(
        self, weights: np.ndarray, t: np.ndarray, open1: np.ndarray, pf: Portfolio,
        floor: float, band: float,
    ) -> Fills:  # fmt: skip
        """Stage 4 in one kernel: market orders filled in full at the open
        (`kernels.fill_at_open`), or working orders (`kernels.fill_orders`: limit or
        participation-capped)."""
        n, a = weights.shape
        ex = self.execution
        new_units, filled, equity_open = np.empty((n, a)), np.empty((n, a)), np.empty(n)
        costs = ex.cost_arrays(n, a)
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        book = (pf.units, pf.avg_price, pf.cash, pf.realised_pnl, open1, float(floor))
        if self.orders is None:
            price = open1
            fill_at_open(
                weights, *book, float(band), self.clipped, ex.rates(t, marketable=True),
                new_units, filled, costs, equity_open,
            )  # fmt: skip
        else:
            price = np.empty((n, a))
            fill_orders(
                weights, *book, self.clipped, self.orders.book, float(band), self.orders.ttl,
                ex.fill_inputs(t), ex.rates(t, marketable=not ex.limit), new_units, filled,
                price, costs, equity_open,
            )  # fmt: skip
        pf.units = new_units
        self.equity_open = equity_open
        return Fills(filled, price, *costs)

    def protect(self, t: np.ndarray, pf: Portfolio) -> Fills | None:
        """Stops and targets hit during bar t+1 (stage 5); None when no profile uses them.

        Exits are marketable orders: taker fee, spread, slippage and impact."""
        if self.stops is None:
            return None
        t1 = t + 1
        bar = [x.take(t1, axis=0) for x in (self._open, self._high, self._low)]
        intrabar = self._intrabar
        if intrabar is not None and not intrabar.any():
            intrabar = None
        exit_, price, _ = self.stops.check(pf.units, *bar, skip_target=intrabar)
        if not exit_.any():
            return None
        n, a = exit_.shape
        units, fill_price = np.empty((n, a)), np.empty((n, a))
        costs = self.execution.cost_arrays(n, a)
        close_exits(
            exit_, price, bar[0], self.execution.rates(t, marketable=True), pf.units,
            pf.avg_price, pf.cash, pf.realised_pnl, units, fill_price, costs,
        )  # fmt: skip
        fills = Fills(units, fill_price, *costs)
        self.stops.clear(exit_)
        if self.orders is not None:  # a stopped position is not re-bought by a working order
            self.orders.cancel_assets(exit_)
        return fills

    def after_bar(
        self, t1: np.ndarray, drawdown: np.ndarray, net_return: np.ndarray, holding: np.ndarray
    ) -> None:
        """Let the stateful stages learn from the bar that just closed."""
        if self.sizer.learns:  # Kelly sizing: the signal's return over the bar
            self.sizer.update(self._close.take(t1, axis=0) / self._close.take(t1 - 1, axis=0) - 1)
        if self.dbe is not None:
            self.dbe.update(self.regimes[t1], drawdown, net_return, holding)

    def stats(self) -> dict[str, float]:
        """What the desk's stages did so far, for logging: the behaviour engine's mean
        parameters (``dbe/<param>``), the risk limits' counts (``risk/...``) and the working
        orders' expiries and partial fills (``execution/...``); only the stages in use."""
        out: dict[str, float] = {}
        if self.dbe is not None:
            out.update(self.dbe.changes())
        if self.risk is not None:
            out.update(self.risk.summary())
        if self.orders is not None:
            out["execution/expired_orders"] = float(self.orders.expired.sum())
            out["execution/partial_fills"] = float(self.orders.partial.sum())
        return out

    # ---------------------------------------------------------------------- episodes, state
    def reset_envs(self, mask: np.ndarray, t: np.ndarray, equity: np.ndarray) -> None:
        """Fresh accounts for envs ``mask`` starting at bars ``t`` [N]."""
        self.sizer.reset_envs(mask)
        if self.dbe is not None:
            self.dbe.reset_envs(mask, self.regimes[t])
        if self.risk is not None:
            self.risk.reset_envs(mask, equity, t)
        if self.stops is not None:
            self.stops.reset_envs(mask)
        if self.orders is not None:
            self.orders.cancel(mask)
        if self.smoothed is not None:
            self.smoothed[mask] = 0.0
        self.clipped[mask] = False

    def _parts(self) -> dict:
        parts = {"sizer": self.sizer, "dbe": self.dbe, "risk": self.risk, "stops": self.stops,
                 "orders": self.orders}  # fmt: skip
        return {k: v for k, v in parts.items() if v is not None}

    def state_dict(self) -> dict:
        state = {k: v.state_dict() for k, v in self._parts().items()}
        state["clipped"] = self.clipped.copy()
        if self.smoothed is not None:
            state["smoothed"] = self.smoothed.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        for key, part in self._parts().items():
            part.load_state_dict(state[key])
        self.clipped = np.asarray(state["clipped"], dtype=bool).copy()
        if self.smoothed is not None:
            self.smoothed = np.asarray(state["smoothed"], dtype=np.float64).copy()
