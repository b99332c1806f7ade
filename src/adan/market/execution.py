"""Execution: how an order decided at bar t's close fills during bar t+1, and what it costs.

Per fill and asset the venue charges, in cash:

- ``fee``: the taker fee (``trading.fee_bps``) for market orders and stop exits, the maker
  fee (``execution.maker_fee_bps``) for limit orders;
- ``spread``: half the bid/ask spread for market orders and stop exits, fixed
  (``trading.half_spread_bps``) or estimated from the bar ranges known at the decision
  (Abdi & Ranaldo, 2017), never below the fixed value; limit orders rest in the book and
  pay none;
- ``slippage``: a fixed ``trading.slippage_bps`` for market orders and stop exits;
- ``impact``: the square-root law, ``impact_coef * sigma * sqrt(|order| / volume)`` of the
  notional, with ``sigma`` the per-bar volatility and ``volume`` the mean bar volume over the
  last ``impact_window`` bars up to the decision (at most the whole notional).

A participation cap fills at most ``participation`` x the fill bar's volume; the rest keeps
working on the next bars (`WorkingOrders`) until filled or ``ttl`` bars have passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adan.errors import check
from adan.market import kernels
from adan.market.kernels import fill_costs

ORDER_TYPES = ("market", "limit")
SPREAD_MODELS = ("fixed", "estimated")
_TINY = 1e-12
_NO_ROWS = np.zeros((0, 0))  # no per-bar rates: the fixed one applies


@dataclass
class ExecutionConfig:
    """How orders reach the market (``trading.execution``); the defaults are the foundation's
    instant, unlimited market-on-open fills."""

    # market: taker at the next open | limit: maker, rests at the decision close
    order_type: str = "market"
    maker_fee_bps: float = 2.0  # fee of limit (maker) fills, bps of traded notional
    # fixed: trading.half_spread_bps | estimated: Abdi-Ranaldo, from the bar ranges up to the
    # decision (never below the fixed value)
    spread: str = "fixed"
    spread_window: int = 48  # bars averaged by the spread estimator
    # square-root impact: coef x sigma x sqrt(order / mean bar volume) of the notional; 0: none
    impact_coef: float = 0.0
    impact_window: int = 24  # bars of volatility and volume behind the impact estimate
    # max fraction of a bar's volume per fill, (0, 1]; null: unlimited
    participation: float | None = None
    ttl: int = 3  # bars an unfilled remainder keeps working
    # no-trade band, any order type: an asset is traded only when its target weight differs
    # from the held weight (or a working order's) by more than this; a flat target always
    # trades; 0: rebalance every bar. 0.2: chosen by measurement, with a training market at 2x
    # costs it cut the default agent's turnover 3.4x at the same Sharpe
    # (experiments/results/no_churn.md)
    rebalance_band: float = 0.2

    def __post_init__(self) -> None:
        k = "trading.execution."
        check(self.order_type in ORDER_TYPES, k + "order_type", f"must be one of {ORDER_TYPES}",
              self.order_type)  # fmt: skip
        check(self.spread in SPREAD_MODELS, k + "spread", f"must be one of {SPREAD_MODELS}",
              self.spread)  # fmt: skip
        for name in ("maker_fee_bps", "impact_coef", "rebalance_band"):
            value = getattr(self, name)
            check(math.isfinite(value) and value >= 0, k + name, "must be >= 0", value)
        for name in ("spread_window", "impact_window", "ttl"):
            check(getattr(self, name) >= 1, k + name, "must be >= 1 bar", getattr(self, name))
        check(
            self.participation is None or 0 < self.participation <= 1,
            k + "participation",
            "must be in (0, 1] or null",
            self.participation,
        )

    @property
    def partial_fills(self) -> bool:
        """Whether an order may fill in part (and leave a working remainder)."""
        return self.participation is not None or self.order_type == "limit"


def estimated_half_spread(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int
) -> np.ndarray:
    """Abdi-Ranaldo half spread [T, A] (fraction of price) known at each bar's close.

    ``s^2 = 4 (c_{t-1} - eta_{t-1}) (c_{t-1} - eta_t)`` with ``c`` the log close and ``eta``
    the mid-range log price; averaged over the last ``window`` pairs ending at bar t (negative
    averages count as zero). Bar 0 and the first bars average what exists.
    """
    log_c = np.log(close)
    eta = 0.5 * (np.log(high) + np.log(low))
    s2 = np.zeros_like(log_c)
    s2[1:] = 4.0 * (log_c[:-1] - eta[:-1]) * (log_c[:-1] - eta[1:])
    mean = _trailing_mean(s2, window, skip_first=True)
    return 0.5 * np.sqrt(np.maximum(mean, 0.0))


def _trailing_mean(x: np.ndarray, window: int, skip_first: bool = False) -> np.ndarray:
    """Mean of the last ``window`` rows up to and including each row ([T, ...])."""
    csum = np.cumsum(x, axis=0)
    out = np.empty_like(csum)
    n = np.minimum(np.arange(1, len(x) + 1), window).astype(np.float64)
    out[:window] = csum[:window]
    out[window:] = csum[window:] - csum[:-window]
    if skip_first:  # row 0 holds no estimate; do not count it
        n = n - (np.arange(len(x)) < window)
        n[0] = 1.0
    return out / n.reshape((-1,) + (1,) * (x.ndim - 1))


def bar_volatility(close: np.ndarray, window: int) -> np.ndarray:
    """Standard deviation of log returns over the last ``window`` bars up to each bar [T, A]."""
    r = np.zeros_like(close)
    r[1:] = np.diff(np.log(close), axis=0)
    mean = _trailing_mean(r, window)
    second = _trailing_mean(r * r, window)
    return np.sqrt(np.maximum(second - mean * mean, 0.0))


@dataclass(frozen=True)
class Fills:
    """What one step's orders did, per env and asset ([N, A]): signed units, price, and the
    cash each cost took. ``total`` [N] is all costs of the env."""

    units: np.ndarray
    price: np.ndarray
    fee: np.ndarray
    spread: np.ndarray
    slippage: np.ndarray
    impact: np.ndarray
    total: np.ndarray
    notional: np.ndarray  # [N] absolute traded notional per env


class ExecutionModel:
    """Fills and costs over the whole batch; the bar arrays it needs are precomputed once."""

    def __init__(
        self,
        config: ExecutionConfig,
        fee_bps: float,
        half_spread_bps: float,
        slippage_bps: float,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> None:
        self.config = config
        self.limit = config.order_type == "limit"
        # (fee, half spread, slippage) of a marketable order: every market order, and every
        # stop or target exit whatever the order type; a resting limit pays the maker fee only
        fixed = half_spread_bps * 1e-4
        spread: float | np.ndarray = fixed
        if config.spread == "estimated":
            estimate = estimated_half_spread(high, low, close, config.spread_window)
            spread = np.maximum(estimate, fixed)  # [T, A], read at the decision bar
        self.taker = (fee_bps * 1e-4, spread, slippage_bps * 1e-4)
        self.maker = (config.maker_fee_bps * 1e-4, 0.0, 0.0)
        self._open, self._high, self._low, self._close = open_, high, low, close
        self._volume = np.maximum(np.asarray(volume, dtype=np.float64), 0.0)
        self._impact = None  # [T, A] impact cost fraction per sqrt(unit), at the decision bar
        if config.impact_coef > 0:
            sigma = bar_volatility(close, config.impact_window)
            mean_volume = _trailing_mean(self._volume, config.impact_window)
            # cost fraction per sqrt(unit): coef * sigma / sqrt(volume)
            self._impact = config.impact_coef * sigma / np.sqrt(np.maximum(mean_volume, _TINY))

    def rates(self, t: np.ndarray, marketable: bool) -> tuple:
        """`kernels.fill_costs`'s rates for orders decided at bars ``t``: (fee, half spread,
        slippage, estimated half-spread rows or empty, impact rows or empty)."""
        fee, spread, slippage = self.taker if marketable else self.maker
        spread_rows = impact_rows = _NO_ROWS
        if isinstance(spread, np.ndarray):  # estimated: the decision bar's, per asset
            spread_rows, spread = spread.take(t, axis=0), 0.0
        if self._impact is not None:
            impact_rows = self._impact.take(t, axis=0)
        return (fee, float(spread), slippage, spread_rows, impact_rows)

    @staticmethod
    def cost_arrays(n: int, a: int) -> tuple:
        """Fresh outputs of `kernels.fill_costs`: fee, spread, slippage, impact [N, A], total,
        notional [N]."""
        return (*(np.empty((n, a)) for _ in range(4)), np.empty(n), np.empty(n))

    def fill_inputs(self, t: np.ndarray) -> tuple:
        """What `kernels.fill_orders` needs of bar t+1 for orders decided at bars ``t``:
        (limit orders?, the limit price = bar t's close, bar t+1's low, high [N, A] (empty for
        market orders), the participation cap in units [N, A] (empty: none)).

        Market orders fill at bar t+1's open; limit orders rest at bar t's close (a working
        order is re-priced at every close) and fill only if bar t+1 trades through it, at the
        open when it opens better. The participation cap limits either to a fraction of bar
        t+1's volume."""
        t1 = t + 1
        limit_px = low1 = high1 = most = _NO_ROWS
        if self.limit:
            limit_px = self._close.take(t, axis=0)
            low1, high1 = self._low.take(t1, axis=0), self._high.take(t1, axis=0)
        cap = self.config.participation
        if cap is not None:
            most = cap * self._volume.take(t1, axis=0)
        return (self.limit, limit_px, low1, high1, most)

    def costs(
        self, units: np.ndarray, price: np.ndarray, t: np.ndarray, marketable: bool | None = None
    ) -> Fills:
        """Costs of fills of ``units`` at ``price`` ([N, A]) for orders decided at bars ``t``:
        the order type's rates, or taker rates with ``marketable=True`` (stop exits).

        Impact never exceeds the notional (a run of empty bars would otherwise price it at
        any multiple of it)."""
        if marketable is None:
            marketable = not self.limit
        units = np.ascontiguousarray(units, dtype=np.float64)
        price = np.ascontiguousarray(price, dtype=np.float64)
        costs = self.cost_arrays(len(units), units.shape[1])
        fill_costs(units, price, self.rates(t, marketable), costs)
        fee, spread, slippage, impact, total, per_env = costs
        return Fills(units, price, fee, spread, slippage, impact, total, per_env)


