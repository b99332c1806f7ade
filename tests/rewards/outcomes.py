"""Step outcomes built from a few numbers, for the reward tests."""

from __future__ import annotations

import numpy as np

from adan.rewards import StepOutcome


def outcome(r, turnover=0.0, drawdown=0.0, prev_drawdown=0.0, regime=None) -> StepOutcome:
    """A ``StepOutcome`` of net log returns ``r`` [N] (no costs, full exposure); the other
    fields broadcast to [N]; ``regime`` as codes, or None."""
    r = np.atleast_1d(np.asarray(r, dtype=np.float64))
    full = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), r.shape).copy()  # noqa: E731
    return StepOutcome(
        net_log_return=r,
        gross_log_return=r,
        net_return=np.expm1(r),
        cost_fraction=full(0.0),
        turnover=full(turnover),
        exposure=full(1.0),
        drawdown=full(drawdown),
        prev_drawdown=full(prev_drawdown),
        regime=None if regime is None else np.asarray(regime, dtype=np.int8),
    )
