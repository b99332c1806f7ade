"""Causal market-regime detection from prices: bull / bear / sideways / volatile per bar.

Why: a trading agent (or its reward, or a report) may want to know which kind of market it is
in, and the synthetic market's true labels let us measure how well that can be read from
prices alone. Every label at bar t uses bars <= t only (no look-ahead), so a detector's output
may be observed by an agent.

Two methods (``RegimeConfig.method``):

- ``"rules"`` (default): thresholds on three causal, scale-free statistics per asset,
  averaged over the assets for the market-wide label:

  * *volatility ratio*: log of the realised volatility (EWM of the squared log high/low range
    over ``vol_span`` bars) minus its own long-run causal level (EWM of that log volatility
    over ``vol_ref_span`` bars). Above ``volatile_threshold`` -> volatile; below
    ``quiet_threshold`` -> sideways (calm).
  * *trend strength*: Wilder's ADX over ``adx_period`` bars (0-100). A market that is only
    somewhat calm (volatility ratio below ``calm_threshold``) and has no trend (ADX below
    ``adx_threshold``) is sideways too.
  * *trend direction*: the EMA slope, i.e. the EWM mean of log returns over ``trend_span``
    bars divided by their EWM root mean square (a t-statistic-like score); > 0 bull, < 0 bear.

  The raw labels are then smoothed by a causal majority vote over the last ``smooth`` bars.
- ``"hmm"``: a 4-state Gaussian HMM on two per-bar observations (the return over its
  long-run RMS, the log range over its long-run level, averaged over the assets), tied to the
  regime structure (see `GaussianHMM`), fitted by EM with ``fit`` on a training history;
  labels come from FORWARD filtering only (state probabilities given bars <= t), never
  Viterbi or smoothing, which look ahead. The parameters are those of the fit history: fit on
  the training split, then detect anywhere.

Warm-up: the first ``warmup`` bars (not enough history for the windows) are labelled
SIDEWAYS, the neutral regime. Labels are int8 codes of ``adan.data.regimes.REGIME_NAMES``.

Volatility is judged against the history seen so far, so labels get better with history
(balanced accuracy ~0.5 over the first 2,000 bars of the synthetic market, ~0.8 after 5,000):
detect once on the whole contiguous history (train + val + test) and slice, rather than on a
short split alone. Being causal, that leaks nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from adan.data.bars import MarketData
from adan.data.regimes import BEAR, BULL, REGIME_NAMES, SIDEWAYS, VOLATILE
from adan.errors import check

METHODS = ("rules", "hmm")
N_REGIMES = len(REGIME_NAMES)
# Constant floors (not data-derived, which would look ahead) so flat bars never give log(0).
_VAR_FLOOR = 1e-20  # squared log range; real bars are ~1e-6 .. 1e-2
_RANGE_FLOOR = 1e-10  # log range


@dataclass
class RegimeConfig:
    """How regimes are detected (schema of ``data.regime``; the pipeline labels every split
    with it). Defaults: tuned on the default synthetic market, seeds 0-4
    (experiments/regime_accuracy.py; results there). Whether the agent observes the label is
    a trading setting (``trading.regime.observe``)."""

    # rules: causal rules on volatility and trend strength | hmm: a forward-filtered HMM
    method: str = "rules"
    vol_span: int = 24  # EWM span (bars) of the realised volatility
    vol_ref_span: int = 10000  # EWM span (bars) of the long-run volatility level
    trend_span: int = 96  # EWM span (bars) of the EMA slope (trend direction)
    adx_period: int = 28  # Wilder period of the ADX (trend strength)
    volatile_threshold: float = 0.3  # log vol ratio above -> volatile
    quiet_threshold: float = -0.5  # log vol ratio below -> sideways
    calm_threshold: float = -0.3  # log vol ratio below this and ADX below adx_threshold -> sideways
    adx_threshold: float = 22.0  # ADX (0-100) below -> no trend
    smooth: int = 1  # causal majority vote over the last `smooth` raw labels (1: none)
    warmup: int = 96  # first bars labelled SIDEWAYS (not enough history)
    hmm_iterations: int = 20  # EM (Baum-Welch) iterations (method="hmm")
    hmm_persistence: float = 0.995  # fixed probability that the HMM stays in its state

    def __post_init__(self) -> None:
        key = "data.regime."
        check(self.method in METHODS, key + "method", f"must be one of {METHODS}", self.method)
        for name in ("vol_span", "vol_ref_span", "trend_span", "adx_period", "smooth"):
            value = getattr(self, name)
            check(_is_int(value) and value >= 1, key + name, "must be an integer >= 1", value)
        check(
            _is_int(self.warmup) and self.warmup >= 0, key + "warmup", "must be >= 0", self.warmup
        )
        check(
            _is_int(self.hmm_iterations) and self.hmm_iterations >= 1,
            key + "hmm_iterations",
            "must be an integer >= 1",
            self.hmm_iterations,
        )
        for name in (
            "volatile_threshold",
            "quiet_threshold",
            "calm_threshold",
            "adx_threshold",
            "hmm_persistence",
        ):
            value = getattr(self, name)
            check(_is_number(value), key + name, "must be a finite number", value)
            setattr(self, name, float(value))
        check(
            self.quiet_threshold <= self.calm_threshold < self.volatile_threshold,
            key + "calm_threshold",
            "must satisfy quiet_threshold <= calm_threshold < volatile_threshold",
            self.calm_threshold,
        )
        check(
            0.0 <= self.adx_threshold <= 100.0,
            key + "adx_threshold",
            "must be in [0, 100]",
            self.adx_threshold,
        )
        check(
            0.0 < self.hmm_persistence < 1.0,
            key + "hmm_persistence",
            "must be in (0, 1)",
            self.hmm_persistence,
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _ewm(x: np.ndarray, span: float | None = None, alpha: float | None = None) -> np.ndarray:
    """Causal exponentially weighted mean along axis 0 (pandas, adjust=True: early bars are
    the weighted mean of the bars so far, not biased towards zero)."""
    return pd.DataFrame(x).ewm(span=span, alpha=alpha).mean().to_numpy()


def _as_prices(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
    arrs = [np.asarray(x, dtype=np.float64) for x in (high, low, close)]
    arrs = [x[:, None] if x.ndim == 1 else x for x in arrs]
    if not arrs[0].shape == arrs[1].shape == arrs[2].shape or arrs[0].ndim != 2:
        raise ValueError(
            f"high, low, close must share a [T, A] shape, got {[x.shape for x in arrs]}"
        )
    if np.any(~(arrs[2] > 0)) or np.any(~(arrs[1] > 0)):
        raise ValueError("prices must be positive and finite")
    return tuple(arrs)


def _log_returns(close: np.ndarray) -> np.ndarray:
    lc = np.log(close)
    return np.diff(lc, axis=0, prepend=lc[:1])


def _vol_ratio(high: np.ndarray, low: np.ndarray, cfg: RegimeConfig) -> np.ndarray:
    """[T, A] log realised volatility minus its long-run causal level (0: usual volatility)."""
    range2 = np.log(high / low) ** 2
    log_vol = 0.5 * np.log(_ewm(range2, span=cfg.vol_span) + _VAR_FLOOR)
    return log_vol - _ewm(log_vol, span=cfg.vol_ref_span)


def _trend(close: np.ndarray, cfg: RegimeConfig) -> np.ndarray:
    """[T, A] EMA slope of log price over its EWM RMS return: > 0 rising, < 0 falling."""
    r = _log_returns(close)
    rms = np.sqrt(_ewm(r**2, span=cfg.trend_span))
    mean = _ewm(r, span=cfg.trend_span)
    return np.divide(mean, rms, out=np.zeros_like(mean), where=rms > 0)


def _adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """[T, A] Wilder's average directional index (0-100): trend strength, no direction."""
    prev_close = np.vstack([close[:1], close[:-1]])
    up = np.diff(high, axis=0, prepend=high[:1])
    down = -np.diff(low, axis=0, prepend=low[:1])
    plus_dm = np.where((up > down) & (up > 0), up, 0.0)
    minus_dm = np.where((down > up) & (down > 0), down, 0.0)
    true_range = np.maximum(high, prev_close) - np.minimum(low, prev_close)
    alpha = 1.0 / period
    atr = _ewm(true_range, alpha=alpha)
    plus_di = np.divide(_ewm(plus_dm, alpha=alpha), atr, out=np.zeros_like(atr), where=atr > 0)
    minus_di = np.divide(_ewm(minus_dm, alpha=alpha), atr, out=np.zeros_like(atr), where=atr > 0)
    total = plus_di + minus_di
    dx = np.divide(np.abs(plus_di - minus_di), total, out=np.zeros_like(total), where=total > 0)
    return 100.0 * _ewm(dx, alpha=alpha)


