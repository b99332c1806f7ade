"""Real-time risk limits: the last word on every target book before it is traded.

The agent (and sizing) propose target weights at bar t's close; ``RiskManager.apply`` turns
them into the weights the account may actually hold, per env and per trading profile, with
pure array arithmetic over [N] / [N, A]. Every rule that changes a weight is counted, so a
limit that binds is always visible in the logs, never silently absorbed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adan.errors import check

RULES = (
    "max_position",
    "max_gross",
    "max_net",
    "max_concentration",
    "daily_loss",
    "kill_switch",
    "tier",
)
_KEY = "trading.risk"
_EPS = 1e-12


def _number(value: object, key: str, none_ok: bool = True) -> float | None:
    """``value`` as a finite float (YAML may give ints), None passed through if allowed."""
    if value is None and none_ok:
        return None
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    check(ok, key, "must be a number" + (" or null" if none_ok else ""), value)
    check(math.isfinite(value), key, "must be finite", value)
    return float(value)


# ------------------------------------------------------------------------------- configs
@dataclass
class TierConfig:
    """One capital tier: limits that apply while equity >= ``min_equity`` (quote currency).

    ``max_position`` caps |w| per asset, ``max_gross`` caps sum |w| (both in units of
    equity); ``risk_per_trade`` is the fraction of equity a trade may risk (read by sizing
    through ``RiskManager.risk_per_trade``).
    """

    name: str = "custom"
    min_equity: float = 0.0
    max_position: float = 1.0
    risk_per_trade: float = 0.01
    max_gross: float = 1.0

    def __post_init__(self) -> None:
        self.validate(f"{_KEY}.tiers")

    def validate(self, key: str) -> None:
        """Check and coerce every field; errors name ``<key>.<field>``."""
        check(isinstance(self.name, str), f"{key}.name", "must be a string", self.name)
        self.min_equity = _number(self.min_equity, f"{key}.min_equity", none_ok=False)
        check(self.min_equity >= 0, f"{key}.min_equity", "must be >= 0", self.min_equity)
        for name in ("max_position", "max_gross"):
            value = _number(getattr(self, name), f"{key}.{name}", none_ok=False)
            check(value > 0, f"{key}.{name}", "must be > 0", value)
            setattr(self, name, value)
        rpt = _number(self.risk_per_trade, f"{key}.risk_per_trade", none_ok=False)
        check(0 < rpt <= 1, f"{key}.risk_per_trade", "must be in (0, 1]", rpt)
        self.risk_per_trade = rpt


# ADAN's five tiers (thresholds in its quote currency, USDT): small accounts concentrate
# (exchange minimum order sizes leave no room to diversify), large ones spread and risk less.
_ADAN_TIERS = (
    # name, min_equity, max_position, risk_per_trade, max_gross
    ("micro", 0.0, 0.90, 0.04, 1.0),
    ("small", 30.0, 0.70, 0.03, 1.0),
    ("medium", 100.0, 0.60, 0.025, 1.0),
    ("high", 300.0, 0.35, 0.02, 1.0),
    ("enterprise", 1000.0, 0.20, 0.015, 1.0),
)


def default_tiers(scale: float = 100.0) -> list[TierConfig]:
    """ADAN's Micro, Small, Medium, High and Enterprise tiers, thresholds times ``scale``.

    ADAN's thresholds (0, 30, 100, 300, 1000 USDT) are for tiny live accounts: at the
    framework's default 10_000 account every env would sit in Enterprise forever and the
    tiers would never switch. The default ``scale=100`` (0, 3k, 10k, 30k, 100k) starts a
    10_000 account in Medium, so losses move it down and growth moves it up. ``scale=1``
    gives ADAN's raw thresholds.
    """
    check(scale > 0 and math.isfinite(scale), f"{_KEY}.tiers", "scale must be > 0", scale)
    return [
        TierConfig(name=n, min_equity=m * scale, max_position=p, risk_per_trade=r, max_gross=g)
        for n, m, p, r, g in _ADAN_TIERS
    ]


@dataclass
class HedgeConfig:
    """Hedge the book's net beta with ``asset`` (None = off), betas over ``window`` bars."""

    asset: str | None = None
    window: int = 168

    def __post_init__(self) -> None:
        key = f"{_KEY}.hedge"
        check(
            self.asset is None or isinstance(self.asset, str),
            f"{key}.asset",
            "must be an asset name or null",
            self.asset,
        )
        ok = not isinstance(self.window, bool) and isinstance(self.window, int)
        check(ok and self.window >= 2, f"{key}.window", "must be an integer >= 2", self.window)


