"""MLP feature extractor for vector observations (flattens Dict observations)."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from adan.models.schema import MLP_HIDDEN_SIZES, MLPSchema

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU}


def activation(name: str) -> type[nn.Module]:
    """The activation class for a config name; unknown names are refused with the valid list."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def flat_dim(space: gym.Space) -> int:
    """Number of floats in one observation of ``space`` once flattened."""
    if isinstance(space, gym.spaces.Dict):
        return sum(flat_dim(s) for s in space.spaces.values())
    return int(np.prod(space.shape))


def flatten_obs(obs: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, ...] tensor or dict of them → [B, D], dict keys in sorted order (as gymnasium)."""
    if isinstance(obs, dict):
        return torch.cat([obs[k].flatten(1) for k in sorted(obs)], dim=1)
    return obs.flatten(1)


class MLPExtractor(nn.Module):
    """Flatten → Linear/activation stack. ``out_dim`` is the width of the last layer."""

    def __init__(
        self,
        observation_space: gym.Space,
        hidden_sizes: Sequence[int] = MLP_HIDDEN_SIZES,
        activation_fn: str = MLPSchema.activation_fn,
        layer_norm: bool = MLPSchema.layer_norm,
    ) -> None:
        super().__init__()
        act = activation(activation_fn)
        layers: list[nn.Module] = []
        width = flat_dim(observation_space)
        for h in hidden_sizes:
            layers.append(nn.Linear(width, h))
            if layer_norm:
                layers.append(nn.LayerNorm(h))
            layers.append(act())
            width = h
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, obs: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(flatten_obs(obs).float())