def _rules(vol: np.ndarray, adx: np.ndarray, trend: np.ndarray, cfg: RegimeConfig) -> np.ndarray:
    """Raw labels from the three statistics (any matching shapes)."""
    direction = np.where(trend > 0, BULL, np.where(trend < 0, BEAR, SIDEWAYS))
    calm = (vol < cfg.quiet_threshold) | ((vol < cfg.calm_threshold) & (adx < cfg.adx_threshold))
    return np.where(vol > cfg.volatile_threshold, VOLATILE, np.where(calm, SIDEWAYS, direction))


def _majority(labels: np.ndarray, window: int) -> np.ndarray:
    """Causal majority vote over the last ``window`` labels along axis 0; ties keep the
    current label if it is among the tied, else the lowest code."""
    if window <= 1:
        return labels
    onehot = (labels[..., None] == np.arange(N_REGIMES)).astype(np.int32)
    csum = np.cumsum(onehot, axis=0)
    counts = csum.copy()
    counts[window:] -= csum[:-window]
    return np.argmax(2 * counts + onehot, axis=-1)


def _finish(labels: np.ndarray, cfg: RegimeConfig) -> np.ndarray:
    labels = _majority(labels, cfg.smooth).astype(np.int8)
    labels[: cfg.warmup] = SIDEWAYS
    return labels


