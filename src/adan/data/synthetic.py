"""Seeded synthetic multi-asset market with hidden regimes and planted, learnable structure.

Why: RL trading code needs a market where (a) the truth is known (regime labels), (b) there is
an edge to find, so a learning curve means something, and (c) the edge is not trivial, so a
broken agent cannot look good. One market-wide regime per bar follows a persistent Markov
chain; drift persists within a regime (up / down trends, mean-reverting sideways, drift-less
volatile), volatility clusters (GARCH(1,1)), and assets are correlated via a Cholesky factor.

Two optional, return-dependent structures (off by default; ``data=synthetic_hard`` turns them
on) plant an edge that per-asset trend rules read only partly: a cross-asset lead-lag (the
drift of every asset but the first follows the first asset's return over the previous bars)
and a regime-dependent sign (returns mean-revert over a few bars in the volatile regime, while
they persist in bull / bear trends). Both are causal: bar t's return depends on closes up to
t-1, the regime and bar t's own shocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from adan.data.bars import Bars
from adan.data.regimes import BEAR, BULL, SIDEWAYS, VOLATILE


class SyntheticMarket:
    """Generator of OHLCV bars; everything is determined by ``seed``.

    Defaults (hourly bars): regimes last 1 / (1 - 0.995) = 200 bars on average; base volatility
    0.6 %/bar (asset i scaled by 1 + 0.25 i); bull / bear drift is +/- 0.15 x the regime's
    volatility per bar, so one bar is nearly pure noise but a 24-bar window has a drift/noise
    ratio of 0.15 * sqrt(24) ~ 0.7, which momentum features can read. Sideways has 0.6x
    volatility and mean-reverts (``mean_reversion`` per bar, half-life ~70 bars) to its
    starting level; volatile has 2x volatility and no drift. Bull and bear are symmetric, so
    buy-and-hold has no expected edge.

    Planted return-dependent drifts; each coefficient is the drift's typical size in units of
    the asset's own one-bar volatility, a little above the correlation of its signal with the
    next bar's return once volatility clusters (``data=synthetic_hard``: 0.10 for
    ``lead_lag=0.15``, -0.21 in volatile bars for ``volatile_reversal=0.25``). 0, the
    default, leaves the bars exactly as they are without it:

    - ``lead_lag``: asset j >= 1 drifts by ``lead_lag`` x (asset j's volatility scale / asset
      0's) x asset 0's log return over the previous ``lead_lag_window`` bars / sqrt(window).
      Asset j's own past says little about it (only through ``correlation``); asset 0's does.
    - ``volatile_reversal``: in the volatile regime every asset drifts by -``volatile_reversal``
      x its own log return over the previous ``reversal_window`` bars / sqrt(window), so
      short-horizon momentum is wrong there while it is right in bull / bear trends. Below
      1 / sqrt(``reversal_window``), so the returns stay stationary.
    """

    def __init__(
        self,
        n_assets: int = 2,
        n_bars: int = 20000,
        seed: int = 0,
        freq: str = "1h",
        start: str = "2020-01-01",
        regime_persistence: float = 0.995,
        correlation: float = 0.5,
        base_vol: float = 0.006,
        trend_strength: float = 0.15,
        vol_multipliers: Sequence[float] = (1.0, 1.0, 0.6, 2.0),
        mean_reversion: float = 0.01,
        garch_alpha: float = 0.08,
        garch_beta: float = 0.9,
        start_prices: Sequence[float] | None = None,
        asset_names: Sequence[str] | None = None,
        gap_vol: float = 0.1,
        base_volume: float = 1e6,
        lead_lag: float = 0.0,
        lead_lag_window: int = 24,
        volatile_reversal: float = 0.0,
        reversal_window: int = 4,
    ) -> None:
        if n_assets < 1 or n_bars < 2:
            raise ValueError(f"need n_assets >= 1 and n_bars >= 2, got {n_assets}, {n_bars}")
        if not 0.0 <= regime_persistence < 1.0:
            raise ValueError(f"regime_persistence must be in [0, 1), got {regime_persistence}")
        if not -1.0 / max(n_assets - 1, 1) < correlation < 1.0:
            raise ValueError(f"correlation {correlation} gives a non positive-definite matrix")
        if garch_alpha < 0 or garch_beta < 0 or garch_alpha + garch_beta >= 1:
            raise ValueError(f"need garch_alpha + garch_beta < 1, got {garch_alpha}, {garch_beta}")
        if len(vol_multipliers) != 4:
            raise ValueError(
                f"vol_multipliers needs 4 values (one per regime), got {vol_multipliers}"
            )
        self.n_assets, self.n_bars, self.seed = int(n_assets), int(n_bars), int(seed)
        self.freq, self.start = freq, start
        self.regime_persistence, self.correlation = float(regime_persistence), float(correlation)
        self.base_vol, self.trend_strength = float(base_vol), float(trend_strength)
        self.vol_multipliers = tuple(float(v) for v in vol_multipliers)
        self.mean_reversion = float(mean_reversion)
        self.garch_alpha, self.garch_beta = float(garch_alpha), float(garch_beta)
        self.start_prices = (
            tuple(100.0 * 0.5**i for i in range(n_assets))
            if start_prices is None
            else tuple(float(p) for p in start_prices)
        )
        self.asset_names = (
            tuple(f"SYN{i}" for i in range(n_assets)) if asset_names is None else tuple(asset_names)
        )
        if len(self.start_prices) != n_assets or len(self.asset_names) != n_assets:
            raise ValueError("start_prices and asset_names need one entry per asset")
        self.gap_vol, self.base_volume = float(gap_vol), float(base_volume)
        for name, value in (
            ("lead_lag_window", lead_lag_window),
            ("reversal_window", reversal_window),
        ):
            if isinstance(value, bool) or not float(value).is_integer() or value < 1:
                raise ValueError(f"{name} must be an integer >= 1 bar, got {value!r}")
        if not -1.0 < lead_lag < 1.0:
            raise ValueError(f"lead_lag must be in (-1, 1), got {lead_lag}")
        if lead_lag != 0 and n_assets < 2:
            raise ValueError(f"lead_lag needs n_assets >= 2 (asset 0 leads), got {n_assets}")
        bound = 1.0 / np.sqrt(reversal_window)
        if not 0.0 <= volatile_reversal < bound:
            raise ValueError(
                f"volatile_reversal must be in [0, 1/sqrt(reversal_window) = {bound:.3g}) "
                f"(stationary returns), got {volatile_reversal}"
            )
        self.lead_lag, self.lead_lag_window = float(lead_lag), int(lead_lag_window)
        self.volatile_reversal, self.reversal_window = (
            float(volatile_reversal),
            int(reversal_window),
        )

    def __repr__(self) -> str:
        return (
            f"SyntheticMarket(n_assets={self.n_assets}, n_bars={self.n_bars}, seed={self.seed}, "
            f"freq={self.freq!r}, persistence={self.regime_persistence})"
        )

    def _regimes(self, rng: np.random.Generator) -> np.ndarray:
        """Markov chain: stay with p=persistence, else jump uniformly to one of the others."""
        t = self.n_bars
        p_switch = 1.0 - self.regime_persistence
        n_runs = int(t * p_switch * 2) + 16 if p_switch > 0 else 1
        lengths = rng.geometric(p_switch, size=n_runs) if p_switch > 0 else np.array([t])
        while lengths.sum() < t:  # practically never; keeps the chain exact for any seed
            lengths = np.concatenate([lengths, rng.geometric(p_switch, size=n_runs)])
        steps = rng.integers(1, 4, size=len(lengths))  # jump to one of the 3 other regimes
        states = (rng.integers(0, 4) + np.concatenate([[0], np.cumsum(steps[1:])])) % 4
        return np.repeat(states, lengths)[:t].astype(np.int8)

    def generate(self) -> Bars:
        """Draw one market history; same seed, bit-identical bars."""
        rng = np.random.default_rng(self.seed)
        t, a = self.n_bars, self.n_assets
        regimes = self._regimes(rng)

        corr = np.full((a, a), self.correlation) + np.eye(a) * (1.0 - self.correlation)
        z = rng.standard_normal((t, a)) @ np.linalg.cholesky(corr).T  # correlated N(0, 1)

        # GARCH(1,1) on unit-variance shocks: h_t = w + alpha * e_{t-1}^2 + beta * h_{t-1}.
        w, al, be = 1.0 - self.garch_alpha - self.garch_beta, self.garch_alpha, self.garch_beta
        h = np.empty((t, a))
        ht = np.ones(a)
        for i in range(t):
            h[i] = ht
            ht = w + al * ht * z[i] ** 2 + be * ht
        eps = np.sqrt(h) * z

        asset_scale = 1.0 + 0.25 * np.arange(a)  # later assets are somewhat more volatile
        regime_vol = np.asarray(self.vol_multipliers)[regimes]
        vol = self.base_vol * regime_vol[:, None] * asset_scale[None, :]  # [T, A] regime vol
        cond_vol = vol * np.sqrt(h)
        sign = np.select([regimes == BULL, regimes == BEAR], [1.0, -1.0], 0.0)
        ret = sign[:, None] * self.trend_strength * vol + vol * eps
        if self.lead_lag != 0 or self.volatile_reversal != 0:
            log_close = self._integrate_planted(ret, regimes, asset_scale)
        else:  # today's path, kept as it was: the default bars stay bit-identical
            log_close = self._integrate(ret, regimes)
        log_close = log_close + np.log(self.start_prices)[None, :]

        close = np.exp(log_close)
        prev_close = np.vstack([np.asarray(self.start_prices)[None, :], close[:-1]])
        gap = self.gap_vol * cond_vol * rng.standard_normal((t, a))
        open_ = prev_close * np.exp(gap)
        wick = 0.5 * cond_vol
        high = np.maximum(open_, close) * np.exp(wick * np.abs(rng.standard_normal((t, a))))
        low = np.minimum(open_, close) * np.exp(-wick * np.abs(rng.standard_normal((t, a))))
        log_vol = (
            np.log(self.base_volume / np.asarray(self.start_prices))[None, :]
            + 0.35 * np.abs(eps)
            + 0.5 * np.log(cond_vol / self.base_vol)
            + 0.3 * rng.standard_normal((t, a))
        )
        timestamps = pd.date_range(self.start, periods=t, freq=self.freq).values.astype(
            "datetime64[ns]"
        )
        return Bars(
            timestamps=timestamps,
            assets=self.asset_names,
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=np.exp(log_vol),
            regimes=regimes,
        )

    def _integrate(self, ret: np.ndarray, regimes: np.ndarray) -> np.ndarray:
        """Cumulative log price; inside sideways runs, pull back towards the run's start level.

        Within a sideways run x_k = (1 - kappa) x_{k-1} + r_k (x = log price minus the level at
        the run's start), i.e. x_k = d_k * ((1 - kappa) x_{-1} + sum_j r_j / d_j) with
        d_k = (1 - kappa)^k, evaluated in blocks of 256 bars so 1 / d_j stays small.
        """
        kappa = self.mean_reversion
        if kappa <= 0:
            return np.cumsum(ret, axis=0)
        change = np.flatnonzero(np.diff(regimes)) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [len(regimes)]])
        out = np.empty_like(ret)
        offset = np.zeros(ret.shape[1])  # log price at the end of the previous run
        for s, e in zip(starts, stops, strict=True):
            if regimes[s] != SIDEWAYS:
                out[s:e] = offset + np.cumsum(ret[s:e], axis=0)
            else:
                level = np.zeros(ret.shape[1])
                for b in range(s, e, 256):
                    seg = ret[b : min(b + 256, e)]
                    d = (1.0 - kappa) ** np.arange(len(seg))[:, None]
                    x = d * ((1.0 - kappa) * level + np.cumsum(seg / d, axis=0))
                    out[b : b + len(seg)] = offset + x
                    level = x[-1]
            offset = out[e - 1]
        return out

    def _integrate_planted(
        self, ret: np.ndarray, regimes: np.ndarray, asset_scale: np.ndarray
    ) -> np.ndarray:
        """Cumulative log price as ``_integrate``, bar by bar, adding the return-dependent
        drifts (``lead_lag``, ``volatile_reversal``) from the log closes before each bar.

        Causal by construction: bar i's log return is ``ret[i]`` (its own shocks, its regime's
        drift) plus terms of the realised log returns of bars < i only.
        """
        t, a = ret.shape
        kappa = max(self.mean_reversion, 0.0)
        ll, n_ll = self.lead_lag, self.lead_lag_window
        rev, n_rev = self.volatile_reversal, self.reversal_window
        ll_gain = ll * asset_scale[1:] / asset_scale[0] / np.sqrt(n_ll)
        rev_gain = rev / np.sqrt(n_rev)
        sideways, volatile = regimes == SIDEWAYS, regimes == VOLATILE
        # cum[i] = log price after bar i-1 (cum[0] = 0): a window's return is a difference
        cum = np.zeros((t + 1, a))
        anchor = np.zeros(a)  # log price where the current sideways run started
        for i in range(t):
            r = ret[i].copy()
            prev = cum[i]
            if ll != 0:
                r[1:] += ll_gain * (prev[0] - cum[max(i - n_ll, 0), 0])
            if rev != 0 and volatile[i]:
                r -= rev_gain * (prev - cum[max(i - n_rev, 0)])
            if sideways[i] and kappa > 0:
                if i == 0 or not sideways[i - 1]:
                    anchor = prev
                cum[i + 1] = anchor + (1.0 - kappa) * (prev - anchor) + r
            else:
                cum[i + 1] = prev + r
        return cum[1:]
