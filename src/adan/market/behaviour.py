"""Dynamic Behaviour Engine (DBE): per-env trading parameters that adapt to regime and results.

Why: one fixed position size, stop and target cannot suit a trending, a ranging and a
chaotic market alike, nor an account that is losing. The DBE turns the market regime at a
bar's close and the account's recent results into four parameters the simulator applies to
the *next* decision (no look-ahead: an update at bar t uses bars <= t only):

- ``size``: multiplier of the position size;
- ``stop`` / ``target``: multipliers of the stop-loss / take-profit distances;
- ``exposure``: cap on gross exposure, in units of equity.

Each bar the raw target of a parameter is its regime's table value; ``size`` is further
scaled down by a low recent win rate and a high realised volatility, and pulled toward
``size_min`` as the drawdown deepens (see ``BehaviourConfig``).
The target is clipped to the parameter's bounds and each parameter moves toward it by an EMA
of rate ``smoothing``, so a regime switch moves parameters gradually, never in one jump.
Everything is [N] arrays over the batch; several profiles (sub-batches with their own config)
share one engine.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from adan.data.regimes import BEAR, BULL, REGIME_NAMES, SIDEWAYS, VOLATILE
from adan.errors import check
from adan.market import kernels
from adan.market.profiles import profile_index

PARAMS = ("size", "stop", "target", "exposure")
_KEY = "trading.dbe."
_NUM_REGIMES = len(REGIME_NAMES)
INPUTS = ("regime", "drawdown", "net_return", "holding")  # update()'s, for error messages
_MAX_ABS = 1e6  # cap of |bar return| in the volatility estimate


def _ref_or_one(ref: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``ref`` [N] with its zeros (modifier off) replaced by 1, and the index of those envs
    (None when there are none)."""
    off = ref <= 0
    return np.where(off, 1.0, ref), (np.flatnonzero(off) if off.any() else None)


class BehaviourError(RuntimeError):
    """The DBE got (or would produce) an invalid value; the message names it and the envs."""


@dataclass
class RegimeParams:
    """Table values of one regime: multipliers of size / stop / target, and an exposure cap."""

    size: float = 1.0
    stop: float = 1.0
    target: float = 1.0
    exposure: float = 1.0


def _default_regimes() -> dict[str, RegimeParams]:
    """Trend: full size, let winners run. Bear: smaller and tighter. Sideways (mean reverting):
    closer targets. Volatile: half size with wider stops, so noise does not stop the trade out."""
    table = {
        BULL: RegimeParams(size=1.0, stop=1.0, target=1.2, exposure=1.0),
        BEAR: RegimeParams(size=0.7, stop=0.8, target=0.8, exposure=0.7),
        SIDEWAYS: RegimeParams(size=0.8, stop=0.8, target=0.7, exposure=0.8),
        VOLATILE: RegimeParams(size=0.5, stop=1.5, target=1.5, exposure=0.5),
    }
    return {REGIME_NAMES[code]: params for code, params in table.items()}