class MarketRegimeDetector:
    """Label every bar of a [T, A] price history with a regime code (see module docstring).

    ``detect`` gives one market-wide label per bar (statistics averaged over the assets),
    ``detect_assets`` one label per bar and asset (same rules, asset by asset). For
    ``method="hmm"`` call ``fit`` on a training history first.
    """

    def __init__(self, config: RegimeConfig | None = None) -> None:
        self.config = RegimeConfig() if config is None else config
        self.hmm: GaussianHMM | None = None

    def __repr__(self) -> str:
        return f"MarketRegimeDetector(method={self.config.method!r})"

    def fit(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> MarketRegimeDetector:
        """Fit the HMM on this history (method="hmm"); a no-op for the rules."""
        if self.config.method == "hmm":
            obs = self._hmm_obs(*_as_prices(high, low, close))[self.config.warmup :]
            if len(obs) < 10 * N_REGIMES:
                raise ValueError(f"need more than {self.config.warmup + 40} bars to fit the HMM")
            self.hmm = GaussianHMM.fit(obs, self.config.hmm_persistence, self.config.hmm_iterations)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """The fitted HMM parameters (empty for the rules or before ``fit``), for checkpoints."""
        if self.hmm is None:
            return {}
        return {"hmm_means": self.hmm.means.copy(), "hmm_var": self.hmm.var.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned (exactly: same labels afterwards)."""
        self.hmm = (
            GaussianHMM(
                np.array(state["hmm_means"], dtype=np.float64),
                np.array(state["hmm_var"], dtype=np.float64),
                self.config.hmm_persistence,
            )
            if "hmm_means" in state
            else None
        )

    def detect(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
        """[T] int8 market-wide regime per bar; label t depends on bars <= t only."""
        high, low, close = _as_prices(high, low, close)
        if self.config.method == "hmm":
            return _finish(self._hmm_labels(self._hmm_obs(high, low, close)), self.config)
        vol, adx, trend = self._statistics(high, low, close)
        raw = _rules(vol.mean(axis=1), adx.mean(axis=1), trend.mean(axis=1), self.config)
        return _finish(raw, self.config)

    def detect_assets(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
        """[T, A] int8 regime per bar and asset, each asset judged on its own bars."""
        high, low, close = _as_prices(high, low, close)
        if self.config.method == "hmm":
            cols = [
                self._hmm_labels(self._hmm_obs(high[:, [i]], low[:, [i]], close[:, [i]]))
                for i in range(close.shape[1])
            ]
            return _finish(np.stack(cols, axis=1), self.config)
        return _finish(_rules(*self._statistics(high, low, close), self.config), self.config)

    def _statistics(self, high, low, close) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cfg = self.config
        return (
            _vol_ratio(high, low, cfg),
            _adx(high, low, close, cfg.adx_period),
            _trend(close, cfg),
        )

    def _hmm_obs(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
        """[T, 2] per-bar HMM observations, averaged over assets: the log return over its
        long-run causal RMS, and the log of the bar's log range minus its long-run level."""
        span = self.config.vol_ref_span
        r = _log_returns(close)
        rms = np.sqrt(_ewm(r**2, span=span))
        scaled = np.divide(r, rms, out=np.zeros_like(r), where=rms > 0)
        log_range = np.log(high / low)
        log_range = np.log(log_range + _RANGE_FLOOR)
        rel_range = log_range - _ewm(log_range, span=span)
        return np.stack([scaled.mean(axis=1), rel_range.mean(axis=1)], axis=1)

    def _hmm_labels(self, obs: np.ndarray) -> np.ndarray:
        if self.hmm is None:
            raise RuntimeError(
                "method='hmm' needs fit(high, low, close) on a training history before detect"
            )
        return self.hmm.regime_of_state[np.argmax(self.hmm.filter(obs), axis=1)]


class GaussianHMM:
    """4-state Gaussian HMM (diagonal covariances) tied to the regime structure.

    State k *is* regime code k. Observations are [T, 2]: the bar's return over its long-run
    RMS and its log range over the long-run level. Constraints keep EM on regimes rather than
    on whatever else moves the volatility (GARCH clusters): bull and bear share their
    volatility and variances and have opposite drifts (+mu, -mu), sideways and volatile have
    no drift, and the transitions are fixed (stay with ``persistence``, else jump uniformly).
    EM (Baum-Welch) fits the means and variances only. The forward/backward recursions loop
    over bars in Python (~5 us per bar); everything else is array arithmetic.
    """

    def __init__(self, means: np.ndarray, var: np.ndarray, persistence: float) -> None:
        k = N_REGIMES
        self.means, self.var, self.persistence = means, var, float(persistence)
        self.trans = np.full((k, k), (1.0 - persistence) / (k - 1))
        np.fill_diagonal(self.trans, persistence)
        self.start = np.full(k, 1.0 / k)

    @classmethod
    def fit(cls, obs: np.ndarray, persistence: float, iterations: int) -> GaussianHMM:
        """EM from a volatility-quartile start: lowest quartile sideways, top volatile."""
        q = np.array_split(np.argsort(obs[:, 1], kind="stable"), N_REGIMES)
        mid = np.concatenate([q[1], q[2]])
        means = np.stack([obs[g].mean(axis=0) for g in (mid, mid, q[0], q[3])])
        var = np.stack([obs[g].var(axis=0) for g in (mid, mid, q[0], q[3])])
        means[:2, 0] = np.array([0.15, -0.15]) * np.sqrt(var[0, 0])  # the planted drift
        hmm = cls(*cls._tie(means, var, np.ones(N_REGIMES)), persistence)
        floor = 1e-4 * obs.var(axis=0) + 1e-12
        for _ in range(iterations):
            emis = hmm._emission(obs)
            alpha, scale = hmm._forward(emis)
            gamma = alpha * hmm._backward(emis, scale)
            gamma /= gamma.sum(axis=1, keepdims=True)
            weight = gamma.sum(axis=0) + 1e-12
            means = gamma.T @ obs / weight[:, None]
            var = np.maximum(gamma.T @ obs**2 / weight[:, None] - means**2, floor)
            hmm = cls(*cls._tie(means, var, weight), persistence)
        return hmm

    @staticmethod
    def _tie(means: np.ndarray, var: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
        """Project free per-state moments onto the constrained family (weighted pooling)."""
        means, var = means.copy(), var.copy()
        wb, wr = weight[BULL], weight[BEAR]
        drift = (wb * means[BULL, 0] - wr * means[BEAR, 0]) / (wb + wr)
        level = (wb * means[BULL, 1] + wr * means[BEAR, 1]) / (wb + wr)
        # pooled variance about the tied means (each state's own spread plus its mean's shift)
        shared = (
            wb * (var[BULL] + (means[BULL] - [drift, level]) ** 2)
            + wr * (var[BEAR] + (means[BEAR] - [-drift, level]) ** 2)
        ) / (wb + wr)
        means[BULL], means[BEAR] = [drift, level], [-drift, level]
        var[BULL] = var[BEAR] = shared
        means[[SIDEWAYS, VOLATILE], 0] = 0.0
        return means, var

    @property
    def regime_of_state(self) -> np.ndarray:
        """Regime code of each state: the identity, unless EM flipped the drift sign or the
        volatility order of sideways / volatile (then those pairs swap)."""
        out = np.arange(N_REGIMES, dtype=np.int8)
        if self.means[BULL, 0] < 0:
            out[[BULL, BEAR]] = out[[BEAR, BULL]]
        if self.means[SIDEWAYS, 1] > self.means[VOLATILE, 1]:
            out[[SIDEWAYS, VOLATILE]] = out[[VOLATILE, SIDEWAYS]]
        return out

    def _emission(self, obs: np.ndarray) -> np.ndarray:
        """[T, K] Gaussian densities, rescaled per bar by the max (cancels in filtering)."""
        diff = obs[:, None, :] - self.means[None]
        logp = -0.5 * np.sum(diff**2 / self.var + np.log(self.var), axis=2)
        return np.exp(logp - logp.max(axis=1, keepdims=True))

    def _forward(self, emis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha = np.empty_like(emis)
        scale = np.empty(len(emis))
        trans_t = np.ascontiguousarray(self.trans.T)
        a = self.start
        for t in range(len(emis)):
            a = (trans_t @ a if t else a) * emis[t]
            s = a.sum()
            a = a / s
            alpha[t], scale[t] = a, s
        return alpha, scale

    def _backward(self, emis: np.ndarray, scale: np.ndarray) -> np.ndarray:
        beta = np.empty_like(emis)
        b = np.ones(N_REGIMES)
        beta[-1] = b
        for t in range(len(emis) - 2, -1, -1):
            b = self.trans @ (emis[t + 1] * b) / scale[t + 1]
            beta[t] = b
        return beta

    def filter(self, obs: np.ndarray) -> np.ndarray:
        """[T, K] P(state_t | obs_<=t): the forward recursion only, causal by construction."""
        return self._forward(self._emission(obs))[0]


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n_classes: int = N_REGIMES) -> np.ndarray:
    """[n_classes, n_classes] int64 counts: rows true regime, columns predicted."""
    true, pred = np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if true.shape != pred.shape:
        raise ValueError(f"true and pred shapes differ: {true.shape} vs {pred.shape}")
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (true.ravel(), pred.ravel()), 1)
    return out


def balanced_accuracy(true: np.ndarray, pred: np.ndarray, n_classes: int = N_REGIMES) -> float:
    """Mean per-class recall over the classes present in ``true`` (chance level 1/n)."""
    cm = confusion_matrix(true, pred, n_classes)
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


__all__ = [
    "METHODS",
    "GaussianHMM",
    "MarketRegimeDetector",
    "RegimeConfig",
    "attach_regimes",
    "balanced_accuracy",
    "confusion_matrix",
]


def regime_config(value: RegimeConfig | Mapping[str, Any] | None) -> RegimeConfig:
    """``data.regime`` as a ``RegimeConfig``: as is, from a (structured) mapping, or defaults."""
    if value is None or isinstance(value, RegimeConfig):
        return value or RegimeConfig()
    if isinstance(value, DictConfig):
        value = OmegaConf.to_object(value)
        if isinstance(value, RegimeConfig):
            return value
    known = {f.name for f in fields(RegimeConfig)}
    unknown = sorted(set(value) - known)
    check(not unknown, "data.regime", f"has unknown keys; known: {sorted(known)}", unknown)
    return RegimeConfig(**value)


def attach_regimes(splits: dict[str, MarketData], config: RegimeConfig) -> dict[str, MarketData]:
    """Each split with ``detected_regimes`` from one causal pass over all splits in time order.

    The detector judges volatility against the history seen so far, so a split labelled on
    its own would start cold; labels are causal, so running over the concatenated history
    and slicing gives every bar the label it would have had live. The HMM is fitted on the
    ``train`` split only.
    """
    if not splits:
        return splits
    ordered = sorted(splits.items(), key=lambda kv: kv[1].timestamps[0])
    high = np.concatenate([d.high for _, d in ordered])
    low = np.concatenate([d.low for _, d in ordered])
    close = np.concatenate([d.close for _, d in ordered])
    detector = MarketRegimeDetector(config)
    fit_on = splits.get("train", ordered[0][1])
    detector.fit(fit_on.high, fit_on.low, fit_on.close)
    labels = detector.detect(high, low, close)
    out, start = {}, 0
    for name, data in ordered:
        stop = start + len(data)
        out[name] = replace(data, detected_regimes=labels[start:stop])
        start = stop
    return {name: out[name] for name in splits}
