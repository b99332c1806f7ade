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
from adan.market import kernels
from adan.market.profiles import profile_index

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
_NO_CAP = np.zeros(0)  # no exposure cap (the kernels' form)


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

    asset: str | None = None  # trade this asset to cancel the book's net beta; null: no hedge
    window: int = 168  # bars of log returns behind each rolling beta (>= 2)

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

    max_position: float | None = None  # max |w| per asset, x equity; null: no limit
    max_gross: float | None = None  # max sum |w|, x equity; null: no limit
    max_net: float | None = None  # max |sum w|, x equity; null: no limit
    # max |w_a| / sum |w|, (0, 1], applied only with more than one asset; null: no limit
    max_concentration: float | None = None
    # loss, as a fraction of the (UTC) day's opening equity, that flattens the book for the
    # rest of the day, (0, 1); null: no limit
    daily_loss: float | None = None
    # kill switch: drawdown from the episode peak that flattens the book for the rest of the
    # episode, (0, 1); null: off
    max_drawdown: float | None = None
    # capital tiers by equity (see default_tiers and trading/profile/*.yaml); the current
    # tier's max_position / max_gross apply too (the tighter wins); null: none
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


def _per_env_array(value: object, dtype: type, n: int) -> np.ndarray:
    """``value`` as an [n] array of ``dtype`` (broadcast only when it is not one already)."""
    value = np.asarray(value, dtype=dtype)
    return value if value.shape == (n,) else np.broadcast_to(value, (n,))


