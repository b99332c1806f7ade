"""Market data: raw bars, synthetic markets, causal features, time splits, the pipeline."""

from adan.data.bars import Bars, MarketData
from adan.data.features import DEFAULT_FEATURES, FEATURES, compute_features
from adan.data.pipeline import MarketPipeline
from adan.data.splits import FeatureScaler, split_by_fraction
from adan.data.synthetic import REGIME_NAMES, SyntheticMarket

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "REGIME_NAMES",
    "Bars",
    "FeatureScaler",
    "MarketData",
    "MarketPipeline",
    "SyntheticMarket",
    "compute_features",
    "split_by_fraction",
]