@dataclass
class RiskConfig:
    """Schema for ``trading.risk``; every limit None = off. Weights are fractions of equity.

    - ``max_position``: max |w| per asset. ``max_gross``: max sum |w|. ``max_net``: max
      |sum w|. ``max_concentration``: max |w_a| / sum |w| (only with A > 1), in [1/A, 1].
    - ``daily_loss``: when the account has lost this fraction of the day's opening equity,
      flatten and trade no more that (UTC) day.
    - ``max_drawdown``: kill switch; drawdown from the episode peak reaching it flattens the
      book for the rest of the episode.
    - ``tiers``: capital tiers by equity (see ``default_tiers``); the current tier's
      max_position / max_gross apply as well as the limits above (the tighter wins).
    - ``hedge``: overwrite the hedge asset's weight to cancel the book's rolling beta.
    """

    max_position: float | None = None
    max_gross: float | None = None
    max_net: float | None = None
    max_concentration: float | None = None
    daily_loss: float | None = None
    max_drawdown: float | None = None
    tiers: list[TierConfig] | None = None
    hedge: HedgeConfig = field(default_factory=HedgeConfig)

    def __post_init__(self) -> None:
        for name in ("max_position", "max_gross", "max_net"):
            value = _number(getattr(self, name), f"{_KEY}.{name}")
            check(value is None or value > 0, f"{_KEY}.{name}", "must be > 0", value)
            setattr(self, name, value)
        conc = _number(self.max_concentration, f"{_KEY}.max_concentration")
        check(conc is None or 0 < conc <= 1, f"{_KEY}.max_concentration", "must be in (0, 1]", conc)
        self.max_concentration = conc
        for name in ("daily_loss", "max_drawdown"):
            value = _number(getattr(self, name), f"{_KEY}.{name}")
            check(value is None or 0 < value < 1, f"{_KEY}.{name}", "must be in (0, 1)", value)
            setattr(self, name, value)
        if isinstance(self.hedge, dict):
            self.hedge = HedgeConfig(**self.hedge)
        check(isinstance(self.hedge, HedgeConfig), f"{_KEY}.hedge", "must be a mapping", None)
        if self.tiers is not None:
            tiers = [TierConfig(**t) if isinstance(t, dict) else t for t in self.tiers]
            check(len(tiers) > 0, f"{_KEY}.tiers", "must be null or non-empty", self.tiers)
            for i, tier in enumerate(tiers):
                check(isinstance(tier, TierConfig), f"{_KEY}.tiers[{i}]", "must be a tier", tier)
                tier.validate(f"{_KEY}.tiers[{i}]")
            mins = [t.min_equity for t in tiers]
            check(
                all(a < b for a, b in zip(mins, mins[1:], strict=False)),
                f"{_KEY}.tiers",
                "min_equity must be strictly increasing",
                mins,
            )
            self.tiers = tiers


