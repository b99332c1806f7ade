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

from adan.data.synthetic import BEAR, BULL, REGIME_NAMES, SIDEWAYS, VOLATILE
from adan.errors import check

PARAMS = ("size", "stop", "target", "exposure")
_KEY = "trading.dbe."
_NUM_REGIMES = len(REGIME_NAMES)
_MAX_ABS = 1e6  # cap of |bar return| in the volatility estimate


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

    enabled: bool = False
    smoothing: float = 0.1  # EMA rate toward the raw target per bar, (0, 1]
    regimes: dict[str, RegimeParams] = field(default_factory=_default_regimes)
    drawdown_ref: float = 0.2  # size reaches size_min at this drawdown
    win_rate_ref: float = 0.5  # size scaled down while the recent win rate is below it
    vol_ref: float = 0.8  # annualised; size x min(1, vol_ref / realised vol)
    perf_rate: float = 0.02  # EMA rate of the win rate and volatility estimates, (0, 1]
    size_min: float = 0.1
    size_max: float = 1.5
    stop_min: float = 0.5
    stop_max: float = 2.0
    target_min: float = 0.5
    target_max: float = 3.0
    exposure_min: float = 0.1
    exposure_max: float = 2.0

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
        profile = np.asarray(profile)
        if profile.ndim != 1 or not np.issubdtype(profile.dtype, np.integer):
            raise ValueError(f"profile must be a 1-D int array [N], got {profile.dtype}")
        if profile.size and (profile.min() < 0 or profile.max() >= len(configs)):
            raise ValueError(f"profile indices must be in [0, {len(configs)}), got {profile}")
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
        self.table: dict[str, np.ndarray] = {}
        self.low: dict[str, np.ndarray] = {}
        self.high: dict[str, np.ndarray] = {}
        for name in PARAMS:
            rows = [[getattr(c.regimes[r], name) for r in REGIME_NAMES] for c in configs]
            tab = np.array(rows, dtype=np.float64)[self.profile]
            tab[~self.enabled] = 1.0
            self.table[name] = tab
            self.low[name] = per_env(lambda c, p=name: getattr(c, f"{p}_min"))
            self.high[name] = per_env(lambda c, p=name: getattr(c, f"{p}_max"))
        self._rows = np.arange(n)

        self.params: dict[str, np.ndarray] = {name: np.ones(n) for name in PARAMS}
        self.last_change: dict[str, np.ndarray] = {name: np.zeros(n) for name in PARAMS}
        self.regime = np.full(n, -1, dtype=np.int64)  # last regime seen (-1: none yet)
        self.win_rate = self.win_rate_ref.copy()  # EMA of wins over holding bars
        self.ret_sq = np.zeros(n)  # EMA of squared net returns (before bias correction)
        self.count = np.zeros(n, dtype=np.int64)  # bars in the EMA since the episode start
        self.transitions = np.zeros((_NUM_REGIMES, _NUM_REGIMES), dtype=np.int64)
        self.last_switches = 0  # envs whose regime changed in the last update

    # ------------------------------------------------------------------------- validation
    def _array(self, name: str, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value)
        if value.shape != (self.num_envs,):
            raise BehaviourError(
                f"DBE input {name} has shape {value.shape}, expected ({self.num_envs},)"
            )
        return value

    def _finite(self, name: str, value: np.ndarray, what: str = "input") -> np.ndarray:
        value = self._array(name, value).astype(np.float64, copy=False)
        bad = ~np.isfinite(value)
        if bad.any():
            envs = np.flatnonzero(bad)
            raise BehaviourError(
                f"DBE {what} {name} is not finite at envs {envs[:10].tolist()} "
                f"(values {value[envs[:10]].tolist()})"
            )
        return value

    def _regime(self, regime: np.ndarray) -> np.ndarray:
        regime = self._array("regime", regime)
        if not np.issubdtype(regime.dtype, np.integer):
            raise BehaviourError(f"DBE input regime must hold int codes, got dtype {regime.dtype}")
        bad = (regime < 0) | (regime >= _NUM_REGIMES)
        if bad.any():
            envs = np.flatnonzero(bad)
            raise BehaviourError(
                f"DBE input regime is out of range [0, {_NUM_REGIMES}) at envs "
                f"{envs[:10].tolist()} (codes {regime[envs[:10]].tolist()})"
            )
        return regime.astype(np.int64, copy=False)

    # ------------------------------------------------------------------------------- core
    def _targets(self, regime: np.ndarray) -> dict[str, np.ndarray]:
        """Each env's table values at ``regime`` [N], clipped to its bounds."""
        return {
            name: np.clip(self.table[name][self._rows, regime], self.low[name], self.high[name])
            for name in PARAMS
        }

    def reset_envs(self, mask: np.ndarray, regime: np.ndarray) -> None:
        """Start episodes of envs where ``mask`` [N]: params at the table values of their
        ``regime`` [N] (clipped to bounds; no smoothing from the old episode), stats cleared."""
        mask = self._array("mask", mask).astype(bool, copy=False)
        regime = self._regime(regime)
        targets = self._targets(regime)
        for name in PARAMS:
            fresh = np.where(self.enabled, targets[name], 1.0)
            self.params[name] = np.where(mask, fresh, self.params[name])
            self.last_change[name] = np.where(mask, 0.0, self.last_change[name])
        self.regime = np.where(mask, regime, self.regime)
        self.win_rate = np.where(mask, self.win_rate_ref, self.win_rate)
        self.ret_sq = np.where(mask, 0.0, self.ret_sq)
        self.count = np.where(mask, 0, self.count)

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
        code out of range, naming the envs.
        """
        regime = self._regime(regime)
        drawdown = self._finite("drawdown", drawdown)
        net_return = self._finite("net_return", net_return)
        holding = self._array("holding", holding).astype(bool, copy=False)

        # Performance estimates, this bar included (it closed before the next decision).
        rate = self.perf_rate
        win = (net_return > 0).astype(np.float64)
        win_rate = np.where(holding, self.win_rate + rate * (win - self.win_rate), self.win_rate)
        # |returns| capped so that absurd ones keep the estimate finite (vol_mod -> 0).
        ret_sq = (1.0 - rate) * self.ret_sq + rate * np.minimum(np.abs(net_return), _MAX_ABS) ** 2
        count = self.count + 1
        var = ret_sq / (1.0 - (1.0 - rate) ** count)  # bias-corrected EMA
        vol = np.sqrt(var * self.bars_per_year)

        ones = np.ones_like(vol)
        wr_mod = np.divide(
            win_rate, self.win_rate_ref, out=ones.copy(), where=self.win_rate_ref > 0
        )
        vol_mod = np.divide(
            self.vol_ref, vol, out=ones.copy(), where=(self.vol_ref > 0) & (vol > 0)
        )
        size = self.table["size"][self._rows, regime]
        size = size * np.minimum(wr_mod, 1.0) * np.minimum(vol_mod, 1.0)
        depth = np.divide(
            drawdown, self.drawdown_ref, out=np.zeros_like(vol), where=self.drawdown_ref > 0
        )
        size += (self.low["size"] - size) * np.clip(depth, 0.0, 1.0)  # to size_min at the ref

        targets = self._targets(regime)
        targets["size"] = np.clip(size, self.low["size"], self.high["size"])
        params = {}
        for name in PARAMS:
            old = self.params[name]
            new = np.clip(
                old + self.smoothing * (targets[name] - old), self.low[name], self.high[name]
            )
            params[name] = self._finite(name, np.where(self.enabled, new, 1.0), what="output")

        # Commit only once every output is valid.
        switched = (self.regime >= 0) & (self.regime != regime)
        self.last_switches = int(np.count_nonzero(switched))
        if self.last_switches:
            np.add.at(self.transitions, (self.regime[switched], regime[switched]), 1)
        self.regime = regime.copy()
        self.win_rate, self.ret_sq, self.count = win_rate, ret_sq, count
        for name in PARAMS:
            self.last_change[name] = params[name] - self.params[name]
            self.params[name] = params[name]
        if self.logger.isEnabledFor(logging.DEBUG):
            self._log(regime)
        return self.params

    def _log(self, regime: np.ndarray) -> None:
        """One DEBUG line per update: mean params, largest move, regime switches and shares."""
        stats = self.changes()
        means = " ".join(f"{name}={stats[f'dbe/{name}']:.4g}" for name in PARAMS)
        moved = max(float(np.abs(c).max(initial=0.0)) for c in self.last_change.values())
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
        out: dict[str, float] = {}
        for name in PARAMS:
            out[f"dbe/{name}"] = float(self.params[name].mean()) if self.num_envs else 1.0
            change = self.last_change[name]
            out[f"dbe/{name}_change"] = float(np.abs(change).mean()) if self.num_envs else 0.0
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
        for name in PARAMS:
            self.params[name] = np.asarray(state[name], dtype=np.float64).copy()
            self.last_change[name] = np.asarray(state[f"{name}_change"], dtype=np.float64).copy()
        self.regime = np.asarray(state["regime"], dtype=np.int64).copy()
        self.win_rate = np.asarray(state["win_rate"], dtype=np.float64).copy()
        self.ret_sq = np.asarray(state["ret_sq"], dtype=np.float64).copy()
        self.count = np.asarray(state["count"], dtype=np.int64).copy()
        self.transitions = np.asarray(state["transitions"], dtype=np.int64).copy()
        self.last_switches = int(state["last_switches"])
