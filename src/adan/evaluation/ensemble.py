"""Several trained policies acting as one.

``ModelEnsemble`` takes each member's deterministic action and combines them: the (weighted)
mean for continuous actions, a (weighted) majority vote per asset for discrete ones. Weights
can come from each member's validation Sharpe ratio (``weights_from_scores``), so members that
did better out of sample count more. It has the actor-critic call signature, so the backtest
runs it like a single agent.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

COMBINE = ("mean", "vote", "weighted")


def _choices(space: gym.spaces.Space) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    return int(np.max(space.nvec))


def weights_from_scores(scores: Sequence[float]) -> np.ndarray:
    """Weights proportional to max(score, 0); equal weights if no score is positive."""
    s = np.maximum(np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0), 0.0)
    if s.sum() <= 0:
        return np.full(len(s), 1.0 / len(s))
    return s / s.sum()


class ModelEnsemble(nn.Module):
    """Combine ``members`` (actor-critics with the same spaces) into one deterministic policy.

    ``weights``: one per member (normalised); None for equal weights. Continuous actions are
    averaged after each is clipped to the action space (what each member would trade);
    discrete ones are voted per asset, and a vote without a single winner goes flat.
    """

    def __init__(
        self, members: Sequence[nn.Module], weights: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        kinds = {m.kind for m in members}
        if len(kinds) > 1:
            raise ValueError(f"ensemble members mix action kinds {sorted(kinds)}")
        for m in members[1:]:
            if m.action_space != members[0].action_space:
                raise ValueError(
                    f"ensemble members act in different spaces: {members[0].action_space} and "
                    f"{m.action_space}"
                )
        self.members = nn.ModuleList(members)
        self.kind = kinds.pop()
        w = np.full(len(members), 1.0) if weights is None else np.asarray(weights, np.float64)
        if len(w) != len(members) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"ensemble weights {list(w)} must be >= 0, not all 0, one per member")
        self.register_buffer("weights", torch.as_tensor(w / w.sum(), dtype=torch.float32))
        self.action_space = members[0].action_space

    @torch.no_grad()
    def forward(
        self, obs: dict[str, torch.Tensor], deterministic: bool = True
    ) -> tuple[torch.Tensor, None, None]:
        actions = torch.stack([m.act(obs).float() for m in self.members])  # actors alone
        if self.kind == "gaussian":
            low = torch.as_tensor(self.action_space.low, dtype=actions.dtype)
            high = torch.as_tensor(self.action_space.high, dtype=actions.dtype)
            actions = torch.maximum(torch.minimum(actions, high), low)
            return torch.einsum("m,m...->...", self.weights, actions), None, None
        # discrete: weighted votes per (env, asset) over the action values
        choices = _choices(self.action_space)
        onehot = nn.functional.one_hot(actions.long(), choices).float()
        votes = torch.einsum("m,m...k->...k", self.weights, onehot)
        # no single winner: flat, i.e. the middle of {short, flat, long}, else the first
        # action ({flat, long} long-only; any other discrete task: its first action)
        flat = 1 if choices == 3 else 0
        top = votes.max(dim=-1, keepdim=True).values
        tied = (votes >= top - 1e-6).sum(dim=-1) > 1
        return torch.where(tied, flat, votes.argmax(dim=-1)), None, None

    def act(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The combined action (the ensemble is deterministic: ``forward(obs)[0]``)."""
        return self(obs)[0]

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        return self.members[0].to_env_action(action)
