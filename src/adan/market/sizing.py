"""Position sizing: turn the agent's actions into target weights (signed fractions of equity).

The action says which way and how strongly (in [-1, 1] per asset); ``trading.sizing`` says how
much equity that is worth:

- ``fixed``: ``fraction`` x ``max_leverage`` x the action: the foundation's sizing;
- ``vol_target``: scaled so each position's annualised volatility is ``target_vol`` at full
  action (realised volatility over ``vol_window`` bars up to the decision);
- ``risk_per_trade``: scaled so that hitting the stop loses ``risk_per_trade`` of equity
  (weight = risk / stop distance as a fraction of price; needs ``trading.stops``);
- ``kelly``: ``kelly_scale`` x the Kelly fraction ``mu / sigma^2`` of the agent's signal,
  capped to [0, ``kelly_cap``]. The signal's return over a bar is what a book of one unit of
  gross exposure, weighted as the actions, earned over it (close to close, before costs);
  mu and sigma^2 are its EMA mean and variance (rate ``kelly_rate``). It is recorded every
  bar whatever the size held, so a fraction that shrank to zero can grow again;
  ``fraction`` is used for the first ``kelly_min_bars`` bars of an episode.

Whatever the mode, gross exposure ``sum |w|`` is then scaled down to ``max_leverage``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adan.errors import ConfigError, check
from adan.market import kernels
from adan.market.batch import row_sum
from adan.market.execution import bar_volatility

SIZING_MODES = ("fixed", "vol_target", "risk_per_trade", "kelly")


@dataclass
class SizingConfig:
    """How much equity an action is worth (``trading.sizing``)."""

    mode: str = "fixed"  # fixed | vol_target | risk_per_trade | kelly (see adan.market.sizing)
    fraction: float = 1.0  # fixed: weight per unit of action; kelly: during its warm-up
    target_vol: float = 0.5  # vol_target: annualised volatility of a full-action position
    vol_window: int = 48  # vol_target: bars of realised volatility (>= 2; one for all profiles)
    risk_per_trade: float = 0.01  # risk_per_trade: equity lost if the stop is hit
    kelly_scale: float = 0.5  # kelly: multiplier of the Kelly fraction (0.5: half Kelly)
    kelly_cap: float = 0.5  # kelly: the scaled fraction is clipped to [0, kelly_cap], x equity
    kelly_rate: float = 0.02  # kelly: EMA rate of the signal's mean and variance, (0, 1]
    kelly_min_bars: int = 50  # kelly: bars of an episode sized by `fraction` (warm-up)

    def __post_init__(self) -> None:
        k = "trading.sizing."
        check(self.mode in SIZING_MODES, k + "mode", f"must be one of {SIZING_MODES}", self.mode)
        for name in ("fraction", "target_vol", "risk_per_trade", "kelly_scale", "kelly_cap"):
            value = getattr(self, name)
            check(math.isfinite(value) and value > 0, k + name, "must be > 0", value)
        check(0 < self.kelly_rate <= 1, k + "kelly_rate", "must be in (0, 1]", self.kelly_rate)
        check(self.vol_window >= 2, k + "vol_window", "must be >= 2 bars", self.vol_window)
        check(self.kelly_min_bars >= 0, k + "kelly_min_bars", "must be >= 0", self.kelly_min_bars)


def num_discrete_actions(allow_short: bool) -> int:
    """Choices per asset in discrete mode: {short, flat, long}, or {flat, long} long-only."""
    return 3 if allow_short else 2


def action_weights(actions: np.ndarray, action_mode: str, allow_short: bool) -> np.ndarray:
    """Signed conviction per asset in [-1, 1] ([0, 1] long-only), float64 [N, A].

    Continuous actions are clipped; discrete ones pick -1/0/+1 (short/flat/long; long-only:
    0 = flat, 1 = long). NaN or infinite actions raise.
    """
    actions = np.asarray(actions)
    if actions.ndim != 2:  # the kernel works on [N, A]
        return action_weights(actions.reshape(-1, actions.shape[-1] if actions.ndim else 1),
                              action_mode, allow_short).reshape(actions.shape)  # fmt: skip
    if action_mode == "discrete":
        high, shift = num_discrete_actions(allow_short) - 1.0, float(allow_short)
        low = 0.0
    else:
        low, high, shift = (-1.0 if allow_short else 0.0), 1.0, 0.0
    weights = np.empty(actions.shape)
    if not kernels.clip_actions(actions, low, high, shift, weights):
        raise ValueError("actions contain NaN or infinite values")
    return weights


def cap_gross(weights: np.ndarray, max_gross: float) -> np.ndarray:
    """Scale each row down (in place) so ``sum |w| <= max_gross``; returns ``weights``
    (`kernels.cap_gross`; ``weights`` float64 [N, A])."""
    kernels.cap_gross(weights, float(max_gross))
    return weights


def target_weights(actions: np.ndarray, trading) -> np.ndarray:
    """Fixed-fraction targets of one trading config: conviction x ``max_leverage``, gross
    capped at ``max_leverage`` (going long every asset of a discrete action is an equal-weight
    book)."""
    weights = action_weights(actions, trading.action_mode, trading.allow_short)
    lev = trading.max_leverage
    if lev != 1.0:
        weights *= lev
    return cap_gross(weights, lev)


class PositionSizer:
    """Per-env sizing over a batch that may mix profiles (``configs[profile[i]]`` for env i)."""

    def __init__(
        self,
        configs: Sequence[SizingConfig],
        profile: np.ndarray,
        action_mode: str,
        allow_short: bool,
        max_leverage: float,
        close: np.ndarray,
        bars_per_year: float,
    ) -> None:
        self.action_mode, self.allow_short = action_mode, allow_short
        self.max_leverage = float(max_leverage)
        modes = np.array([SIZING_MODES.index(c.mode) for c in configs])[profile]
        self.modes = {m: modes == i for i, m in enumerate(SIZING_MODES) if (modes == i).any()}
        self.fixed_only = set(self.modes) == {"fixed"}
        self._only = next(iter(self.modes)) if len(self.modes) == 1 else None

        def per_env(name: str) -> np.ndarray:
            return np.array([getattr(c, name) for c in configs], dtype=np.float64)[profile]

        # fixed: a full action is fraction x max_leverage; the other modes size in units of
        # equity themselves, and max_leverage only caps their gross exposure
        self.fraction = per_env("fraction") * np.where(modes == 0, float(max_leverage), 1.0)
        self.risk = per_env("risk_per_trade")
        self.kelly_scale, self.kelly_cap = per_env("kelly_scale"), per_env("kelly_cap")
        self.kelly_rate, self.kelly_min = per_env("kelly_rate"), per_env("kelly_min_bars")
        self._annual_vol = None
        if "vol_target" in self.modes:
            windows = {c.vol_window for c in configs if c.mode == "vol_target"}
            if len(windows) > 1:
                raise ConfigError(
                    f"trading.profiles.*.sizing.vol_window: profiles sizing by vol_target must "
                    f"share one window, got {sorted(windows)}"
                )
            vol = bar_volatility(close, windows.pop()) * math.sqrt(bars_per_year)
            self._annual_vol = np.maximum(vol, 1e-6)  # [T, A]
            self.target_vol = per_env("target_vol")
        n = len(profile)
        self.signal_mean = np.zeros(n)  # EMA of the signal's return per bar
        self.signal_second = np.zeros(n)  # EMA of its square
        self.signal_bars = np.zeros(n)  # bars recorded this episode
        self.conviction: np.ndarray | None = None  # [N, A] of the last decision

    @property
    def learns(self) -> bool:
        """Whether ``update`` needs each bar's asset returns (Kelly sizing)."""
        return "kelly" in self.modes

    @property
    def needs_stop_distance(self) -> bool:
        return "risk_per_trade" in self.modes

    def weights(
        self,
        actions: np.ndarray,
        t: np.ndarray,
        stop_distance: np.ndarray | None = None,
        risk_per_trade: np.ndarray | None = None,
    ) -> np.ndarray:
        """Target weights [N, A] for actions decided at bars ``t``.

        ``stop_distance`` [N, A]: the stop's distance as a fraction of price (risk_per_trade
        mode); ``risk_per_trade`` [N]: a capital tier's value, replacing the profile's.
        """
        conviction = action_weights(actions, self.action_mode, self.allow_short)
        self.conviction = conviction
        if self.fixed_only:
            scale = self.fraction[:, None]
        elif self._only == "vol_target":  # one mode for every env: no masks
            scale = self.target_vol[:, None] / self._annual_vol.take(t, axis=0)
        else:
            scale = np.broadcast_to(self.fraction[:, None], conviction.shape).copy()
            if "vol_target" in self.modes:
                m = self.modes["vol_target"]
                scale[m] = self.target_vol[m, None] / self._annual_vol.take(t[m], axis=0)
            if "risk_per_trade" in self.modes:
                m = self.modes["risk_per_trade"]
                risk = self.risk
                if risk_per_trade is not None:  # envs of untiered profiles: NaN, their own
                    risk = np.where(np.isnan(risk_per_trade), self.risk, risk_per_trade)
                scale[m] = risk[m, None] / np.maximum(stop_distance[m], 1e-6)
            if "kelly" in self.modes:
                m = self.modes["kelly"]
                scale[m] = self.kelly_fraction()[m, None]
        weights = conviction * scale
        return cap_gross(weights, self.max_leverage)

    def kelly_fraction(self) -> np.ndarray:
        """Capped, scaled Kelly fraction [N] of the agent's signal (``fraction`` until warm)."""
        var = self.signal_second - self.signal_mean * self.signal_mean
        kelly = self.signal_mean / np.maximum(var, 1e-12)
        kelly *= self.kelly_scale
        np.minimum(np.maximum(kelly, 0.0, out=kelly), self.kelly_cap, out=kelly)
        return np.where(self.signal_bars >= self.kelly_min, kelly, self.fraction)

    def update(self, asset_returns: np.ndarray) -> None:
        """Record the signal's return over the bar that just closed: ``asset_returns`` [N, A]
        are the assets' simple returns from the decision bar's close to this one's."""
        if "kelly" not in self.modes or self.conviction is None:
            return
        c = self.conviction
        gross = row_sum(np.abs(c))
        r = np.divide(row_sum(c * asset_returns), gross, out=np.zeros_like(gross), where=gross > 0)
        self.signal_mean += self.kelly_rate * (r - self.signal_mean)
        self.signal_second += self.kelly_rate * (r * r - self.signal_second)
        self.signal_bars += 1

    def reset_envs(self, mask: np.ndarray) -> None:
        self.signal_mean[mask] = 0.0
        self.signal_second[mask] = 0.0
        self.signal_bars[mask] = 0.0

    _STATE = ("signal_mean", "signal_second", "signal_bars")

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).copy() for name in self._STATE}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name in self._STATE:
            setattr(self, name, np.asarray(state[name], dtype=np.float64).copy())
