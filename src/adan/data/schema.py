"""The data group's settings (``data=synthetic|csv|parquet|binance_sample``): their one home.

Each dataclass holds the defaults, and its ``__post_init__`` the ranges, of one YAML option's
node; ``adan.tasks.registry`` registers them with Hydra and ``MarketPipeline``/``FileMarket``
take the same defaults (checked by ``tests/config/test_settings_agree.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adan.data.cleaning import CleaningPolicy
from adan.data.features import DEFAULT_FEATURES
from adan.data.regime_detection import RegimeConfig
from adan.errors import check as _check


@dataclass
class SplitSchema:
    """Fractions of the kept bars, or dates (``train_end`` set: by date), plus an embargo."""

    train: float = 0.7  # fraction of the kept bars, oldest first
    val: float = 0.15  # fraction after train (and the embargo): model selection, early stopping
    test: float = 0.15  # 0 only with data.test_path (a separate held-out period)
    embargo: int = 24  # bars dropped between splits (a day of hourly bars)
    train_end: str | None = None  # e.g. "2024-01-01": train < train_end <= val
    val_end: str | None = None  # with train_end: val < val_end <= test
    test_end: str | None = None  # null: to the last bar

    def __post_init__(self) -> None:
        k = "data.split."
        for name in ("train", "val"):
            _check(0 < getattr(self, name) <= 1, k + name, "must be in (0, 1]", getattr(self, name))
        _check(0 <= self.test <= 1, k + "test", "must be in [0, 1]", self.test)
        total = self.train + self.val + self.test
        _check(total <= 1 + 1e-9, k + "train + val + test", "must be <= 1", round(total, 6))
        _check(self.embargo >= 0, k + "embargo", "must be >= 0 bars", self.embargo)
        dates = [d for d in (self.train_end, self.val_end, self.test_end) if d is not None]
        for name in ("train_end", "val_end", "test_end"):
            value = getattr(self, name)
            if value is not None:
                _check(_is_date(value), k + name, "must be a date like 2024-01-31", value)
        _check(
            dates == sorted(dates, key=_date_ns),
            k + "train_end/val_end/test_end",
            "must be in time order",
            dates,
        )
        _check(
            self.val_end is None or self.train_end is not None,
            k + "val_end",
            "needs data.split.train_end",
            self.val_end,
        )


def _date_ns(value: str) -> int:
    import pandas as pd

    return pd.Timestamp(value).value


def _is_date(value: str) -> bool:
    try:
        _date_ns(value)
    except (ValueError, TypeError):
        return False
    return True


@dataclass
class TimeframeSchema:
    """A higher timeframe observed beside the base bars (``market_<rule>``)."""

    rule: str = "4h"  # fixed-length pandas frequency: 15min, 4h, 1d
    # computed on this timeframe's own bars (see data.features)
    features: list[str] = field(default_factory=list)
    window: int = 16  # bars of this timeframe in each observation

    def __post_init__(self) -> None:
        from adan.data.features import feature_kinds, is_known_feature
        from adan.data.timeframes import rule_duration

        k = "data.timeframes."
        try:
            ok = rule_duration(self.rule) is not None
        except ValueError:
            ok = False
        _check(ok, k + "rule", "must be a fixed-length pandas frequency (15min, 4h, 1d)", self.rule)
        _check(len(self.features) > 0, k + "features", "must list at least one feature", [])
        for name in self.features:
            _check(
                is_known_feature(name),
                k + "features",
                f"must name known features ({', '.join(feature_kinds())})",
                name,
            )
        _check(self.window > 1, k + "window", "must be > 1", self.window)


@dataclass
class PipelineSchema:
    """What every market data option shares: features, timeframes, split, normalisation."""

    features: list[str] = field(default_factory=lambda: list(DEFAULT_FEATURES))  # per asset
    split: SplitSchema = field(default_factory=SplitSchema)
    clip: float = 10.0  # bound on the train-fitted z-scored features
    min_split_bars: int = 32  # a split with fewer bars is refused
    timeframes: list[TimeframeSchema] = field(default_factory=list)  # higher timeframes
    cache_dir: str | None = None  # prepared features cached here, keyed by content
    n_jobs: int = 1  # files and assets prepared in parallel threads (-1: all cores)
    # annualisation of Sharpe, volatility and CAGR; null: from the bar interval and calendar
    # (a value more than 10% away from the bars' own is refused)
    bars_per_year: float | None = None
    # how the bars are labelled bull / bear / sideways / volatile, once, causally
    regime: RegimeConfig = field(default_factory=RegimeConfig)

    def __post_init__(self) -> None:
        from adan.data.features import feature_kinds, is_known_feature

        _check(len(self.features) > 0, "data.features", "must list at least one feature", [])
        for name in self.features:
            _check(
                is_known_feature(name),
                "data.features",
                f"must name known features ({', '.join(feature_kinds())}; "
                "n = window in bars, e.g. rsi_14)",
                name,
            )
        _check(self.clip > 0, "data.clip", "must be > 0", self.clip)
        _check(self.min_split_bars > 1, "data.min_split_bars", "must be > 1", self.min_split_bars)
        rules = [tf.rule for tf in self.timeframes]
        _check(len(set(rules)) == len(rules), "data.timeframes", "must not repeat a rule", rules)
        _check(self.n_jobs != 0, "data.n_jobs", "must be >= 1, or -1 for all cores", self.n_jobs)
        _check(
            self.bars_per_year is None or self.bars_per_year > 0,
            "data.bars_per_year",
            "must be > 0, or null to take it from the bars",
            self.bars_per_year,
        )
        held_out = getattr(self, "test_path", None) is not None
        _check(
            self.split.train_end is None or self.split.val_end is not None or held_out,
            "data.split.val_end",
            "must be set with data.split.train_end (unless data.test_path holds the test period)",
            self.split.val_end,
        )


@dataclass
class MarketPipelineSchema(PipelineSchema):
    _target_: str = "adan.data.MarketPipeline"
    source: Any = None  # any object with .generate() -> Bars (the synthetic market)

    def __post_init__(self) -> None:
        _check(self.source is not None, "data.source", "must be set", self.source)
        super().__post_init__()
        _check(self.split.test > 0, "data.split.test", "must be > 0", self.split.test)


@dataclass
class FileMarketSchema(PipelineSchema):
    """OHLCV files (``data=csv|parquet|binance_sample``); see ``adan.data.sources``."""

    _target_: str = "adan.data.FileMarket"
    # per asset; `filled` flags bars the cleaning filled flat
    features: list[str] = field(default_factory=lambda: [*DEFAULT_FEATURES, "filled"])
    path: Any = None  # a file, a glob, or a list of them
    test_path: Any = None  # a separate held-out period: the whole test split
    format: str = "auto"  # auto (from the file name) | csv | parquet
    assets: list[str] | None = None  # names for the files in order; default: symbol, else file
    test_assets: list[str] | None = None  # names for the test_path files; default: as for assets
    columns: dict[str, str] = field(default_factory=dict)  # {open|...|symbol: file column}
    cleaning: CleaningPolicy = field(default_factory=CleaningPolicy)
    report_path: str | None = "cleaning_report.json"  # cleaning report (JSON); null: not written
    encoding: str = "utf8"  # text encoding of CSV files
    decimal: str = "auto"  # auto (sniffed) | point | comma
    calendar: str = "auto"  # auto (inferred per asset) | 24x7 | fx | equity

    def __post_init__(self) -> None:
        from adan.data.calendar import SETTINGS
        from adan.data.dialect import DECIMAL_SETTINGS
        from adan.data.loading import COLUMN_ALIASES

        _check(self.path not in (None, "", []), "data.path", "must name a file or glob", self.path)
        super().__post_init__()
        _check(
            self.format in ("auto", "csv", "parquet"),
            "data.format",
            "must be auto, csv or parquet",
            self.format,
        )
        _check(
            str(self.decimal).lower() in DECIMAL_SETTINGS,
            "data.decimal",
            "must be auto, point (1234.56) or comma (1234,56)",
            self.decimal,
        )
        _check(
            str(self.calendar).lower() in SETTINGS,
            "data.calendar",
            f"must be one of {list(SETTINGS)}",
            self.calendar,
        )
        for key in self.columns:
            _check(
                key in COLUMN_ALIASES,
                "data.columns",
                f"keys must be among {sorted(COLUMN_ALIASES)}",
                key,
            )
        held_out = self.test_path is not None
        _check(
            held_out or self.split.test > 0 or self.split.train_end is not None,
            "data.split.test",
            "must be > 0 unless data.test_path gives a held-out period",
            self.split.test,
        )
