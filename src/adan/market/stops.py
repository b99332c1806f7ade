"""Stop-loss and take-profit levels of open positions, checked inside each bar's range.

Levels are set when a position is opened (or flipped) at a fill price, and the bar's high /
low then decide whether one was hit during the bar. Gaps are honest: a bar that opens
beyond a level fills at the open, not at the level. Batched over [N, A], no Python loops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adan.errors import check
from adan.market import kernels
from adan.market.profiles import profile_index

MODES = ("none", "pct", "atr")
NONE, PCT, ATR = 0, 1, 2
EXIT_NONE, EXIT_STOP, EXIT_TARGET = 0, 1, 2
_NO_SKIP = np.zeros((0, 0), dtype=bool)  # check() without a skip_target mask
_KEY = "trading.stops"


def _optional(mult: np.ndarray | None) -> np.ndarray:
    """A per-env multiplier as float64 [N], or an empty array for none (the kernels' form)."""
    return np.empty(0) if mult is None else np.ascontiguousarray(mult, dtype=np.float64)


@dataclass
class StopsConfig:
    """Schema for ``trading.stops``.

    ``mode``: none (no levels) | pct (distances are fractions of the entry price) | atr
    (distances are multiples of the ATR at the decision bar, Wilder over ``atr_window``).
    ``stop_loss`` / ``take_profit``: distance of the stop / target, None = no such level.
    """

    mode: str = "none"  # none | pct: fractions of the entry price | atr: multiples of the ATR
    stop_loss: float | None = 0.05  # stop distance (pct: < 1, atr: ATR multiples); null: no stop
    take_profit: float | None = None  # target distance, units of stop_loss; null: no target
    atr_window: int = 14  # bars of the Wilder ATR (atr mode)

    def __post_init__(self) -> None:
        check(self.mode in MODES, f"{_KEY}.mode", f"must be one of {MODES}", self.mode)
        for name in ("stop_loss", "take_profit"):
            value = getattr(self, name)
            if value is None:
                continue
            key = f"{_KEY}.{name}"
            ok = not isinstance(value, bool) and isinstance(value, int | float)
            check(ok, key, "must be a number or null", value)
            check(math.isfinite(value) and value > 0, key, "must be finite and > 0", value)
            setattr(self, name, float(value))
        if self.mode == "pct" and self.stop_loss is not None:
            check(
                self.stop_loss < 1, f"{_KEY}.stop_loss", "must be < 1 in pct mode", self.stop_loss
            )
        if self.mode != "none":
            check(
                self.stop_loss is not None or self.take_profit is not None,
                f"{_KEY}.stop_loss",
                f"or take_profit must be set when mode is {self.mode!r}",
                self.stop_loss,
            )
        ok = not isinstance(self.atr_window, bool) and isinstance(self.atr_window, int)
        check(
            ok and self.atr_window >= 1,
            f"{_KEY}.atr_window",
            "must be an integer >= 1",
            self.atr_window,
        )


def average_true_range(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int
) -> np.ndarray:
    """Causal Wilder ATR [T, A] (ATR[t] uses bars <= t).

    True range TR[t] = max(high - low, |high - close[t-1]|, |low - close[t-1]|) (TR[0] =
    high - low). ATR[window-1] is the mean of the first ``window`` TRs, then ATR[t] =
    (ATR[t-1] (window - 1) + TR[t]) / window. Warm-up (t < window - 1): the mean of the TRs
    so far, so every bar has a defined, causal value.
    """
    high, low, close = (np.asarray(x, dtype=np.float64) for x in (high, low, close))
    if high.ndim == 1:
        high, low, close = high[:, None], low[:, None], close[:, None]
    prev = np.concatenate([close[:1], close[:-1]])
    tr = np.maximum(high - low, np.maximum(np.abs(high - prev), np.abs(low - prev)))
    tr[0] = high[0] - low[0]
    count = np.arange(1, len(tr) + 1, dtype=np.float64)[:, None]
    atr = np.cumsum(tr, axis=0) / count  # warm-up: expanding mean
    if len(tr) >= window:
        seeded = tr[window - 1 :].copy()
        seeded[0] = atr[window - 1]
        ewm = pd.DataFrame(seeded).ewm(alpha=1.0 / window, adjust=False).mean()
        atr[window - 1 :] = ewm.to_numpy()
    return atr


class StopBook:
    """Stop / target levels [N, A] of N envs' open positions, one ``StopsConfig`` per profile.

    ``stop`` and ``target`` hold price levels, NaN = none. ``counts`` {"stop", "target",
    "gap"} [N] int64 count the exits ``check`` reported per env (one per asset exited;
    "gap" counts those filled at the open); cumulative, not reset by new episodes.
    """

    def __init__(
        self,
        configs: Sequence[StopsConfig],
        profile: np.ndarray,
        num_assets: int,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
    ) -> None:
        configs = list(configs)
        profile = profile_index(configs, profile, "StopBook")
        n, a = profile.size, int(num_assets)
        self.num_envs, self.num_assets = n, a
        self.mode = np.array([MODES.index(c.mode) for c in configs], dtype=np.int8)[profile]
        self.active = bool(any(c.mode != "none" for c in configs))

        def per_env(name: str) -> np.ndarray:
            values = [getattr(c, name) if c.mode != "none" else None for c in configs]
            return np.array([np.nan if v is None else v for v in values])[profile]

        self.stop_loss = per_env("stop_loss")
        self.take_profit = per_env("take_profit")
        # Hot-path constants, decided once. Per-env values are spread over the assets: an
        # [N, A] x [N, A] product is several times cheaper than an [N, A] x [N, 1] broadcast.
        self._env_na = np.repeat(np.arange(n), a).reshape(n, a)  # [N] -> [N, A] by take
        self._stop_loss_na = self.stop_loss.take(self._env_na)
        self._take_profit_na = self.take_profit.take(self._env_na)
        self._has_stop = bool(np.isfinite(self.stop_loss).any())  # else every stop is NaN
        self._has_target = bool(np.isfinite(self.take_profit).any())
        self._pct_na = (self.mode == PCT).take(self._env_na)
        self._all_pct = bool(n and (self.mode == PCT).all())

        # One ATR table per distinct window of the atr profiles; env -> slot (-1 = none).
        windows = sorted({c.atr_window for c in configs if c.mode == "atr"})
        slot = [windows.index(c.atr_window) if c.mode == "atr" else -1 for c in configs]
        self._atr_slot = np.array(slot, dtype=np.int64)[profile]
        if windows:
            high = np.asarray(high, dtype=np.float64)
            if high.ndim != 2 or high.shape[1] != a:
                raise ValueError(f"high has shape {high.shape}, expected [T, {a}]")
            self._atr = np.stack([average_true_range(high, low, close, w) for w in windows])
        else:
            self._atr = np.zeros((0, 1, a))
        self._atr_envs = np.flatnonzero(self._atr_slot >= 0)
        self._all_one_atr = bool(n and len(windows) == 1 and self._atr_envs.size == n)

        self._consts = (
            self.stop_loss, self.take_profit, self._has_stop, self._has_target,
            self.mode == PCT, self._atr_slot, self._atr,
        )  # fmt: skip
        self.stop = np.full((n, a), np.nan)
        self.target = np.full((n, a), np.nan)
        self.counts = {name: np.zeros(n, dtype=np.int64) for name in ("stop", "target", "gap")}

    # ------------------------------------------------------------------------- levels
    def on_fill(
        self,
        units_before: np.ndarray,
        units_after: np.ndarray,
        fill_price: np.ndarray,
        t: np.ndarray,
        stop_mult: np.ndarray | None = None,
        target_mult: np.ndarray | None = None,
    ) -> None:
        """Update levels after the open fills of bar t+1 (decided at bar ``t`` [N]).

        Opened or flipped positions get new levels at distance stop_loss x fill price (pct)
        or stop_loss x ATR[t] (atr), times ``stop_mult`` [N]; the target likewise with
        take_profit and ``target_mult``. Long: stop below, target above; short: the reverse.
        Positions added to or reduced keep their levels; closed positions lose them.
        Compiled: `kernels.stop_levels`.
        """
        if not self.active:
            return
        kernels.stop_levels(
            np.ascontiguousarray(units_before, dtype=np.float64),
            np.ascontiguousarray(units_after, dtype=np.float64),
            np.ascontiguousarray(fill_price, dtype=np.float64),
            self._per_env_t(t), self._consts, _optional(stop_mult), _optional(target_mult),
            self.stop, self.target,
        )  # fmt: skip

    def _per_env_t(self, t: np.ndarray) -> np.ndarray:
        """Decision bars as an [N] int64 array (a scalar applies to every env)."""
        t = np.asarray(t, dtype=np.int64)
        return t if t.shape == (self.num_envs,) else np.full(self.num_envs, t, dtype=np.int64)

    def _unit_distance(self, price: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Level distance per unit multiple [N, A] (read only): the fill price for pct envs,
        ATR[t] for atr envs, NaN for the others."""
        if self._all_pct:
            return price
        t = np.asarray(t, dtype=np.int64)
        if t.shape != (self.num_envs,):
            t = np.broadcast_to(t, (self.num_envs,))
        if self._all_one_atr:
            return self._atr[0].take(t, axis=0)
        unit = np.where(self._pct_na, price, np.nan)
        envs = self._atr_envs
        if envs.size:
            unit[envs] = self._atr[self._atr_slot[envs], t[envs]]
        return unit

    def stop_fraction(
        self, t: np.ndarray, price: np.ndarray, stop_mult: np.ndarray | None = None
    ) -> np.ndarray:
        """Distance of a stop set at bar ``t``, as a fraction of ``price`` [N, A], the way
        ``on_fill`` would set it (risk-per-trade sizing); NaN where a profile has no stop."""
        unit = self._unit_distance(price, t)
        return self._multiple(self.stop_loss, self._stop_loss_na, stop_mult) * unit / price

    def _multiple(
        self, per_env: np.ndarray, per_env_na: np.ndarray, mult: np.ndarray | None
    ) -> np.ndarray:
        """The per-env multiple over assets [N, A] (read only), x ``mult`` [N] when given."""
        if mult is None:
            return per_env_na
        return (per_env * np.asarray(mult, dtype=np.float64)).take(self._env_na)

    def check(
        self,
        units: np.ndarray,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        skip_target: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exits during the bar just traded, given its [N, A] open / high / low.

        Returns (exit [N, A] bool, exit_price [N, A] (NaN where no exit), kind [N, A] int8:
        0 none, 1 stop, 2 target). A level the open is already through fills at the open
        (a gap); a level inside the bar's range fills at the level. When both levels lie
        within the range the stop is assumed hit first (conservative), unless the open gapped
        through the target. Targets where ``skip_target`` [N, A] are not checked (a limit
        filled inside this bar: its high or low may have come before the entry). Does not
        clear levels (see ``clear``); updates ``counts``. Compiled: `kernels.stop_exits`.
        """

        def f64(x: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(x, dtype=np.float64)

        shape = self.stop.shape
        exit_ = np.empty(shape, dtype=bool)
        exit_price = np.empty(shape)
        kind = np.empty(shape, dtype=np.int8)
        skip = _NO_SKIP if skip_target is None else np.ascontiguousarray(skip_target, dtype=bool)
        counts = (self.counts["stop"], self.counts["target"], self.counts["gap"])
        kernels.stop_exits(
            f64(units), f64(open_), f64(high), f64(low), self.stop, self.target, skip, counts,
            exit_, exit_price, kind,
        )  # fmt: skip
        return exit_, exit_price, kind

    def clear(self, mask_na: np.ndarray) -> None:
        """Drop the levels of positions ``mask_na`` [N, A] (closed by an exit)."""
        mask_na = np.asarray(mask_na, dtype=bool)
        if np.count_nonzero(mask_na):
            np.putmask(self.stop, mask_na, np.nan)
            np.putmask(self.target, mask_na, np.nan)

    def summary(self) -> dict[str, float]:
        """For logging: total exits of each kind over all envs (cumulative)."""
        return {f"stops/{name}": float(c.sum()) for name, c in self.counts.items()}

    # ------------------------------------------------------------------------- state
    def reset_envs(self, mask: np.ndarray) -> None:
        """New episodes for envs ``mask`` [N] bool: no positions, so no levels."""
        mask = np.asarray(mask, dtype=bool)
        self.stop[mask] = np.nan
        self.target[mask] = np.nan

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {"stop": self.stop.copy(), "target": self.target.copy()}
        state.update({f"count_{k}": v.copy() for k, v in self.counts.items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        def get(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
            value = np.array(state[name], dtype=dtype, copy=True)
            if value.shape != shape:
                raise ValueError(f"stops.{name} has shape {value.shape}, expected {shape}")
            return value

        na = (self.num_envs, self.num_assets)
        self.stop = get("stop", na, np.float64)
        self.target = get("target", na, np.float64)
        self.counts = {
            k: get(f"count_{k}", (self.num_envs,), np.int64) for k in ("stop", "target", "gap")
        }