class WorkingOrders:
    """Orders still working per env and asset: a target position in units, its age in bars.

    Each step (`kernels.fill_orders`) the sized targets become new orders where no order
    works and the target weight is outside the no-trade band around the held weight (or is
    flat while something is held), where it moved more than ``rebalance_band`` from the
    working order's, or where a risk rule acted. Otherwise the working order keeps its target
    and is retried. An order not filled after ``ttl`` bars is cancelled (counted in
    ``expired``) and is not sent again until the target moves. With full fills no order
    outlives its bar, so this is the foundation's rebalance-every-bar behaviour.

    The no-trade band keeps a policy whose target jitters by a few percent every bar from
    paying the spread on every jitter; with ``rebalance_band=0`` every change is traded.
    """

    IDLE, WORKING, EXPIRED = kernels.IDLE, kernels.WORKING, kernels.EXPIRED

    def __init__(self, num_envs: int, num_assets: int, ttl: int) -> None:
        self.ttl = int(ttl)
        shape = (num_envs, num_assets)
        self.target = np.zeros(shape)
        self.weight = np.zeros(shape)
        self.age = np.zeros(shape, dtype=np.int64)
        self.state = np.zeros(shape, dtype=np.int8)
        # per env, over every episode so far (as the risk limits' clip counts)
        self.expired = np.zeros(num_envs, dtype=np.int64)  # orders cancelled by their TTL
        self.partial = np.zeros(num_envs, dtype=np.int64)  # fills that left a remainder

    @property
    def book(self) -> tuple:
        """The arrays `kernels.fill_orders` works in place: target, weight, age, state [N, A],
        expired, partial [N]."""
        return (self.target, self.weight, self.age, self.state, self.expired, self.partial)

    def cancel_assets(self, mask: np.ndarray) -> None:
        """Stop working the orders of (env, asset) ``mask`` [N, A] (a stop closed the position):
        they count as expired, so the same target is not sent again."""
        self.state[mask & (self.state == self.WORKING)] = self.EXPIRED

    def cancel(self, mask: np.ndarray) -> None:
        """Drop the orders of envs ``mask`` [N] (new episodes)."""
        self.state[mask] = self.IDLE
        self.target[mask] = 0.0
        self.weight[mask] = 0.0
        self.age[mask] = 0

    _STATE = ("target", "weight", "age", "state", "expired", "partial")

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).copy() for name in self._STATE}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name in self._STATE:
            current = getattr(self, name)
            setattr(self, name, np.asarray(state[name], dtype=current.dtype).copy())
