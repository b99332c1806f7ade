"""Adaptive multi-objective reward: return, risk-adjusted return, drawdown and turnover terms."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from adan.data.regimes import REGIME_NAMES
from adan.errors import check
from adan.rewards.base import RewardFunction, StepOutcome
from adan.rewards.regime_weights import COMPONENTS, regime_table
from adan.rewards.schema import AdaptiveRewardSchema


class AdaptiveReward(RewardFunction):
    """Weighted sum of five per-step terms, computed online per env over the batch.

    Components (unweighted, each [N] float64; the reward is ``scale * sum(w_k * c_k)``):

    - ``return``: net log return of the step (after every cost).
    - ``sharpe``: differential Sharpe ratio (Moody & Saffell, 1998): the first-order change of
      an EMA Sharpe ratio (rate ``eta``) caused by this step's return R,
      ``(B dA - A dB / 2) / (B - A^2)^1.5`` with A, B the EMAs of R and R^2 before the step.
    - ``sortino``: differential downside deviation ratio (Moody & Saffell, 2001): as above with
      the EMA of squared negative returns DD^2 as the risk, ``(R - A/2) / DD`` for R > 0 and
      ``(DD^2 (R - A/2) - A R^2 / 2) / DD^3`` otherwise.
    - ``drawdown``: ``-max(dd_t - dd_{t-1}, 0)``, a penalty only when drawdown deepens
      (a Calmar-like term; recovering is not rewarded twice).
    - ``turnover``: ``-turnover``, traded notional in units of equity (costs are already in
      ``return``; this discourages churn beyond them).

    The ratio terms are 0 while their risk estimate is below ``eps`` (the start of an
    episode, when the EMAs are still empty) and clipped to ``[-clip, clip]``.

    **Regime weights** (optional): ``regime_weights`` maps a regime name (``REGIME_NAMES``) to
    ``{component: multiplier}`` (missing regimes and components: 1.0), e.g. a bigger drawdown
    penalty in volatile markets. When a step's ``outcome.regime`` is given, each env's
    multiplier vector ``multipliers`` [N, C] (C in ``COMPONENTS`` order) moves toward its
    current regime's multipliers by an EMA of rate ``regime_smoothing``, so a regime switch
    changes the reward gradually, and the reward becomes ``scale * sum(w_k * m_k * c_k)``.
    ``reset_envs`` sets the multipliers to 1.0 and marks the env fresh: its first step with a
    regime starts at that regime's multipliers (no carry-over from another episode's market).
    Without ``regime_weights``, or in a step with ``outcome.regime`` None, the reward is the
    unmultiplied one above, bit for bit. Components stay the unweighted terms.
    """

    def __init__(
        self,
        w_return: float = AdaptiveRewardSchema.w_return,
        w_sharpe: float = AdaptiveRewardSchema.w_sharpe,
        w_sortino: float = AdaptiveRewardSchema.w_sortino,
        w_drawdown: float = AdaptiveRewardSchema.w_drawdown,
        w_turnover: float = AdaptiveRewardSchema.w_turnover,
        eta: float = AdaptiveRewardSchema.eta,
        scale: float = AdaptiveRewardSchema.scale,
        eps: float = 1e-12,
        clip: float = AdaptiveRewardSchema.clip,
        regime_weights: Mapping[str, Mapping[str, float]] | None = None,
        regime_smoothing: float = AdaptiveRewardSchema.regime_smoothing,
    ) -> None:
        if not 0 < eta <= 1:
            raise ValueError(f"reward.eta must be in (0, 1], got {eta}")
        if clip <= 0:
            raise ValueError(f"reward.clip must be > 0, got {clip}")
        check(
            0 < regime_smoothing <= 1,
            "reward.regime_smoothing",
            "must be in (0, 1]",
            regime_smoothing,
        )
        self.regime_smoothing = float(regime_smoothing)
        self.regime_weights = regime_table(regime_weights)  # [R, C], or None
        self.weights = {
            "return": float(w_return),
            "sharpe": float(w_sharpe),
            "sortino": float(w_sortino),
            "drawdown": float(w_drawdown),
            "turnover": float(w_turnover),
        }
        self.eta, self.scale, self.eps, self.clip = (
            float(eta),
            float(scale),
            float(eps),
            float(clip),
        )
        self.reset(0)

    def reset(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.mean = np.zeros(num_envs)  # EMA of R
        self.second = np.zeros(num_envs)  # EMA of R^2
        self.downside = np.zeros(num_envs)  # EMA of min(R, 0)^2
        self.multipliers = np.ones((num_envs, len(COMPONENTS)))  # regime multipliers [N, C]
        self.fresh = np.ones(num_envs, dtype=bool)  # next regime step starts at its table

    def reset_envs(self, mask: np.ndarray) -> None:
        self.mean[mask] = 0.0
        self.second[mask] = 0.0
        self.downside[mask] = 0.0
        self.multipliers[mask] = 1.0
        self.fresh[mask] = True

    def __call__(self, outcome: StepOutcome) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        r = outcome.net_log_return
        a, b, d2 = self.mean, self.second, self.downside
        da = r - a
        db = r * r - b

        var = b - a * a
        ok = var > self.eps
        sharpe = np.divide(
            b * da - 0.5 * a * db, var * np.sqrt(var), out=np.zeros_like(r), where=ok
        )

        ok = d2 > self.eps
        dd = np.sqrt(d2)
        excess = r - 0.5 * a
        sortino = np.where(r > 0, excess * dd, d2 * excess - 0.5 * a * r * r)
        np.divide(sortino, np.where(r > 0, d2, d2 * dd), out=sortino, where=ok)
        sortino *= ok

        np.clip(sharpe, -self.clip, self.clip, out=sharpe)
        np.clip(sortino, -self.clip, self.clip, out=sortino)
        drawdown = -np.maximum(outcome.drawdown - outcome.prev_drawdown, 0.0)
        turnover = -outcome.turnover

        self.mean = a + self.eta * da
        self.second = b + self.eta * db
        self.downside = d2 + self.eta * (np.minimum(r, 0.0) ** 2 - d2)

        components = {
            "return": r,
            "sharpe": sharpe,
            "sortino": sortino,
            "drawdown": drawdown,
            "turnover": turnover,
        }
        total = np.zeros_like(r)
        if self.regime_weights is None or outcome.regime is None:
            for name, weight in self.weights.items():
                if weight:
                    total += weight * components[name]
        else:
            m = self._update_multipliers(outcome.regime)
            for k, name in enumerate(COMPONENTS):
                weight = self.weights[name]
                if weight:
                    total += weight * (m[:, k] * components[name])
        reward = np.multiply(total, self.scale, dtype=np.float32, casting="same_kind")
        return reward, components

    def _update_multipliers(self, regime: np.ndarray) -> np.ndarray:
        """Move each env's multipliers toward its regime's (fresh envs: straight to them)."""
        regime = np.asarray(regime)
        if regime.shape != self.mean.shape or not np.issubdtype(regime.dtype, np.integer):
            raise ValueError(
                f"StepOutcome.regime must be int [{self.num_envs}], "
                f"got {regime.dtype} {regime.shape}"
            )
        bad = (regime < 0) | (regime >= len(REGIME_NAMES))
        if bad.any():
            envs = np.flatnonzero(bad)[:10]
            raise ValueError(
                f"StepOutcome.regime out of range [0, {len(REGIME_NAMES)}) at envs "
                f"{envs.tolist()} (codes {regime[envs].tolist()})"
            )
        goal = self.regime_weights[regime]
        m = self.multipliers
        moved = m + self.regime_smoothing * (goal - m)
        self.multipliers = np.where(self.fresh[:, None], goal, moved)
        self.fresh = np.zeros_like(self.fresh)
        return self.multipliers

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean.copy(),
            "second": self.second.copy(),
            "downside": self.downside.copy(),
            "multipliers": self.multipliers.copy(),
            "fresh": self.fresh.copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(state["mean"], dtype=np.float64).copy()
        self.second = np.asarray(state["second"], dtype=np.float64).copy()
        self.downside = np.asarray(state["downside"], dtype=np.float64).copy()
        self.num_envs = n = len(self.mean)
        # Checkpoints from before regime weights hold no multipliers: neutral and fresh.
        self.multipliers = np.asarray(
            state.get("multipliers", np.ones((n, len(COMPONENTS)))), dtype=np.float64
        ).copy()
        self.fresh = np.asarray(state.get("fresh", np.ones(n, dtype=bool)), dtype=bool).copy()
