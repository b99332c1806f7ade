"""The batched market core: N trading accounts stepping over one `MarketData` in lockstep.

Both gymnasium envs are thin views of this class, so they cannot disagree. Every step is a
fixed number of array operations over the batch; no Python loop runs over envs or assets.
"""

from __future__ import annotations

import numpy as np

from adan.data.regimes import NUM_REGIMES
from adan.market.desk import TradingDesk
from adan.market.episode import EpisodeStats
from adan.market.execution import Fills
from adan.market.kernels import close_bar, gather_windows
from adan.market.outcome import StepOutcome
from adan.market.portfolio import Portfolio
from adan.market.rng import BatchRNG, SeedLike
from adan.market.spec import PORTFOLIO_EXTRA, MarketSpec, market_key

Obs = dict[str, np.ndarray]
STEP_INFO_KEYS = (
    "fee",
    "spread",
    "slippage",
    "impact",
    "borrow",
    "cost",
    "turnover",
    "equity",
    "drawdown",
    "regime",
    "stop_exits",
    "risk_clipped",
)


_NO_EXITS = (np.zeros((0, 0)),) * 5 + (np.zeros(0),) * 2  # close_bar's "no stop exits"


def _parts(fills: Fills) -> tuple:
    """``Fills`` as the tuple `kernels.close_bar` reads."""
    return (fills.units, fills.fee, fills.spread, fills.slippage, fills.impact, fills.total,
            fills.notional)  # fmt: skip


class _Windows:
    """Feature windows of one timeframe: [P, A, F] bars as contiguous [P, A*F] rows, so the
    window ending at a bar is one block to copy (`kernels.gather_windows`)."""

    def __init__(self, features: np.ndarray, window: int) -> None:
        feats = np.ascontiguousarray(features, dtype=np.float32)
        self.shape = (window, *feats.shape[1:])
        self.rows = feats.reshape(len(feats), -1)
        self.window = int(window)

    def take(self, first: np.ndarray) -> np.ndarray:
        """Fresh float32 [N, W, A, F]: env i's window starts at bar ``first[i]``."""
        out = np.empty((len(first), self.window * self.rows.shape[1]), dtype=np.float32)
        gather_windows(self.rows, np.ascontiguousarray(first, dtype=np.int64), self.window, out)
        return out.reshape(len(first), *self.shape)


