"""Networks: feature extractors (CustomCNN over market windows, MLP over vectors) and the
actor-critic that puts Gaussian or Categorical heads on top of them."""

from adan.models.cnn import CustomCNN
from adan.models.mlp import MLPExtractor
from adan.models.policy import ActorCritic

__all__ = ["ActorCritic", "CustomCNN", "MLPExtractor"]
