"""Several trained policies acting as one.

``ModelEnsemble`` takes each member's deterministic action and combines them: the (weighted)
mean for continuous actions, a (weighted) majority vote per asset for discrete ones. Weights
can come from each member's validation Sharpe ratio (``weights_from_scores``), so members that
did better out of sample count more. It has the actor-critic call signature, so the backtest
runs it like a single agent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

COMBINE = ("mean", "vote", "weighted")


def weights_from_scores(scores: Sequence[float]) -> np.ndarray:
    """Weights proportional to max(score, 0); equal weights if no score is positive."""
    s = np.maximum(np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0), 0.0)
    if s.sum() <= 0:
        return np.full(len(s), 1.0 / len(s))
    return s / s.sum()


class ModelEnsemble(nn.Module):
    """Combine ``members`` (actor-critics with the same spaces) into one deterministic policy.

    ``weights``: one per member (normalised); None for equal weights. Continuous actions are
    averaged; discrete ones are voted per asset, ties going to the lowest action index.
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        kinds = {m.kind for m in members}
        if len(kinds) > 1:
            raise ValueError(f"ensemble members mix action kinds {sorted(kinds)}")
        self.members = nn.ModuleList(members)
        self.kind = kinds.pop()
        w = np.full(len(members), 1.0) if weights is None else np.asarray(weights, np.float64)
        if len(w) != len(members) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"ensemble weights {list(w)} must be >= 0, not all 0, one per member")
        self.register_buffer("weights", torch.as_tensor(w / w.sum(), dtype=torch.float32))
        self.action_space = members[0].action_space

    @torch.no_grad()
    def forward(self, obs, deterministic: bool = True):  # noqa: ANN001
        actions = torch.stack([m(obs, deterministic=True)[0].float() for m in self.members])
        if self.kind == "gaussian":
            return torch.einsum("m,m...->...", self.weights, actions), None, None
        # discrete: weighted votes per (env, asset) over the action values
        choices = int(actions.max().item()) + 1
        votes = torch.zeros(*actions.shape[1:], choices)
        onehot = nn.functional.one_hot(actions.long(), choices).float()
        votes += torch.einsum("m,m...k->...k", self.weights, onehot)
        return votes.argmax(dim=-1), None, None

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        return self.members[0].to_env_action(action)