def _number(value: object, key: str) -> float:
    """``value`` as a finite float (YAML may give ints), or ConfigError naming ``key``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    check(ok and math.isfinite(value), key, "must be a finite number", value)
    return float(value)


@dataclass
class BehaviourConfig:
    """Schema of ``trading.dbe``: one trading profile's DBE settings.

    ``enabled`` False keeps every parameter at 1.0 (neutral). Performance modifiers of
    ``size`` (a ``*_ref`` of 0 turns its modifier off):

    - win rate: ``min(1, win_rate / win_rate_ref)``, the win rate being an EMA (rate
      ``perf_rate``) of "net return > 0" over bars that held a position, starting each
      episode at ``win_rate_ref`` (neutral);
    - volatility: ``min(1, vol_ref / vol)``, vol the annualised root mean square of the
      account's net bar returns, a bias-corrected EMA (rate ``perf_rate``) since the episode
      start (1 before any return);
    - drawdown, applied last: size moves linearly from the value above (no drawdown) to
      ``size_min`` at ``drawdown_ref`` and stays there beyond.

    Bounds clip every target (table values outside them included).
    """

    # Dynamic Behaviour Engine: regime and record -> size, stop, target, exposure; false:
    # every parameter stays 1.0
    enabled: bool = False
    smoothing: float = 0.1  # EMA rate toward the raw target per bar, (0, 1]
    # per regime (bull, bear, sideways, volatile): the size / stop / target multipliers and
    # the exposure cap it aims for
    regimes: dict[str, RegimeParams] = field(default_factory=_default_regimes)
    drawdown_ref: float = 0.2  # size reaches size_min at this drawdown
    win_rate_ref: float = 0.5  # size scaled down while the recent win rate is below it
    vol_ref: float = 0.8  # annualised; size x min(1, vol_ref / realised vol)
    perf_rate: float = 0.02  # EMA rate of the win rate and volatility estimates, (0, 1]
    size_min: float = 0.1  # lower bound of the position-size multiplier
    size_max: float = 1.5  # upper bound of the position-size multiplier
    stop_min: float = 0.5  # lower bound of the stop-loss distance multiplier
    stop_max: float = 2.0  # upper bound of the stop-loss distance multiplier
    target_min: float = 0.5  # lower bound of the take-profit distance multiplier
    target_max: float = 3.0  # upper bound of the take-profit distance multiplier
    # lower bound of the exposure cap: gross exposure <= min(exposure, 1) x max_leverage
    exposure_min: float = 0.1
    exposure_max: float = 2.0  # upper bound of the exposure cap (values above 1 act as 1)

    def __post_init__(self) -> None:
        check(isinstance(self.enabled, bool), _KEY + "enabled", "must be a bool", self.enabled)
        for f in fields(self):
            if f.name not in ("enabled", "regimes"):
                setattr(self, f.name, _number(getattr(self, f.name), _KEY + f.name))
        for name in ("smoothing", "perf_rate"):
            value = getattr(self, name)
            check(0 < value <= 1, _KEY + name, "must be in (0, 1]", value)
        for name in ("drawdown_ref", "vol_ref"):
            value = getattr(self, name)
            check(value >= 0, _KEY + name, "must be >= 0 (0 turns the modifier off)", value)
        check(
            0 <= self.win_rate_ref <= 1,
            _KEY + "win_rate_ref",
            "must be in [0, 1] (0 turns the modifier off)",
            self.win_rate_ref,
        )
        for name in PARAMS:
            lo, hi = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            check(lo > 0, f"{_KEY}{name}_min", "must be > 0", lo)
            check(hi >= lo, f"{_KEY}{name}_max", f"must be >= {_KEY}{name}_min ({lo:g})", hi)
        self.regimes = self._regime_table(self.regimes)

    @staticmethod
    def _regime_table(regimes: Mapping) -> dict[str, RegimeParams]:
        check(isinstance(regimes, Mapping), _KEY + "regimes", "must be a mapping", regimes)
        names = sorted(str(k) for k in regimes)
        check(
            names == sorted(REGIME_NAMES),
            _KEY + "regimes",
            f"must have exactly the keys {list(REGIME_NAMES)}",
            names,
        )
        table = {}
        for name in REGIME_NAMES:  # canonical order
            params = regimes[name]
            if isinstance(params, Mapping):
                unknown = sorted(set(map(str, params)) - set(PARAMS))
                check(not unknown, f"{_KEY}regimes.{name}", f"knows only {list(PARAMS)}", unknown)
                params = RegimeParams(**params)
            check(
                isinstance(params, RegimeParams),
                f"{_KEY}regimes.{name}",
                "must be a RegimeParams or a mapping",
                params,
            )
            for p in PARAMS:
                key = f"{_KEY}regimes.{name}.{p}"
                value = _number(getattr(params, p), key)
                check(value > 0, key, "must be > 0", value)
                setattr(params, p, value)
            table[name] = params
        return table


class DynamicBehaviourEngine:
    """The DBE for N envs, each following the config of its profile.

    ``params[name]`` ([N] float64 per name of ``PARAMS``) is what the simulator applies to the
    next decision. Call ``reset_envs`` when episodes start (params jump to the table values of
    the episode's regime) and ``update`` once per bar after the fill is marked.
    Observability: ``last_change[name]`` [N] is the change of the last update,
    ``transitions`` [R, R] counts regime changes (from, to) seen over all envs, ``changes()``
    summarises both for the training logger and ``update`` logs one DEBUG line.

    Speed: ``update`` runs once per simulator step, so the four params live as the rows of one
    [4, N] array (``params`` / ``last_change`` hold views of its rows, replaced by each update
    and reset) and every per-env constant (clipped tables, modifier masks) is built here once.
    """

    def __init__(
        self,
        configs: Sequence[BehaviourConfig],
        profile: np.ndarray,
        bars_per_year: float,
        logger: logging.Logger | None = None,
    ) -> None:
        configs = list(configs)
        if not configs or not all(isinstance(c, BehaviourConfig) for c in configs):
            raise ValueError("DynamicBehaviourEngine needs one BehaviourConfig per profile")
        profile = profile_index(configs, profile, "DynamicBehaviourEngine")
        check(
            math.isfinite(bars_per_year) and bars_per_year > 0,
            "env.bars_per_year",
            "must be > 0",
            bars_per_year,
        )
        self.num_envs = n = len(profile)
        self.profile = profile.astype(np.int64)
        self.bars_per_year = float(bars_per_year)
        self.logger = logger if logger is not None else logging.getLogger(__name__)

        def per_env(get) -> np.ndarray:
            return np.array([get(c) for c in configs], dtype=np.float64)[self.profile]

        self.enabled = np.array([c.enabled for c in configs], dtype=bool)[self.profile]
        self.smoothing = per_env(lambda c: c.smoothing)
        self.perf_rate = per_env(lambda c: c.perf_rate)
        self.drawdown_ref = per_env(lambda c: c.drawdown_ref)
        self.win_rate_ref = per_env(lambda c: c.win_rate_ref)
        self.vol_ref = per_env(lambda c: c.vol_ref)
        # table[name]: [N, R] value per env and regime; disabled envs hold 1.0 everywhere.
        # low / high[name]: [N] bounds. All are views of the stacked arrays below.
        table = np.array(
            [[[getattr(c.regimes[r], p) for r in REGIME_NAMES] for c in configs] for p in PARAMS],
            dtype=np.float64,
        )[:, self.profile]  # [4, N, R]
        table[:, ~self.enabled] = 1.0
        self._low = np.array([per_env(lambda c, p=p: getattr(c, f"{p}_min")) for p in PARAMS])
        self._high = np.array([per_env(lambda c, p=p: getattr(c, f"{p}_max")) for p in PARAMS])
        self.table = dict(zip(PARAMS, table, strict=True))
        self.low = dict(zip(PARAMS, self._low, strict=True))
        self.high = dict(zip(PARAMS, self._high, strict=True))

        # Hot-path constants. A (env, regime) pair is the flat index env * R + regime.
        self._base = np.arange(n, dtype=np.int64) * _NUM_REGIMES
        self._size_table = table[0].reshape(-1)  # raw size values, before the modifiers
        # What an env's params start an episode at: table values clipped to the bounds (1.0
        # for disabled envs); also the update's targets of stop / target / exposure.
        fresh = np.clip(table, self._low[:, :, None], self._high[:, :, None])
        fresh[:, ~self.enabled] = 1.0
        self._fresh = fresh.reshape(len(PARAMS), -1)  # [4, N * R]
        self._decay = 1.0 - self.perf_rate
        self._smoothing = np.broadcast_to(self.smoothing, self._low.shape).copy()  # [4, N]
        # A *_ref of 0 turns its modifier off: those envs divide by 1 instead (to stay finite)
        # and the result is pinned to neutral (None: no env has the modifier off).
        self._win_ref, self._win_off = _ref_or_one(self.win_rate_ref)
        self._vol_ref, self._vol_off = _ref_or_one(self.vol_ref)
        self._drawdown_ref, self._drawdown_off = _ref_or_one(self.drawdown_ref)
        self._disabled = np.flatnonzero(~self.enabled) if not self.enabled.all() else None

        def mask(off: np.ndarray | None) -> np.ndarray:
            out = np.zeros(n, dtype=bool)
            if off is not None:
                out[off] = True
            return out

        self._consts = (
            self.perf_rate, self._decay, _MAX_ABS, self.bars_per_year, self._base,
            self._size_table, self._win_ref, mask(self._win_off), self._vol_ref,
            mask(self._vol_off), self._drawdown_ref, mask(self._drawdown_off), self._low,
            self._high, self._smoothing, self._fresh, mask(self._disabled),
        )  # fmt: skip

        self.params: dict[str, np.ndarray] = {}
        self.last_change: dict[str, np.ndarray] = {}
        self._set_params(np.ones((len(PARAMS), n)), np.zeros((len(PARAMS), n)))
        self.regime = np.full(n, -1, dtype=np.int64)  # last regime seen (-1: none yet)
        self.win_rate = self.win_rate_ref.copy()  # EMA of wins over holding bars
        self.ret_sq = np.zeros(n)  # EMA of squared net returns (before bias correction)
        self.count = np.zeros(n, dtype=np.int64)  # bars in the EMA since the episode start
        self.transitions = np.zeros((_NUM_REGIMES, _NUM_REGIMES), dtype=np.int64)
        self.last_switches = 0  # envs whose regime changed in the last update

    def _set_params(self, params: np.ndarray, last_change: np.ndarray) -> None:
        """Install [4, N] params and their last change; the dicts get views of the rows."""
        self._params, self._last_change = params, last_change
        self.params.update(zip(PARAMS, params, strict=True))
        self.last_change.update(zip(PARAMS, last_change, strict=True))

    # ------------------------------------------------------------------------- validation
    def _array(self, name: str, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value)
        if value.shape != (self.num_envs,):
            raise BehaviourError(
                f"DBE input {name} has shape {value.shape}, expected ({self.num_envs},)"
            )
        return value

    @staticmethod
    def _check_finite(name: str, value: np.ndarray, what: str = "input") -> None:
        """Raise naming the envs where ``value`` [N] is not finite (the slow, exact check)."""
        bad = ~np.isfinite(value)
        if bad.any():
            envs = np.flatnonzero(bad)
            raise BehaviourError(
                f"DBE {what} {name} is not finite at envs {envs[:10].tolist()} "
                f"(values {value[envs[:10]].tolist()})"
            )

    def _regime(self, regime: np.ndarray) -> np.ndarray:
        regime = self._array("regime", regime)
        if regime.dtype.kind not in "iu":
            raise BehaviourError(f"DBE input regime must hold int codes, got dtype {regime.dtype}")
        codes = regime.astype(np.int64, copy=False)
        # Negative codes wrap to huge unsigned values, so one comparison checks both ends.
        if np.count_nonzero(codes.view(np.uint64) >= _NUM_REGIMES):
            bad = (regime < 0) | (regime >= _NUM_REGIMES)
            envs = np.flatnonzero(bad)
            raise BehaviourError(
                f"DBE input regime is out of range [0, {_NUM_REGIMES}) at envs "
                f"{envs[:10].tolist()} (codes {regime[envs[:10]].tolist()})"
            )
        return codes

    def _raise(
        self,
        status: int,
        regime: np.ndarray,
        drawdown: np.ndarray,
        net_return: np.ndarray,
        params: np.ndarray,
    ) -> None:
        """The error `kernels.behaviour_update` reported (``status``), named with its envs:
        the checks in order (regime, drawdown, net return, outputs), the first that fails
        raises."""
        self._regime(regime)
        self._check_finite("drawdown", drawdown)
        self._check_finite("net_return", net_return)
        for name, value in zip(PARAMS, params, strict=True):
            self._check_finite(name, value, what="output")
        raise AssertionError(f"behaviour_update reported {status} but every check passed")

    # ------------------------------------------------------------------------------- core
    def reset_envs(self, mask: np.ndarray, regime: np.ndarray) -> None:
        """Start episodes of envs where ``mask`` [N]: params at the table values of their
        ``regime`` [N] (clipped to bounds; no smoothing from the old episode), stats cleared."""
        mask = self._array("mask", mask).astype(bool, copy=False)
        regime = self._regime(regime)
        envs = np.flatnonzero(mask)
        if not envs.size:
            return
        # Fresh copies with the reset envs overwritten (cheaper than np.where over all envs).
        params, last_change = self._params.copy(), self._last_change.copy()
        params[:, envs] = self._fresh.take(self._base[envs] + regime[envs], axis=1)
        last_change[:, envs] = 0.0
        self._set_params(params, last_change)
        self.regime = self.regime.copy()
        self.regime[envs] = regime[envs]
        self.win_rate = self.win_rate.copy()
        self.win_rate[envs] = self.win_rate_ref[envs]
        self.ret_sq = self.ret_sq.copy()
        self.ret_sq[envs] = 0.0
        self.count = self.count.copy()
        self.count[envs] = 0

    def update(
        self,
        regime: np.ndarray,
        drawdown: np.ndarray,
        net_return: np.ndarray,
        holding: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """One bar for all N envs; returns ``self.params`` for the next decision.

        ``regime`` [N] int code at the bar's close, ``drawdown`` [N] from the episode peak,
        ``net_return`` [N] simple net return of the bar, ``holding`` [N] bool (held a position
        over the bar). Raises BehaviourError on a wrong shape, a non-finite value or a regime
        code out of range, naming the envs; the engine is then left unchanged.
        """
        n = self.num_envs
        regime, drawdown, net_return, holding = (
            np.asarray(x) for x in (regime, drawdown, net_return, holding)
        )
        if not (regime.shape == drawdown.shape == net_return.shape == holding.shape == (n,)):
            for name, x in zip(INPUTS, (regime, drawdown, net_return, holding), strict=True):
                self._array(name, x)
        if regime.dtype != np.int64:
            regime = self._regime(regime)
        drawdown = drawdown.astype(np.float64, copy=False)
        net_return = net_return.astype(np.float64, copy=False)
        holding = holding.astype(bool, copy=False)

        # Performance estimates (this bar included: it closed before the next decision), the
        # size modifiers and the EMA step of every param: one compiled pass, which checks its
        # inputs and outputs first and changes nothing when one is wrong.
        count = self.count + 1
        bias = np.power(self._decay, count)
        out = (np.empty(n), np.empty(n), np.empty_like(self._params), np.empty_like(self._params))
        state = (self.regime, self.win_rate, self.ret_sq, self._params, self.transitions)
        status = kernels.behaviour_update(
            regime, drawdown, net_return, holding, state, bias, self._consts, out
        )
        if status:
            self._raise(status, regime, drawdown, net_return, out[2])
        win_rate, ret_sq, params, change = out
        self.last_switches = int(np.count_nonzero((self.regime != regime) & (self.regime >= 0)))
        self.regime = regime.copy()
        self.win_rate, self.ret_sq, self.count = win_rate, ret_sq, count
        self._set_params(params, change)
        if self.logger.isEnabledFor(logging.DEBUG):
            self._log(regime)
        return self.params

    def _log(self, regime: np.ndarray) -> None:
        """One DEBUG line per update: mean params, largest move, regime switches and shares."""
        stats = self.changes()
        means = " ".join(f"{name}={stats[f'dbe/{name}']:.4g}" for name in PARAMS)
        moved = float(np.abs(self._last_change).max(initial=0.0))
        counts = np.bincount(regime, minlength=_NUM_REGIMES).tolist()
        regimes = ",".join(f"{r}:{c}" for r, c in zip(REGIME_NAMES, counts, strict=True))
        self.logger.debug(
            "dbe: %s max|change|=%.3g switches=%d regimes=%s",
            means,
            moved,
            self.last_switches,
            regimes,
        )

    def changes(self) -> dict[str, float]:
        """Mean of each param over envs and the mean |change| of the last update, plus the
        number of envs whose regime switched then: ``{"dbe/size": .., "dbe/size_change": ..,
        ..., "dbe/regime_switches": ..}``."""
        if self.num_envs:
            means = self._params.mean(axis=1).tolist()
            moves = np.abs(self._last_change).mean(axis=1).tolist()
        else:
            means, moves = [1.0] * len(PARAMS), [0.0] * len(PARAMS)
        out: dict[str, float] = {}
        for name, mean, move in zip(PARAMS, means, moves, strict=True):
            out[f"dbe/{name}"] = mean
            out[f"dbe/{name}_change"] = move
        out["dbe/regime_switches"] = float(self.last_switches)
        return out

    # ------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, np.ndarray]:
        state = {name: self.params[name].copy() for name in PARAMS}
        state.update({f"{name}_change": self.last_change[name].copy() for name in PARAMS})
        state.update(
            regime=self.regime.copy(),
            win_rate=self.win_rate.copy(),
            ret_sq=self.ret_sq.copy(),
            count=self.count.copy(),
            transitions=self.transitions.copy(),
            last_switches=np.array(self.last_switches, dtype=np.int64),
        )
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned (same batch size and profiles)."""
        if np.shape(state["regime"]) != (self.num_envs,):
            raise ValueError(
                f"DBE state is for {np.shape(state['regime'])} envs, engine has {self.num_envs}"
            )
        self._set_params(
            np.array([state[name] for name in PARAMS], dtype=np.float64),
            np.array([state[f"{name}_change"] for name in PARAMS], dtype=np.float64),
        )
        self.regime = np.asarray(state["regime"], dtype=np.int64).copy()
        self.win_rate = np.asarray(state["win_rate"], dtype=np.float64).copy()
        self.ret_sq = np.asarray(state["ret_sq"], dtype=np.float64).copy()
        self.count = np.asarray(state["count"], dtype=np.int64).copy()
        self.transitions = np.asarray(state["transitions"], dtype=np.int64).copy()
        self.last_switches = int(state["last_switches"])
