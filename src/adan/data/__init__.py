"""Market data: load and clean files, synthetic markets, causal features on several timeframes,
a feature cache, time splits, market calendars, and the pipeline that turns raw bars into
``MarketData``."""

from adan.data.bars import Bars, MarketData, TimeframeData
from adan.data.cache import FeatureCache, content_key
from adan.data.calendar import CALENDARS, bars_per_year
from adan.data.cleaning import CleaningPolicy
from adan.data.features import (
    DEFAULT_FEATURES,
    FEATURES,
    compute_features,
    is_known_feature,
    resolve_feature,
)
from adan.data.pipeline import MarketPipeline
from adan.data.regimes import REGIME_NAMES
from adan.data.report import CleaningReport, DataError
from adan.data.sources import FileMarket, FileSource
from adan.data.splits import FeatureScaler, split_by_date, split_by_fraction, walk_forward_folds
from adan.data.synthetic import SyntheticMarket
from adan.data.timeframes import HigherTimeframes, TimeframeSpec, resample

__all__ = [
    "CALENDARS",
    "DEFAULT_FEATURES",
    "FEATURES",
    "REGIME_NAMES",
    "Bars",
    "CleaningPolicy",
    "CleaningReport",
    "DataError",
    "FeatureCache",
    "FeatureScaler",
    "FileMarket",
    "FileSource",
    "HigherTimeframes",
    "MarketData",
    "MarketPipeline",
    "SyntheticMarket",
    "TimeframeData",
    "TimeframeSpec",
    "bars_per_year",
    "compute_features",
    "content_key",
    "is_known_feature",
    "resample",
    "resolve_feature",
    "split_by_date",
    "split_by_fraction",
    "walk_forward_folds",
]