# --------------------------------------------------------------------------------- betas
def rolling_beta(close: np.ndarray, hedge: int, window: int) -> np.ndarray:
    """Causal beta [T, A] of each asset's log returns on asset ``hedge``'s.

    Beta at bar t uses the last ``window`` log returns up to and including bar t's (return t
    = log(close[t] / close[t-1])), and needs at least max(2, window // 2) of them; before
    that (and wherever the hedge asset did not move) it is 0, i.e. no hedge.
    """
    logp = np.log(np.asarray(close, dtype=np.float64))
    ret = pd.DataFrame(np.diff(logp, axis=0, prepend=np.nan))
    roll = ret.rolling(window, min_periods=max(2, window // 2))
    cov = roll.cov(ret[hedge]).to_numpy()
    var = roll.var().to_numpy()[:, hedge : hedge + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = cov / var
    beta[~np.isfinite(beta) | ~(var > 0)] = 0.0
    return beta


# ------------------------------------------------------------------------------- manager
def _per_env(values: Sequence[float | None], profile: np.ndarray, none: float) -> np.ndarray:
    """[N] float64 of one parameter per profile (None -> ``none``), gathered by profile."""
    table = np.array([none if v is None else v for v in values], dtype=np.float64)
    return table[profile]


class RiskManager:
    """Per-env risk limits for N envs over A assets, one ``RiskConfig`` per profile.

    Order of ``apply``: kill switch / daily loss (flatten) -> hedge -> tier -> max_position
    -> max_concentration -> max_net -> max_gross / exposure_cap. Each rule works on the
    previous one's output and only shrinks |w|; max_net and max_gross scale the whole book
    uniformly (keeping every ratio), so the result satisfies all limits at once. Per-asset
    clips (tier, max_position, concentration) can loosen an exact hedge; uniform scaling
    keeps it.

    **Day rule.** The day's opening equity is the equity at the close of the first bar of a
    new UTC day seen by the env (``day[t]`` differs from the day it last saw), or at the
    episode start (``reset_envs``). When equity <= (1 - daily_loss) x that, the env is halted
    (flattened) until it sees a new day.

    **Counters.** ``clips[rule]`` [N] int64: steps on which the rule changed at least one
    weight of the env (cumulative since construction, not reset by new episodes);
    ``breached[rule]`` [N] bool: the rule changed a weight on the last ``apply``. A step
    flattened by the kill switch counts for ``kill_switch`` only; the exposure cap from the
    behaviour engine counts as ``max_gross``.
    """

    def __init__(
        self,
        configs: Sequence[RiskConfig],
        profile: np.ndarray,
        assets: Sequence[str],
        close: np.ndarray,
        day: np.ndarray,
    ) -> None:
        configs = list(configs)
        profile = np.asarray(profile, dtype=np.int64).reshape(-1)
        if not configs:
            raise ValueError("RiskManager needs at least one RiskConfig")
        if profile.size and (profile.min() < 0 or profile.max() >= len(configs)):
            raise ValueError(f"profile indices must be in [0, {len(configs)}), got {profile}")
        close = np.asarray(close, dtype=np.float64)
        day = np.asarray(day, dtype=np.int64)
        self.assets = tuple(assets)
        a = len(self.assets)
        if close.ndim != 2 or close.shape[1] != a:
            raise ValueError(f"close has shape {close.shape}, expected [T, {a}]")
        if day.shape != (close.shape[0],):
            raise ValueError(f"day has shape {day.shape}, expected ({close.shape[0]},)")
        n = profile.size
        self.num_envs, self.num_assets = n, a
        self.profile = profile
        self.day = day

        inf = np.inf
        self.max_position = _per_env([c.max_position for c in configs], profile, inf)
        self.max_gross = _per_env([c.max_gross for c in configs], profile, inf)
        self.max_net = _per_env([c.max_net for c in configs], profile, inf)
        for c in configs:
            conc = c.max_concentration
            check(
                conc is None or a == 1 or conc >= 1.0 / a - _EPS,
                f"{_KEY}.max_concentration",
                f"must be >= 1/A = {1.0 / a:.6g} with {a} assets",
                conc,
            )
        conc_off = 1.0 if a > 1 else inf
        self.max_concentration = _per_env(
            [c.max_concentration if a > 1 else None for c in configs], profile, conc_off
        )
        self.max_concentration[self.max_concentration >= 1.0] = inf  # share <= 1 always
        self.daily_loss = _per_env([c.daily_loss for c in configs], profile, 0.0)
        self._daily_on = np.array([c.daily_loss is not None for c in configs])[profile]
        self.max_drawdown = _per_env([c.max_drawdown for c in configs], profile, inf)

        # Tiers: profiles padded to K tiers; padding never matches (min_equity = inf).
        k = max((len(c.tiers) for c in configs if c.tiers), default=0)
        self.has_tiers = k > 0
        shape = (len(configs), max(k, 1))
        t_min, t_pos = np.full(shape, inf), np.full(shape, inf)
        t_gross, t_risk = np.full(shape, inf), np.full(shape, np.nan)
        for p, c in enumerate(configs):
            for j, tier in enumerate(c.tiers or ()):
                t_min[p, j], t_pos[p, j] = tier.min_equity, tier.max_position
                t_gross[p, j], t_risk[p, j] = tier.max_gross, tier.risk_per_trade
        self._tiered = np.array([bool(c.tiers) for c in configs])[profile]
        self._tier_min, self._tier_pos = t_min[profile], t_pos[profile]
        self._tier_gross, self._tier_risk = t_gross[profile], t_risk[profile]

        # Hedges: one beta table per distinct (asset, window); env -> slot (-1 = none).
        slots: dict[tuple[int, int], int] = {}
        slot_of_profile = []
        for c in configs:
            if c.hedge.asset is None:
                slot_of_profile.append(-1)
                continue
            check(
                c.hedge.asset in self.assets,
                f"{_KEY}.hedge.asset",
                f"must be one of {list(self.assets)}",
                c.hedge.asset,
            )
            key = (self.assets.index(c.hedge.asset), c.hedge.window)
            slot_of_profile.append(slots.setdefault(key, len(slots)))
        self._hedge_slot = np.array(slot_of_profile, dtype=np.int64)[profile]
        self._hedge_asset = np.array([h for h, _ in slots], dtype=np.int64)
        self._betas = (
            np.stack([rolling_beta(close, h, w) for h, w in slots])
            if slots
            else np.zeros((0,) + close.shape)
        )

        self.killed = np.zeros(n, dtype=bool)
        self.halted = np.zeros(n, dtype=bool)  # daily loss hit: flat until a new day
        self.day_start_equity = np.zeros(n)
        self.current_day = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self.clips = {rule: np.zeros(n, dtype=np.int64) for rule in RULES}
        self.breached = {rule: np.zeros(n, dtype=bool) for rule in RULES}

    # --------------------------------------------------------------------------- apply
    def apply(
        self,
        weights: np.ndarray,
        t: np.ndarray,
        equity: np.ndarray,
        drawdown: np.ndarray,
        exposure_cap: np.ndarray | None = None,
    ) -> np.ndarray:
        """Allowed weights [N, A] (new array) for targets ``weights`` decided at bar ``t``.

        ``t`` [N] int decision bar, ``equity`` / ``drawdown`` [N] at t's close,
        ``exposure_cap`` [N] optional extra cap on gross exposure.
        """
        w = np.array(weights, dtype=np.float64, copy=True)
        n = self.num_envs
        if w.shape != (n, self.num_assets):
            raise ValueError(f"weights have shape {w.shape}, expected ({n}, {self.num_assets})")
        t = np.broadcast_to(np.asarray(t, dtype=np.int64), (n,))
        equity = np.asarray(equity, dtype=np.float64)
        drawdown = np.asarray(drawdown, dtype=np.float64)

        # Kill switch: sticky until reset_envs.
        self.killed |= drawdown >= self.max_drawdown
        self._record("kill_switch", self._flatten(w, self.killed))

        # Daily loss: a new day re-bases the opening equity and lifts the halt.
        today = self.day[t]
        new_day = today != self.current_day
        self.current_day = np.where(new_day, today, self.current_day)
        self.day_start_equity = np.where(new_day, equity, self.day_start_equity)
        self.halted &= ~new_day
        self.halted |= self._daily_on & (equity <= self.day_start_equity * (1.0 - self.daily_loss))
        self._record("daily_loss", self._flatten(w, self.halted))

        self._hedge(w, t)

        if self.has_tiers:
            before = w.copy()
            idx = self.tier_index(equity)
            rows = np.arange(n)
            safe = np.maximum(idx, 0)
            pos = np.where(idx >= 0, self._tier_pos[rows, safe], np.inf)
            gross = np.where(idx >= 0, self._tier_gross[rows, safe], np.inf)
            np.clip(w, -pos[:, None], pos[:, None], out=w)
            _scale_gross(w, gross)
            self._record("tier", (w != before).any(axis=1))

        before = w.copy()
        np.clip(w, -self.max_position[:, None], self.max_position[:, None], out=w)
        self._record("max_position", (w != before).any(axis=1))

        self._record("max_concentration", _cap_concentration(w, self.max_concentration))

        net = np.abs(w.sum(axis=1))
        over = net > self.max_net
        if over.any():
            w[over] *= (self.max_net[over] / net[over])[:, None]
        self._record("max_net", over)

        cap = self.max_gross if exposure_cap is None else np.minimum(self.max_gross, exposure_cap)
        self._record("max_gross", _scale_gross(w, cap))
        return w

    def _record(self, rule: str, changed: np.ndarray) -> None:
        self.breached[rule] = changed
        self.clips[rule] += changed

    @staticmethod
    def _flatten(w: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Zero rows ``mask`` of ``w`` in place; return which rows had a position to drop."""
        changed = mask & (w != 0).any(axis=1)
        w[mask] = 0.0
        return changed

    def _hedge(self, w: np.ndarray, t: np.ndarray) -> None:
        """Set each hedged env's hedge-asset weight to -sum_{a != h} beta[t, a] w_a."""
        envs = np.flatnonzero(self._hedge_slot >= 0)
        if envs.size == 0:
            return
        slot = self._hedge_slot[envs]
        h = self._hedge_asset[slot]
        beta = self._betas[slot, t[envs]].copy()  # [n_h, A]
        beta[np.arange(envs.size), h] = 0.0
        w[envs, h] = -np.einsum("na,na->n", beta, w[envs])

    # ------------------------------------------------------------------------ queries
    def tier_index(self, equity: np.ndarray) -> np.ndarray:
        """[N] int tier each env's ``equity`` falls in (-1 without tiers).

        The tier is the last one whose min_equity <= equity; equity below the first tier's
        threshold uses the first tier.
        """
        equity = np.asarray(equity, dtype=np.float64)
        idx = (self._tier_min <= equity[:, None]).sum(axis=1) - 1
        return np.where(self._tiered, np.maximum(idx, 0), -1)

    def risk_per_trade(self, equity: np.ndarray) -> np.ndarray | None:
        """[N] the current tier's risk_per_trade (NaN for envs of a profile without tiers),
        or None when no profile has tiers."""
        if not self.has_tiers:
            return None
        idx = self.tier_index(equity)
        value = self._tier_risk[np.arange(self.num_envs), np.maximum(idx, 0)]
        return np.where(idx >= 0, value, np.nan)

    def summary(self) -> dict[str, float]:
        """For logging: total clips per rule (all envs, cumulative), killed / halted fractions."""
        out = {f"risk/clips_{rule}": float(self.clips[rule].sum()) for rule in RULES}
        out["risk/killed"] = float(self.killed.mean()) if self.num_envs else 0.0
        out["risk/halted"] = float(self.halted.mean()) if self.num_envs else 0.0
        return out

    # ------------------------------------------------------------------------- state
    def reset_envs(self, mask: np.ndarray, equity: np.ndarray, t: np.ndarray) -> None:
        """New episodes for envs ``mask`` [N] bool: not killed, not halted, the day starts at
        ``equity`` [N] at bar ``t`` [N] (values of other envs are ignored)."""
        mask = np.asarray(mask, dtype=bool)
        t = np.broadcast_to(np.asarray(t, dtype=np.int64), (self.num_envs,))
        equity = np.broadcast_to(np.asarray(equity, dtype=np.float64), (self.num_envs,))
        self.killed[mask] = False
        self.halted[mask] = False
        self.day_start_equity[mask] = equity[mask]
        self.current_day[mask] = self.day[t[mask]]

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {
            "killed": self.killed.copy(),
            "halted": self.halted.copy(),
            "day_start_equity": self.day_start_equity.copy(),
            "current_day": self.current_day.copy(),
        }
        for rule in RULES:
            state[f"clips_{rule}"] = self.clips[rule].copy()
            state[f"breached_{rule}"] = self.breached[rule].copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        def get(name: str, dtype: type) -> np.ndarray:
            value = np.array(state[name], dtype=dtype, copy=True)
            if value.shape != (self.num_envs,):
                raise ValueError(
                    f"risk.{name} has shape {value.shape}, expected ({self.num_envs},)"
                )
            return value

        self.killed = get("killed", bool)
        self.halted = get("halted", bool)
        self.day_start_equity = get("day_start_equity", np.float64)
        self.current_day = get("current_day", np.int64)
        self.clips = {rule: get(f"clips_{rule}", np.int64) for rule in RULES}
        self.breached = {rule: get(f"breached_{rule}", bool) for rule in RULES}


# ----------------------------------------------------------------------- book operations
def _scale_gross(w: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Scale rows of ``w`` in place so sum |w| <= ``cap`` [N]; return the rows scaled."""
    gross = np.abs(w).sum(axis=1)
    over = gross > cap
    if over.any():
        w[over] *= (cap[over] / gross[over])[:, None]
    return over


def _cap_concentration(w: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Cap |w_a| at x per row, in place, so that max |w_a| / sum |w| <= ``limit`` [N].

    Only the largest positions shrink (to a common cap x), the rest are untouched, and x is
    the largest cap that satisfies the limit (the smallest change). With s sorted |w| in
    descending order and S_k = sum of s[k:], the capped gross is G(x) = min_k (k x + S_k)
    (concave, piecewise linear), so x <= limit * G(x) holds iff x <= limit S_k / (1 - k limit)
    for every k with k limit < 1: x is the minimum of those bounds. Returns the rows changed.
    """
    mag = np.abs(w)
    gross = mag.sum(axis=1)
    big = mag.max(axis=1, initial=0.0)
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero((big > limit * gross) & (gross > 0))
    if rows.size == 0:
        return np.zeros(len(w), dtype=bool)
    c = limit[rows, None]
    s = -np.sort(-mag[rows], axis=1)  # descending
    a = s.shape[1]
    tail = np.concatenate([np.cumsum(s[:, ::-1], axis=1)[:, ::-1], np.zeros((rows.size, 1))], 1)
    k = np.arange(a + 1)[None, :]  # k = 0 .. A capped positions; tail[:, k] = S_k
    denom = 1.0 - k * c
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(denom > _EPS, c * tail / denom, np.inf)
    cap = bound.min(axis=1)
    sub = w[rows]
    np.clip(sub, -cap[:, None], cap[:, None], out=sub)
    changed = np.zeros(len(w), dtype=bool)
    changed[rows] = (sub != w[rows]).any(axis=1)
    w[rows] = sub
    return changed