class RiskManager:
    """Per-env risk limits for N envs over A assets, one ``RiskConfig`` per profile.

    Order of ``apply``: kill switch / daily loss (flatten) -> hedge -> tier -> max_position
    -> max_concentration -> max_net -> max_gross / exposure_cap. Each rule works on the
    previous one's output and only shrinks |w|; max_net and max_gross scale the whole book
    uniformly (keeping every ratio), so the result satisfies all limits at once. Per-asset
    clips (tier, max_position, concentration) can loosen an exact hedge; uniform scaling
    keeps it. The rules from tier on are row-local: rows already within every limit (which
    they would leave unchanged) skip them, and only the others run them, in that order.

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
        profile = profile_index(configs, profile, "RiskManager")
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
        # Rules off for every env are skipped in ``apply`` (decided once, here).
        self._has_kill = bool(np.isfinite(self.max_drawdown).any())
        self._has_daily = bool(self._daily_on.any())
        self._has_net = bool(np.isfinite(self.max_net).any())
        self._has_conc = bool(np.isfinite(self.max_concentration).any())
        # Halt when equity <= day_start x keep; NaN (never true) for envs without the rule.
        self._daily_keep = np.where(self._daily_on, 1.0 - self.daily_loss, np.nan)
        self._build_tiers(configs, profile)

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
        self._hedge_envs = np.flatnonzero(self._hedge_slot >= 0)
        self._hedge_col = self._hedge_asset[self._hedge_slot[self._hedge_envs]]

        self.killed = np.zeros(n, dtype=bool)
        self.halted = np.zeros(n, dtype=bool)  # daily loss hit: flat until a new day
        self.day_start_equity = np.zeros(n)
        self.current_day = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        self.clips = {rule: np.zeros(n, dtype=np.int64) for rule in RULES}
        self.breached = {rule: np.zeros(n, dtype=bool) for rule in RULES}
        # Shared by every rule that changed nothing on a step; read-only so it stays all False.
        self._unchanged = np.zeros(n, dtype=bool)
        self._unchanged.flags.writeable = False
        self._flatten_consts = (
            self.day,
            self._has_kill,
            self.max_drawdown,
            self._has_daily,
            self._daily_keep,
        )
        self._within_consts = (self._has_conc, self.max_concentration, self._has_net, self.max_net)
        # The rules ``_limit_rows`` records (tier only with tiers, as it is never applied
        # without: a restored ``breached["tier"]`` then stays as loaded).
        self._limit_rules = ("max_position", "max_gross", "max_net", "max_concentration")
        if self.has_tiers:
            self._limit_rules += ("tier",)

    def _build_tiers(self, configs: list[RiskConfig], profile: np.ndarray) -> None:
        """Tier limits as flat tables over slots: a profile with K tiers owns K slots (tier
        j at slot base + j), one without tiers owns one slot (tier -1: no limit, NaN risk).
        ``_tier_slot`` turns equity into each env's slot, so a lookup is one gather; the
        ``_tab_*_limit`` tables fold in the profile's own max_position / max_gross."""
        inf = np.inf
        pos, gross, risk, index, pos_limit, gross_limit, base = [], [], [], [], [], [], []
        self._tier_search = []  # (-thresholds ascending, slot base, member envs or None)
        for p, c in enumerate(configs):
            base.append(len(pos))
            own_pos = inf if c.max_position is None else c.max_position
            own_gross = inf if c.max_gross is None else c.max_gross
            tiers = [(t.max_position, t.max_gross, t.risk_per_trade) for t in c.tiers or ()]
            for j, (t_pos, t_gross, t_risk) in enumerate(tiers or [(inf, inf, np.nan)]):
                pos.append(t_pos)
                gross.append(t_gross)
                risk.append(t_risk)
                index.append(j if tiers else -1)
                pos_limit.append(min(t_pos, own_pos))
                gross_limit.append(min(t_gross, own_gross))
            members = profile == p
            if len(tiers) > 1 and members.any():
                # Equity below the first threshold uses the first tier: only the others count.
                mins = np.array([t.min_equity for t in c.tiers[1:]], dtype=np.float64)
                self._tier_search.append(
                    (-mins[::-1], base[-1], None if members.all() else members)
                )
        self.has_tiers = any(bool(c.tiers) for c in configs)
        self._slot_base = np.array(base, dtype=np.int64)[profile]
        self._tab_pos, self._tab_gross = np.array(pos), np.array(gross)
        self._tab_risk, self._tab_index = np.array(risk), np.array(index, dtype=np.int64)
        self._tab_pos_limit, self._tab_gross_limit = np.array(pos_limit), np.array(gross_limit)

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
        t = _per_env_array(t, np.int64, n)
        equity = np.asarray(equity, dtype=np.float64)
        drawdown = np.asarray(drawdown, dtype=np.float64)
        if exposure_cap is not None:
            exposure_cap = _per_env_array(exposure_cap, np.float64, n)

        # Kill switch (sticky until reset_envs), then the daily loss halt (a new day re-bases
        # the opening equity and lifts it): both flatten, in one compiled pass.
        kill_changed, daily_changed = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
        state = (self.killed, self.halted, self.day_start_equity, self.current_day)
        kills, halts = kernels.risk_flatten(
            w, t, equity, drawdown, state, self._flatten_consts, kill_changed, daily_changed
        )
        self._record("kill_switch", kill_changed, kills)
        self._record("daily_loss", daily_changed, halts)

        if self._hedge_envs.size:
            self._hedge(w, t)

        # Rows within every limit would come out of the rules unchanged: only the others
        # (usually a few, or none) run them.
        slot = self._tier_slot(equity) if self.has_tiers else None
        if slot is None:
            pos_limit, gross_limit = self.max_position, self.max_gross
        else:
            pos_limit, gross_limit = self._tab_pos_limit[slot], self._tab_gross_limit[slot]
        within = np.empty(n, dtype=bool)
        cap = _NO_CAP if exposure_cap is None else exposure_cap
        outside = kernels.risk_within(w, pos_limit, gross_limit, cap, self._within_consts, within)
        rows = np.flatnonzero(~within) if outside else None
        self._limit_rows(w, rows, slot, exposure_cap)
        return w

    def _record(self, rule: str, changed: np.ndarray, count: int) -> None:
        """Rule ``rule`` changed rows ``changed`` [N] (``count`` of them) on this step."""
        if count:
            self.clips[rule] += changed
            self.breached[rule] = changed
        else:
            self.breached[rule] = self._unchanged

    def _limit_rows(
        self,
        w: np.ndarray,
        rows: np.ndarray | None,
        slot: np.ndarray | None,
        exposure_cap: np.ndarray | None,
    ) -> None:
        """Tier -> max_position -> max_concentration -> max_net -> max_gross / exposure_cap
        on rows ``rows`` of ``w`` (None: none), in place, recording every rule."""
        if rows is None:
            for rule in self._limit_rules:
                self.breached[rule] = self._unchanged
            return
        sub = w[rows]
        if self.has_tiers:
            before = sub.copy()
            pos = self._tab_pos[slot[rows], None]
            np.clip(sub, -pos, pos, out=sub)
            _scale_gross(sub, self._tab_gross[slot[rows]])
            self._record_rows("tier", rows, (sub != before).any(axis=1))

        before = sub.copy()
        pos = self.max_position[rows, None]
        np.clip(sub, -pos, pos, out=sub)
        self._record_rows("max_position", rows, (sub != before).any(axis=1))

        # Without a finite limit anywhere these two can change no row: skipped.
        if self._has_conc:
            conc = _cap_concentration(sub, self.max_concentration[rows])
            self._record_rows("max_concentration", rows, conc)
        else:
            self.breached["max_concentration"] = self._unchanged

        if self._has_net:
            max_net = self.max_net[rows]
            net = np.abs(sub.sum(axis=1))
            over = net > max_net
            if over.any():
                sub[over] *= (max_net[over] / net[over])[:, None]
            self._record_rows("max_net", rows, over)
        else:
            self.breached["max_net"] = self._unchanged

        cap = self.max_gross[rows]
        if exposure_cap is not None:
            cap = np.minimum(cap, exposure_cap[rows])
        self._record_rows("max_gross", rows, _scale_gross(sub, cap))
        w[rows] = sub

    def _record_rows(self, rule: str, rows: np.ndarray, changed: np.ndarray) -> None:
        """Rule ``rule`` changed rows ``rows[changed]`` (and no other row) on this step."""
        if changed.any():
            breached = np.zeros(self.num_envs, dtype=bool)
            breached[rows] = changed
            self.clips[rule][rows] += changed
        else:
            breached = self._unchanged
        self.breached[rule] = breached

    def _hedge(self, w: np.ndarray, t: np.ndarray) -> None:
        """Set each hedged env's hedge-asset weight to -sum_{a != h} beta[t, a] w_a."""
        envs, h = self._hedge_envs, self._hedge_col
        beta = self._betas[self._hedge_slot[envs], t[envs]]  # [n_h, A], a new array
        beta[np.arange(envs.size), h] = 0.0
        w[envs, h] = -np.einsum("na,na->n", beta, w[envs])

    # ------------------------------------------------------------------------ queries
    def _tier_slot(self, equity: np.ndarray) -> np.ndarray:
        """[N] each env's current tier as a slot of the ``_tab_*`` tables (see _build_tiers).

        The tier is the last one whose min_equity <= equity, and at least the first: the
        count of thresholds after the first that are <= equity. With the thresholds negated
        and ascending that is len - searchsorted(-thresholds, -equity), which, unlike the
        direct search, also gives 0 for NaN equity (NaN sorts last)."""
        if not self._tier_search:
            return self._slot_base
        neg_equity = -np.asarray(equity, dtype=np.float64)
        slot = None
        for neg_mins, base, members in self._tier_search:
            above = np.searchsorted(neg_mins, neg_equity)  # thresholds > equity
            if members is None:  # the profile holds every env
                return (base + len(neg_mins)) - above
            if slot is None:
                slot = self._slot_base.copy()
            np.subtract(base + len(neg_mins), above, out=slot, where=members)
        return slot

    def tier_index(self, equity: np.ndarray) -> np.ndarray:
        """[N] int tier each env's ``equity`` falls in (-1 without tiers).

        The tier is the last one whose min_equity <= equity; equity below the first tier's
        threshold uses the first tier.
        """
        return self._tab_index[self._tier_slot(equity)]

    def risk_per_trade(self, equity: np.ndarray) -> np.ndarray | None:
        """[N] the current tier's risk_per_trade (NaN for envs of a profile without tiers),
        or None when no profile has tiers."""
        if not self.has_tiers:
            return None
        return self._tab_risk[self._tier_slot(equity)]

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
def _row_max(mag: np.ndarray) -> np.ndarray:
    """[N] max over assets of ``mag`` [N, A] >= 0 (NaN if any is), as ``mag.max(axis=1)``.

    Up to 2 assets column by column: numpy's axis-1 reductions over tiny rows are ~10x
    slower than one elementwise op."""
    if mag.shape[1] == 1:
        return mag[:, 0]
    if mag.shape[1] == 2:
        return np.maximum(mag[:, 0], mag[:, 1])
    return mag.max(axis=1, initial=0.0)


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
