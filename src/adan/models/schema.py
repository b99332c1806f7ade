"""The model group's settings (``model=cnn|mlp``): the network and its feature extractor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adan.errors import check as _check

# List defaults, shared with the constructors by construction (a dataclass holds lists through
# factories, which a signature cannot read)
CNN_CHANNELS = (16, 32)
CNN_KERNEL_SIZES = (5, 3)
MLP_HIDDEN_SIZES = (64, 64)
HEAD_HIDDEN = (64,)


@dataclass
class CNNSchema:
    _target_: str = "adan.models.CustomCNN"
    _partial_: bool = True
    # output channels of each Conv1d block
    channels: list[int] = field(default_factory=lambda: list(CNN_CHANNELS))
    # one per block, in bars
    kernel_sizes: list[int] = field(default_factory=lambda: list(CNN_KERNEL_SIZES))
    strides: list[int] | None = None  # one per block; null: all 1
    width_multiplier: float = 1.0  # scales every channel count
    pooling: str = "avg"  # over time: avg | max | avgmax
    dropout: float = 0.0  # after each block's activation
    portfolio_hidden: int = 32  # width of the portfolio vector's layer
    features_dim: int = 64  # output width, fed to the actor and critic heads
    activation_fn: str = "relu"  # tanh | relu | gelu | elu
    norm: bool = True  # GroupNorm(1, channels) after each conv
    gradient_checkpointing: bool = False  # recompute activations in backward (less memory)

    def __post_init__(self) -> None:
        k = "model.extractor."
        _check(
            len(self.channels) == len(self.kernel_sizes) > 0,
            k + "channels",
            f"must be non-empty and as long as kernel_sizes {list(self.kernel_sizes)}",
            list(self.channels),
        )
        _check(
            all(c > 0 for c in self.channels),
            k + "channels",
            "must be positive",
            list(self.channels),
        )
        _check(
            all(s > 0 for s in self.kernel_sizes),
            k + "kernel_sizes",
            "must be positive",
            list(self.kernel_sizes),
        )
        _check(
            self.width_multiplier > 0, k + "width_multiplier", "must be > 0", self.width_multiplier
        )
        _check(
            self.pooling in ("avg", "max", "avgmax"),
            k + "pooling",
            "must be avg, max or avgmax",
            self.pooling,
        )
        _check(0 <= self.dropout < 1, k + "dropout", "must be in [0, 1)", self.dropout)
        _check(self.features_dim > 0, k + "features_dim", "must be > 0", self.features_dim)


@dataclass
class MLPSchema:
    _target_: str = "adan.models.MLPExtractor"
    _partial_: bool = True
    # widths of the hidden layers
    hidden_sizes: list[int] = field(default_factory=lambda: list(MLP_HIDDEN_SIZES))
    activation_fn: str = "tanh"  # tanh | relu | gelu | elu
    layer_norm: bool = False  # LayerNorm after each hidden layer

    def __post_init__(self) -> None:
        _check(
            all(h > 0 for h in self.hidden_sizes),
            "model.extractor.hidden_sizes",
            "must be positive",
            list(self.hidden_sizes),
        )


@dataclass
class ActorCriticSchema:
    _target_: str = "adan.models.ActorCritic"
    _partial_: bool = True
    extractor: Any = None
    share_extractor: bool = True  # one extractor for both heads; false: a copy each
    # the actor head's hidden layers
    pi_hidden: list[int] = field(default_factory=lambda: list(HEAD_HIDDEN))
    # the critic head's hidden layers
    vf_hidden: list[int] = field(default_factory=lambda: list(HEAD_HIDDEN))
    activation_fn: str = "tanh"  # of the heads
    log_std_init: float = -0.5  # initial log std of the Gaussian policy (continuous actions)
    ortho_init: bool = True  # orthogonal weight init (as in SB3 and CleanRL)
    compile: bool = False  # torch.compile the network (not the LightningModule)

    def __post_init__(self) -> None:
        _check(self.extractor is not None, "model.extractor", "must be set", self.extractor)


@dataclass
class CNNModelSchema(ActorCriticSchema):
    extractor: CNNSchema = field(default_factory=CNNSchema)


@dataclass
class MLPModelSchema(ActorCriticSchema):
    extractor: MLPSchema = field(default_factory=MLPSchema)
    share_extractor: bool = False  # separate networks for actor and critic
    pi_hidden: list[int] = field(default_factory=list)  # none: the extractor is the actor's trunk
    vf_hidden: list[int] = field(default_factory=list)  # none