class MarketSimulator:
    """N envs trading the A assets of ``data`` with target-weight orders and realistic fills.

    **Timing (no look-ahead).** An env "at bar t" has seen bars <= t. ``step(actions)``
    decides at t's close; the trading desk (`TradingDesk`) sizes, scales and limits the
    targets and fills the orders during bar t+1 (at its open, or at a resting limit, capped
    by its volume), paying fee, spread, slippage and impact in cash; stops and targets are
    checked against bar t+1's range; short positions pay ``trading.borrow_rate`` for the bar;
    the book is marked at t+1's close, and the env is at bar t+1. With ``trading=default`` every order fills in full at t+1's open.

    **Actions** ([N, A]): continuous, a conviction per asset in [-1, 1] (clipped to [0, 1]
    when shorting is off) that ``trading.sizing`` turns into a target weight (fixed: times
    ``max_leverage``); discrete, {0: short, 1: flat, 2: long} per asset, or {0: flat, 1: long}
    when shorting is off. If gross exposure exceeds ``max_leverage`` all weights are scaled
    down together.

    **Observation** (dict of fresh arrays, safe to keep):

    - ``market``: float32 [N, window, A, F], features of bars t-window+1 .. t (oldest first).
    - ``market_<rule>`` per higher timeframe of ``data.timeframes`` (e.g. ``market_4h``):
      float32 [N, W_rule, A, F_rule], its last W_rule bars *closed* at t's close (oldest first).
    - ``portfolio``: float32 [N, A + 2]: weight per asset (position value / equity, at t's
      close), cash / equity, drawdown from the episode's peak. No episode clock and no equity
      level: the policy must see the same kind of state in a backtest over a whole split as
      in a training episode.
    - ``regime`` (with ``trading.regime.observe``): float32 [N, 4], one-hot market regime at
      t (bull, bear, sideways, volatile), detected from bars <= t.

    **Episodes** start at a random bar t0 in [window - 1, T - episode_length - 2] drawn from
    each env's own stream (env i of a batch seeded ``s`` uses seed ``s + i``), run for
    ``episode_length`` steps (truncated) unless equity drops below ``ruin_threshold *
    initial_cash`` first (terminated; then truncated is False). The last start leaves one
    spare bar so that stepping a finished env (see ``reset_mask``) still reads real data.

    **Info** (vector-env format: each key has a ``_key`` bool mask): per-step [N] arrays
    ``fee``, ``spread``, ``slippage``, ``impact``, ``borrow`` (of shorts, this bar) and their
    sum ``cost`` (cash paid, stop exits included), ``turnover`` (traded notional / equity), ``equity``, ``drawdown``,
    ``regime``, ``stop_exits``, ``risk_clipped`` (the env adds ``reward_components``);
    ``fills`` {units, price, fee, spread, slippage, impact} [N, A] of this bar's orders and
    ``exits`` the same of its stop and target exits (zeros without);
    ``dbe`` {size, stop, target, exposure} [N] when the behaviour engine runs; when an episode
    ends, ``episode`` {l, t} (the env adds the return ``r``, as gymnasium's
    RecordEpisodeStatistics) and ``trading``
    {log_return, sharpe, max_drawdown, win_rate, turnover, costs, trades, stop_exits,
    risk_clips, final_equity, profile}.
    """

    def __init__(
        self,
        spec: MarketSpec,
        num_envs: int,
        episode_length: int,
        seed: SeedLike = None,
    ) -> None:
        data, window = spec.data, spec.window
        for name, value in (("num_envs", num_envs), ("episode_length", episode_length)):
            if int(value) != value or value < 1:
                raise ValueError(f"env.{name} must be a positive integer, got {value!r}")
        num_bars = len(data)
        if num_bars < window + episode_length + 1:
            raise ValueError(
                f"MarketData has {num_bars} bars; window={window} + episode_length="
                f"{episode_length} + 1 spare bar need at least {window + episode_length + 1}"
            )
        self.data = data
        self.num_envs, self.window, self.episode_length = (
            int(num_envs),
            int(window),
            int(episode_length),
        )
        self.num_assets, self.num_features = data.num_assets, data.num_features
        self.trading = spec.trading
        self.bars_per_year = spec.bars_per_year

        self._open = self._prices(data.open, "open")
        self._close = self._prices(data.close, "close")
        self.desk = TradingDesk(data, int(num_envs), self.trading, self.bars_per_year)
        self.profile_names = self.desk.profile_names
        self.profile = self.desk.profile  # [N] profile index of each env
        self.observe_regime = bool(self.trading.regime.observe)
        # the window ending at bar t starts at bar t - (W - 1)
        self._windows = _Windows(data.features, window)
        self._first_start = window - 1
        # Per higher timeframe: (obs key, its windows, first window row per base bar). The data
        # guarantees index >= W - 1 (a full window of closed higher bars at every base bar).
        self._higher = [
            (market_key(rule), _Windows(tf.features, tf.window), tf.index - (tf.window - 1))
            for rule, tf in data.timeframes.items()
        ]
        self.spec = spec
        self.observation_shapes = self.spec.observation_shapes  # the spaces are built from it
        if self.observe_regime:
            self._regime_onehot = np.eye(NUM_REGIMES, dtype=np.float32)
        self._last_start = num_bars - episode_length - 2
        init = self.trading.initial_cash
        self._ruin_level = max(self.trading.ruin_threshold * init, 1e-9 * init)
        # borrow of short positions, per bar held, as a fraction of their notional
        self._borrow_per_bar = 0.0
        if self.trading.allow_short:
            self._borrow_per_bar = self.trading.borrow_rate / self.bars_per_year

        n = self.num_envs
        self.portfolio = Portfolio(n, self.num_assets, init)
        self.stats = EpisodeStats(n, init, self.bars_per_year)
        self.rng = BatchRNG(n, seed)
        self.t = np.zeros(n, dtype=np.int64)  # current bar: observation uses bars <= t
        self.start = np.zeros(n, dtype=np.int64)  # bar each episode started at
        self.step_count = np.zeros(n, dtype=np.int64)  # steps taken in the episode
        self._all_true = np.ones(n, dtype=bool)
        self._all_true.flags.writeable = False
        zeros = np.zeros((n, self.num_assets))
        zeros.flags.writeable = False
        self._no_fills = Fills(zeros, zeros, zeros, zeros, zeros, zeros, zeros[:, 0], zeros[:, 0])
        self._last_obs: Obs = {}
        self.reset()

    @staticmethod
    def _prices(prices: np.ndarray, name: str) -> np.ndarray:
        out = np.ascontiguousarray(prices, dtype=np.float64)
        if not (np.isfinite(out).all() and (out > 0).all()):
            raise ValueError(f"MarketData.{name} must be finite and > 0 to trade at")
        return out

    # ----------------------------------------------------------------------------- reset
    def reset(
        self, envs: np.ndarray | None = None, seed: SeedLike = None, out: Obs | None = None
    ) -> Obs:
        """Start new episodes for ``envs`` (bool mask [N] or indices; None = all).

        ``seed``: None continues each env's stream; an int gives env i the seed ``seed + i``;
        a sequence gives one seed per reset env. Returns the observation of all envs: for a
        partial reset the others keep their last observation. With ``out`` the reset rows are
        written into that observation in place (and it is returned).
        """
        idx = self._indices(envs)
        if seed is not None:
            self.rng.seed(idx, seed)
        self._reset_rows(idx)
        if envs is None:
            obs = self.observe()
        else:
            obs = out if out is not None else {k: v.copy() for k, v in self._last_obs.items()}
            for key, value in self._observe(idx, self._close[self.t[idx]]).items():
                obs[key][idx] = value
        self._last_obs = obs
        return obs

    def _indices(self, envs: np.ndarray | None) -> np.ndarray:
        if envs is None:
            return np.arange(self.num_envs)
        envs = np.asarray(envs)
        if envs.dtype == bool:
            if envs.shape != (self.num_envs,):
                raise ValueError(f"reset mask has shape {envs.shape}, expected ({self.num_envs},)")
            return np.flatnonzero(envs)
        return envs.astype(np.int64).reshape(-1)

    def _reset_rows(self, idx: np.ndarray) -> None:
        start = self.rng.integers(idx, self._first_start, self._last_start + 1)
        self.t[idx] = start
        self.start[idx] = start
        self.step_count[idx] = 0
        self.portfolio.reset(idx)
        self.stats.reset(idx)
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[idx] = True
        self.desk.reset_envs(mask, self.t, self.portfolio.equity)

    # ------------------------------------------------------------------------------ step
    def step(
        self, actions: np.ndarray, reset_mask: np.ndarray | None = None
    ) -> tuple[Obs, StepOutcome, np.ndarray, np.ndarray, dict]:
        """Advance every env one bar. Returns (obs, outcome, terminated [N], truncated [N],
        info): the ``StepOutcome`` is what the bar did to each account, before any reward (the
        env applies one, ``adan.envs.rewarded.RewardedMarket``).

        Envs in ``reset_mask`` (bool [N]) start a new episode instead and their actions are
        ignored: not done, zero costs (gymnasium's next-step autoreset); their rows of the
        outcome describe the bar before the reset and are not to be rewarded.
        """
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, self.num_assets):
            actions = actions.reshape(self.num_envs, self.num_assets)
        pf, desk = self.portfolio, self.desk
        t, t1 = self.t, self.t + 1
        mark_price = self._close.take(t1, axis=0)
        prev_equity = pf.equity
        prev_drawdown = pf.drawdown

        weights = desk.decide(actions, t, pf)  # sized, behaviour-scaled, risk-limited targets
        fills = desk.execute(weights, t, pf, self._ruin_level)  # during bar t+1, with costs
        exits = desk.protect(t, pf)  # stops and targets hit during bar t+1
        # the close of bar t+1: borrow, mark, the step's totals, episode stats (one kernel)
        st = self.stats
        closed = np.empty((self.num_envs, 14))  # per env: the kernel's one output record
        held = np.empty(self.num_envs, dtype=bool)
        stop_exits = np.empty(self.num_envs, dtype=np.int64)
        close_bar(
            pf.units, mark_price, pf.cash, pf.realised_pnl, pf.peak, self._borrow_per_bar,
            self._ruin_level, prev_equity, desk.equity_open, desk.clipped, _parts(fills),
            _NO_EXITS if exits is None else _parts(exits), exits is not None,
            (st.ret_sum, st.ret_sq_sum, st.max_drawdown, st.turnover, st.costs),
            (st.length, st.hold_bars, st.win_bars, st.trades, st.stop_exits, st.risk_clips),
            pf.turnover, closed, held, stop_exits,
        )  # fmt: skip
        borrow, equity, drawdown, fee, spread, slippage, impact, cost = closed.T[:8]
        turnover, exposure, net_ratio, gross_ratio, net_return, cost_fraction = closed.T[8:]
        pf.equity, pf.drawdown = equity.copy(), drawdown.copy()  # the book's own, contiguous
        regime = desk.regimes[t1]
        outcome = StepOutcome(
            net_log_return=np.log(net_ratio),
            gross_log_return=np.log(gross_ratio),
            net_return=net_return,
            cost_fraction=cost_fraction,
            turnover=turnover,
            exposure=exposure,
            drawdown=pf.drawdown,
            prev_drawdown=prev_drawdown,
            regime=regime,
        )
        desk.after_bar(t1, pf.drawdown, net_return, held)
        self.step_count += 1
        self.t = t1

        terminated = equity < self._ruin_level
        truncated = self.step_count >= self.episode_length
        truncated &= ~terminated
        info = self._step_info(
            {
                "fee": fee,
                "spread": spread,
                "slippage": slippage,
                "impact": impact,
                "borrow": borrow,
                "cost": cost,
                "turnover": turnover,
                "equity": equity,
                "drawdown": drawdown,
                "regime": regime,
                "stop_exits": stop_exits,
                "risk_clipped": desk.clipped.copy(),
            },
            fills,
            exits,
        )

        resetting = reset_mask is not None and reset_mask.any()
        if resetting:
            terminated &= ~reset_mask
            truncated &= ~reset_mask
        done = terminated | truncated
        if done.any():
            info.update(self.stats.summary(done, equity))
            info["trading"]["profile"] = np.where(done, self.profile, 0)
        if resetting:
            self._reset_rows(np.flatnonzero(reset_mask))
            self._clear_step_info(info, reset_mask)
        obs = self._observe(slice(None), mark_price)  # reset rows: no units held
        self._last_obs = obs
        return obs, outcome, terminated, truncated, info

    def _step_info(self, values: dict, fills, exits) -> dict:
        every = self._all_true
        info: dict = {}
        for key in STEP_INFO_KEYS:
            info[key] = values[key]
            info["_" + key] = every
        info["fills"] = {  # per env and asset: this bar's orders (stop exits not included)
            "units": fills.units,
            "price": fills.price,
            "fee": fills.fee,
            "spread": fills.spread,
            "slippage": fills.slippage,
            "impact": fills.impact,
        }
        info["_fills"] = every
        exits = self._no_fills if exits is None else exits
        info["exits"] = {  # per env and asset: this bar's stop and target exits
            "units": exits.units,
            "price": exits.price,
            "fee": exits.fee,
            "spread": exits.spread,
            "slippage": exits.slippage,
            "impact": exits.impact,
        }
        info["_exits"] = every
        if self.desk.dbe is not None:
            info["dbe"] = {k: v.copy() for k, v in self.desk.dbe.params.items()}
            info["_dbe"] = every
        return info

    def _clear_step_info(self, info: dict, mask: np.ndarray) -> None:
        """Rows of envs that were reset this step describe a fresh account."""
        for key in ("fee", "spread", "slippage", "impact", "borrow", "cost", "turnover",
                    "drawdown"):  # fmt: skip
            info[key][mask] = 0.0
        info["stop_exits"] = np.where(mask, 0, info["stop_exits"])
        info["risk_clipped"][mask] = False
        info["equity"][mask] = self.trading.initial_cash
        for group in ("fills", "exits"):
            for key in info[group]:
                info[group][key] = np.where(mask[:, None], 0.0, info[group][key])

    # ------------------------------------------------------------------------ observation
    def _observe(self, rows: np.ndarray | slice, prices: np.ndarray) -> Obs:
        """Fresh observation arrays of envs ``rows``, the book valued at ``prices``."""
        pf = self.portfolio
        a = self.num_assets
        t = self.t[rows]
        obs = {"market": self._windows.take(t - self._first_start)}
        for key, windows, start in self._higher:  # a few timeframes, not envs
            obs[key] = windows.take(start[t])
        equity = pf.equity[rows]
        portfolio = np.empty((len(equity), a + PORTFOLIO_EXTRA), dtype=np.float32)
        np.divide(pf.units[rows] * prices, equity[:, None], out=portfolio[:, :a])
        np.divide(pf.cash[rows], equity, out=portfolio[:, a])
        portfolio[:, a + 1] = pf.drawdown[rows]
        obs["portfolio"] = portfolio
        if self.observe_regime:
            obs["regime"] = self._regime_onehot[self.desk.regimes[t]]
        return obs

    def desk_stats(self) -> dict[str, float]:
        """The trading desk's running statistics (see ``TradingDesk.stats``)."""
        return self.desk.stats()

    def observe(self) -> Obs:
        """The observation of every env now (fresh arrays)."""
        return self._observe(slice(None), self._close.take(self.t, axis=0))

    # ------------------------------------------------------------------------- checkpoint
    def get_state(self) -> dict:
        """Everything needed to continue bit-exactly: book, clocks, streams, stats, desk."""
        return {
            "t": self.t.copy(),
            "start": self.start.copy(),
            "step_count": self.step_count.copy(),
            "portfolio": self.portfolio.state_dict(),
            "stats": self.stats.state_dict(),
            "rng": self.rng.state_dict(),
            "desk": self.desk.state_dict(),
        }

    def set_state(self, state: dict) -> None:
        """Restore what ``get_state`` returned (same data, batch size and configuration)."""
        if np.shape(state["t"]) != (self.num_envs,):
            raise ValueError(
                f"state is for {np.shape(state['t'])[0]} envs, simulator has {self.num_envs}"
            )
        self.t = np.asarray(state["t"], dtype=np.int64).copy()
        self.start = np.asarray(state["start"], dtype=np.int64).copy()
        self.step_count = np.asarray(state["step_count"], dtype=np.int64).copy()
        self.portfolio.load_state_dict(state["portfolio"])
        self.stats.load_state_dict(state["stats"])
        self.rng.load_state_dict(state["rng"])
        self.desk.load_state_dict(state["desk"])
        self._last_obs = self.observe()
