"""Adaptive multi-objective reward: return, risk-adjusted return, drawdown and turnover terms."""

from __future__ import annotations

import numpy as np

from adan.rewards.base import RewardFunction, StepOutcome

COMPONENTS = ("return", "sharpe", "sortino", "drawdown", "turnover")


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
    """

    def __init__(
        self,
        w_return: float = 1.0,
        w_sharpe: float = 1e-3,
        w_sortino: float = 1e-3,
        w_drawdown: float = 1.0,
        w_turnover: float = 1e-4,
        eta: float = 0.01,
        scale: float = 1.0,
        eps: float = 1e-12,
        clip: float = 10.0,
    ) -> None:
        if not 0 < eta <= 1:
            raise ValueError(f"reward.eta must be in (0, 1], got {eta}")
        if clip <= 0:
            raise ValueError(f"reward.clip must be > 0, got {clip}")
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

    def reset_envs(self, mask: np.ndarray) -> None:
        self.mean[mask] = 0.0
        self.second[mask] = 0.0
        self.downside[mask] = 0.0

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
        for name, weight in self.weights.items():
            if weight:
                total += weight * components[name]
        reward = np.multiply(total, self.scale, dtype=np.float32, casting="same_kind")
        return reward, components

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean.copy(),
            "second": self.second.copy(),
            "downside": self.downside.copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(state["mean"], dtype=np.float64).copy()
        self.second = np.asarray(state["second"], dtype=np.float64).copy()
        self.downside = np.asarray(state["downside"], dtype=np.float64).copy()
        self.num_envs = len(self.mean)
