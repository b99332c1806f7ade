"""CustomCNN: a Conv1d stack over the market window, fused with an MLP over portfolio state.

Input is the trading observation ``{"market": [B, W, A, F], "portfolio": [B, P]}``. The window
becomes a sequence of length W with A·F channels, so every conv filter sees every asset's
features at once (cross-asset structure) and slides along time only.

Higher timeframes (``market_4h`` [B, W4, A, F4], ...; see `adan.data.timeframes`) get a branch
each: their own Conv1d stack with the same channels / kernels / strides config (a kernel longer
than the sequence reaching that layer is shortened to it), pooled the same way (avg / max /
avgmax plus the last bar's activations). All branches are concatenated with the portfolio
embedding before the fuse layer. Why separate branches rather than one stack over windows
aligned on the base clock: a 4h bar repeated four times on an hourly axis wastes the window
on copies and blurs when it closed, and each timeframe has its own feature set (its own
channel count) and time scale, so it gets its own filters. The cost is one small conv stack
per timeframe.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from adan.models.mlp import activation
from adan.models.schema import CNN_CHANNELS, CNN_KERNEL_SIZES, CNNSchema


def _module_key(obs_key: str) -> str:
    return obs_key.replace(".", "_")


class CustomCNN(nn.Module):
    """Conv1d blocks (conv → norm → activation → dropout) → global pooling, concatenated with an
    MLP embedding of the portfolio vector, then a fused linear layer of width ``features_dim``.

    Every ``market_<rule>`` key of the space gets its own branch (module docstring).
    ``width_multiplier`` scales every conv width (one knob for sweeps).
    ``gradient_checkpointing`` recomputes the conv blocks in the backward pass to trade compute
    for activation memory (useful for long windows on GPU).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        channels: Sequence[int] = CNN_CHANNELS,
        kernel_sizes: Sequence[int] = CNN_KERNEL_SIZES,
        strides: Sequence[int] | None = CNNSchema.strides,
        width_multiplier: float = CNNSchema.width_multiplier,
        pooling: str = CNNSchema.pooling,
        dropout: float = CNNSchema.dropout,
        portfolio_hidden: int = CNNSchema.portfolio_hidden,
        features_dim: int = CNNSchema.features_dim,
        activation_fn: str = CNNSchema.activation_fn,
        norm: bool = CNNSchema.norm,
        gradient_checkpointing: bool = CNNSchema.gradient_checkpointing,
    ) -> None:
        super().__init__()
        if (
            not isinstance(observation_space, gym.spaces.Dict)
            or "market" not in observation_space.spaces
        ):
            raise ValueError(
                "CustomCNN needs a Dict observation with a 'market' window [W, A, F]; "
                f"got {observation_space}. Use model=mlp for vector observations."
            )
        if len(channels) != len(kernel_sizes):
            raise ValueError(
                f"model.channels {list(channels)} and model.kernel_sizes {list(kernel_sizes)} "
                "must have the same length"
            )
        strides = strides or [1] * len(channels)
        channels = [max(1, round(c * width_multiplier)) for c in channels]
        act = activation(activation_fn)
        if pooling not in ("avg", "max", "avgmax"):
            raise ValueError(f"model.pooling must be 'avg', 'max' or 'avgmax', got {pooling!r}")
        self.pooling = pooling

        def conv_stack(key: str) -> nn.ModuleList:
            length, n_assets, n_feat = observation_space[key].shape
            blocks: list[nn.Module] = []
            in_ch = n_assets * n_feat
            for out_ch, k, s in zip(channels, kernel_sizes, strides, strict=True):
                k = min(k, length)  # a kernel longer than the sequence would mostly see padding
                blocks.append(
                    nn.Sequential(
                        nn.Conv1d(in_ch, out_ch, kernel_size=k, stride=s, padding=k // 2),
                        nn.GroupNorm(1, out_ch) if norm else nn.Identity(),
                        act(),
                        nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
                    )
                )
                in_ch, length = out_ch, (length + 2 * (k // 2) - k) // s + 1
            return nn.ModuleList(blocks)

        self.blocks = conv_stack("market")
        # Higher timeframes, in sorted key order; ModuleDict keys may not contain ".".
        self.timeframe_keys = sorted(k for k in observation_space.spaces if k.startswith("market_"))
        self.timeframe_blocks = nn.ModuleDict(
            {_module_key(k): conv_stack(k) for k in self.timeframe_keys}
        )
        # The last bar's activations are kept as well: pooling alone blurs "what happens now".
        per_branch = channels[-1] * (3 if pooling == "avgmax" else 2)
        pooled = per_branch * (1 + len(self.timeframe_keys))
        # Vector state (portfolio, and the regime one-hot when observed) shares one MLP.
        self.state_keys = sorted(k for k in observation_space.spaces if not k.startswith("market"))
        self.has_portfolio = bool(self.state_keys)
        p_dim = sum(int(np.prod(observation_space[k].shape)) for k in self.state_keys)
        self.portfolio_net = (
            nn.Sequential(nn.Linear(p_dim, portfolio_hidden), act()) if self.has_portfolio else None
        )
        fused_in = pooled + (portfolio_hidden if self.has_portfolio else 0)
        self.fuse = nn.Sequential(nn.Linear(fused_in, features_dim), act())
        self.gradient_checkpointing = gradient_checkpointing
        self.out_dim = features_dim

    def _conv(self, x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
        for block in blocks:
            if self.gradient_checkpointing and self.training and x.requires_grad:
                x = checkpoint(block, x, use_reentrant=False)
            elif self.gradient_checkpointing and self.training:
                x = checkpoint(block, x.requires_grad_(), use_reentrant=False)
            else:
                x = block(x)
        return x

    def _branch(self, window: torch.Tensor, blocks: nn.ModuleList) -> list[torch.Tensor]:
        """[B, W, A, F] window -> [pooled, last-bar activations] of its conv stack."""
        b, w = window.shape[:2]
        x = window.float().reshape(b, w, -1).transpose(1, 2)  # [B, A·F, W]
        x = self._conv(x, blocks)
        last = x[:, :, -1]
        if self.pooling == "avg":
            pooled = x.mean(dim=2)
        elif self.pooling == "max":
            pooled = x.amax(dim=2)
        else:
            pooled = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return [pooled, last]

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = self._branch(obs["market"], self.blocks)
        for key in self.timeframe_keys:
            parts += self._branch(obs[key], self.timeframe_blocks[_module_key(key)])
        if self.portfolio_net is not None:
            state = torch.cat([obs[k].float().flatten(1) for k in self.state_keys], dim=1)
            parts.append(self.portfolio_net(state))
        return self.fuse(torch.cat(parts, dim=1))
