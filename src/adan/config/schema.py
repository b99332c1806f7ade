"""Structured config schemas for the Hydra tree.

Each YAML option of a typed group lists its schema first in its defaults
(``- /schema/agent@_here_: ppo``), so Hydra rejects a misspelt key or a value of the wrong type
(``trading.fee_bps=abc``) while composing. Ranges are checked by ``validate_config``, which
builds every typed node into its dataclass (running ``__post_init__``) before any work starts,
and reports the full key of the first bad value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from adan.data.cleaning import CleaningPolicy
from adan.data.features import DEFAULT_FEATURES
from adan.data.report import DataError
from adan.errors import ConfigError, check
from adan.market.config import TradingConfig

_check = check

MARKET_FEATURES = DEFAULT_FEATURES  # the features of the default run


@dataclass
class SplitSchema:
    """Fractions of the kept bars, or dates (``train_end`` set: by date), plus an embargo."""

    train: float = 0.7
    val: float = 0.15
    test: float = 0.15  # 0 only with data.test_path (a separate held-out period)
    embargo: int = 24  # bars dropped between splits (a day of hourly bars)
    train_end: str | None = None  # e.g. "2024-01-01": train < train_end <= val
    val_end: str | None = None
    test_end: str | None = None

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
    features: list[str] = field(default_factory=list)
    window: int = 16

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

    features: list[str] = field(default_factory=lambda: list(MARKET_FEATURES))  # per asset
    split: SplitSchema = field(default_factory=SplitSchema)
    clip: float = 10.0  # bound on the train-fitted z-scored features
    min_split_bars: int = 32  # a split with fewer bars is refused
    timeframes: list[TimeframeSchema] = field(default_factory=list)  # higher timeframes
    cache_dir: str | None = None  # prepared features cached here, keyed by content
    n_jobs: int = 1  # files and assets prepared in parallel threads (-1: all cores)

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
    features: list[str] = field(default_factory=lambda: [*MARKET_FEATURES, "filled"])
    path: Any = None  # a file, a glob, or a list of them
    test_path: Any = None  # a separate held-out period: the whole test split
    format: str = "auto"  # auto (from the file name) | csv | parquet
    assets: list[str] | None = None  # names for the files in order; default: symbol, else file
    test_assets: list[str] | None = None
    columns: dict[str, str] = field(default_factory=dict)  # {open|...|symbol: file column}
    cleaning: CleaningPolicy = field(default_factory=CleaningPolicy)
    report_path: str | None = "cleaning_report.json"
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


@dataclass
class PPOConfig:
    _target_: str = "adan.agents.PPO"
    _partial_: bool = True
    total_timesteps: int = 1_200_000  # per process under trainer=ddp
    n_steps: int = 128  # rollout length per env
    n_minibatches: int = 8
    n_epochs: int = 4  # passes over each rollout
    learning_rate: float = 3e-4
    anneal_lr: bool = True  # linear decay to 0 over total_timesteps
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    anneal_clip_range: bool = False
    clip_range_vf: float | None = 0.2  # value clipping around the old values; null: off
    normalize_advantage: bool = True
    ent_coef: float = 0.001  # entropy bonus
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None  # stop an update's epochs early past this KL; null: never
    adam_eps: float = 1e-5
    seed: int = 0

    def __post_init__(self) -> None:
        k = "agent."
        _check(self.total_timesteps > 0, k + "total_timesteps", "must be > 0", self.total_timesteps)
        _check(self.n_steps > 0, k + "n_steps", "must be > 0", self.n_steps)
        _check(self.n_minibatches > 0, k + "n_minibatches", "must be > 0", self.n_minibatches)
        _check(self.n_epochs > 0, k + "n_epochs", "must be > 0", self.n_epochs)
        _check(self.learning_rate > 0, k + "learning_rate", "must be > 0", self.learning_rate)
        _check(0 < self.gamma <= 1, k + "gamma", "must be in (0, 1]", self.gamma)
        _check(0 <= self.gae_lambda <= 1, k + "gae_lambda", "must be in [0, 1]", self.gae_lambda)
        _check(0 < self.clip_range <= 1, k + "clip_range", "must be in (0, 1]", self.clip_range)
        _check(
            self.clip_range_vf is None or self.clip_range_vf > 0,
            k + "clip_range_vf",
            "must be > 0 or null",
            self.clip_range_vf,
        )
        _check(self.ent_coef >= 0, k + "ent_coef", "must be >= 0", self.ent_coef)
        _check(self.vf_coef >= 0, k + "vf_coef", "must be >= 0", self.vf_coef)
        _check(self.max_grad_norm > 0, k + "max_grad_norm", "must be > 0", self.max_grad_norm)
        _check(
            self.target_kl is None or self.target_kl > 0,
            k + "target_kl",
            "must be > 0 or null",
            self.target_kl,
        )


@dataclass
class TradingSchema(TradingConfig):
    """``TradingConfig`` itself (its ``__post_init__`` checks every value), plus the target."""

    _target_: str = "adan.market.TradingConfig"


@dataclass
class TradingEnvSchema:
    _target_: str = "adan.envs.VecTradingEnv"
    _partial_: bool = True
    num_envs: int = 64  # environments stepped as one batch
    window: int = 32  # bars of history in each observation
    episode_length: int = 256  # bars per episode
    autoreset_mode: str = "NextStep"  # gymnasium's: NextStep | SameStep
    bars_per_year: float | None = None  # None: the data's (bar interval and calendar)
    validate_every_step: bool = False  # check every observation (adan.envs.validation)

    def __post_init__(self) -> None:
        k = "env."
        _check(self.num_envs > 0, k + "num_envs", "must be > 0", self.num_envs)
        _check(self.window > 1, k + "window", "must be > 1", self.window)
        _check(self.episode_length > 0, k + "episode_length", "must be > 0", self.episode_length)
        _check(
            self.autoreset_mode in ("NextStep", "SameStep"),
            k + "autoreset_mode",
            "must be 'NextStep' or 'SameStep'",
            self.autoreset_mode,
        )
        _check(
            self.bars_per_year is None or self.bars_per_year > 0,
            k + "bars_per_year",
            "must be > 0, or null to take it from the data",
            self.bars_per_year,
        )


@dataclass
class GymEnvSchema:
    _target_: str = "adan.envs.make_gym_vec_env"
    env_id: str = "CartPole-v1"
    num_envs: int = 8
    episode_length: int | None = None  # time limit; None keeps the task's own
    autoreset_mode: str = "NextStep"
    validate_every_step: bool = False  # check every observation (adan.envs.validation)

    def __post_init__(self) -> None:
        _check(self.num_envs > 0, "env.num_envs", "must be > 0", self.num_envs)
        _check(
            self.episode_length is None or self.episode_length > 0,
            "env.episode_length",
            "must be > 0 or null",
            self.episode_length,
        )


@dataclass
class SimpleRewardSchema:
    _target_: str = "adan.rewards.SimpleReward"
    scale: float = 100.0

    def __post_init__(self) -> None:
        _check(self.scale > 0, "reward.scale", "must be > 0", self.scale)


@dataclass
class AdaptiveRewardSchema:
    _target_: str = "adan.rewards.AdaptiveReward"
    w_return: float = 1.0  # net log return
    w_sharpe: float = 1e-3  # differential Sharpe ratio (Moody & Saffell), O(1) per step
    w_sortino: float = 1e-3  # differential downside deviation ratio
    w_drawdown: float = 1.0  # minus the increase in drawdown
    w_turnover: float = 1e-4  # minus turnover (costs are already in the return)
    eta: float = 0.01  # EMA rate of the online moments
    scale: float = 100.0
    clip: float = 10.0  # bound on the ratio terms
    # {regime name: {component name: multiplier}}, missing = 1.0; empty or null: none. A dict
    # of Any, checked in __post_init__: OmegaConf 2.3 refuses ints in a dict[str, dict[str,
    # float]] and cannot merge a command-line dict into a None default.
    regime_weights: dict[str, Any] | None = field(default_factory=dict)
    regime_smoothing: float = 0.05  # EMA rate of the multipliers toward the current regime's

    def __post_init__(self) -> None:
        from adan.rewards.adaptive import regime_table

        k = "reward."
        for name in ("w_return", "w_sharpe", "w_sortino", "w_drawdown", "w_turnover"):
            _check(getattr(self, name) >= 0, k + name, "must be >= 0", getattr(self, name))
        _check(0 < self.eta <= 1, k + "eta", "must be in (0, 1]", self.eta)
        _check(self.clip > 0, k + "clip", "must be > 0", self.clip)
        _check(self.scale > 0, k + "scale", "must be > 0", self.scale)
        _check(
            0 < self.regime_smoothing <= 1,
            k + "regime_smoothing",
            "must be in (0, 1]",
            self.regime_smoothing,
        )
        regime_table(self.regime_weights)  # names and values, with the full key


@dataclass
class CNNSchema:
    _target_: str = "adan.models.CustomCNN"
    _partial_: bool = True
    channels: list[int] = field(default_factory=lambda: [16, 32])
    kernel_sizes: list[int] = field(default_factory=lambda: [5, 3])
    strides: list[int] | None = None
    width_multiplier: float = 1.0  # scales every channel count
    pooling: str = "avg"  # over time: avg | max | avgmax
    dropout: float = 0.0
    portfolio_hidden: int = 32  # width of the portfolio vector's layer
    features_dim: int = 64  # output width, fed to the actor and critic heads
    activation_fn: str = "relu"
    norm: bool = True
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
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    activation_fn: str = "tanh"
    layer_norm: bool = False

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
    share_extractor: bool = True
    pi_hidden: list[int] = field(default_factory=lambda: [64])
    vf_hidden: list[int] = field(default_factory=lambda: [64])
    activation_fn: str = "tanh"
    log_std_init: float = -0.5  # initial log std of the Gaussian policy (continuous actions)
    ortho_init: bool = True
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
    pi_hidden: list[int] = field(default_factory=list)
    vf_hidden: list[int] = field(default_factory=list)


@dataclass
class WalkForwardSchema:
    n_folds: int = 3
    train_bars: int | None = None
    val_bars: int = 2000
    test_bars: int = 2000
    expanding: bool = False
    baselines: list[str] = field(default_factory=lambda: ["buy_and_hold", "flat", "ma_crossover"])

    def __post_init__(self) -> None:
        from adan.evaluation.baselines import BASELINES

        k = "walk_forward."
        _check(self.n_folds >= 1, k + "n_folds", "must be >= 1", self.n_folds)
        _check(self.val_bars >= 1, k + "val_bars", "must be >= 1", self.val_bars)
        _check(self.test_bars >= 1, k + "test_bars", "must be >= 1", self.test_bars)
        _check(
            self.train_bars is None or self.train_bars >= 1,
            k + "train_bars",
            "must be >= 1 or null",
            self.train_bars,
        )
        for name in self.baselines:
            _check(name in BASELINES, k + "baselines", f"must be among {list(BASELINES)}", name)


SCHEMAS: dict[str, dict[str, type]] = {
    "data": {
        "synthetic": MarketPipelineSchema,
        "csv": FileMarketSchema,
        "parquet": FileMarketSchema,
        "binance_sample": FileMarketSchema,
    },
    "agent": {"ppo": PPOConfig},
    "trading": {"default": TradingSchema},
    "env": {"trading": TradingEnvSchema, "gym": GymEnvSchema},
    "reward": {"simple": SimpleRewardSchema, "adaptive": AdaptiveRewardSchema},
    "model": {"cnn": CNNModelSchema, "mlp": MLPModelSchema},
    "walk_forward": {"rolling": WalkForwardSchema},
}


def register_configs() -> None:
    """Store every schema under ``schema/<group>/<name>`` for the YAML options to extend."""
    cs = ConfigStore.instance()
    for group, options in SCHEMAS.items():
        for name, node in options.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


def _check_keys(node: DictConfig, prefix: str) -> None:
    """Refuse keys a schema does not know (Hydra lets ``+key=value`` append them)."""
    kind = OmegaConf.get_type(node)
    if not is_dataclass(kind):
        return
    known = {f.name for f in fields(kind)}
    for key in node:
        if key not in known:
            raise ConfigError(
                f"{prefix}.{key} is not a setting of {kind.__name__}; known keys: {sorted(known)}"
            )
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _check_keys(child, f"{prefix}.{key}")


def validate_config(cfg: DictConfig) -> None:
    """Range-check every typed group of a composed config; raise ConfigError naming the key."""
    for group in SCHEMAS:
        node = cfg.get(group)
        if node is None or OmegaConf.get_type(node) in (dict, None):
            continue
        _check_keys(node, group)
        if group == "trading":
            _check_profiles(node)
        try:
            OmegaConf.to_object(node)
        except ConfigError:
            raise
        except ValueError as err:  # raised inside a nested __post_init__ and wrapped by OmegaConf
            cause = err.__cause__ or err.__context__
            raise (cause if isinstance(cause, ConfigError | DataError) else err) from None
    _check_across_groups(cfg)


def _check_profiles(trading: DictConfig) -> None:
    """Each of ``trading.profiles`` on its own, so an error names its full key
    (``trading.profiles.<name>.sizing.kelly_cap``, not ``trading.sizing.kelly_cap``)."""
    profiles = trading.get("profiles")
    if not profiles:
        return
    for name in profiles:
        try:
            OmegaConf.to_object(profiles[name])
        except ValueError as err:
            cause = err.__cause__ or err.__context__ or err
            if not isinstance(cause, ConfigError):
                raise
            text = str(cause).replace("trading.", f"trading.profiles.{name}.", 1)
            raise ConfigError(text) from None


def _check_across_groups(cfg: DictConfig) -> None:
    """Rules that tie two groups together."""
    agent, env = cfg.get("agent"), cfg.get("env")
    if agent is not None and env is not None:
        next_step = env.get("autoreset_mode", "NextStep") == "NextStep"
        _check(
            agent.n_steps >= 2 or not next_step,
            "agent.n_steps",
            "must be >= 2 with env.autoreset_mode=NextStep (the step after an episode ends is "
            "a reset, not a transition, so a 1-step rollout can hold none)",
            agent.n_steps,
        )
        valid = min_valid_rows(agent.n_steps, env.num_envs, env.get("episode_length"), next_step)
        _check(
            agent.n_minibatches <= valid,
            "agent.n_minibatches",
            f"must be <= the transitions of one rollout, {valid} (agent.n_steps x env.num_envs"
            + (" less one autoreset step per episode end" if next_step else "")
            + ")",
            agent.n_minibatches,
        )


def min_valid_rows(n_steps: int, num_envs: int, episode_length: int | None, next_step: bool) -> int:
    """The fewest transitions a rollout holds when episodes run their full length: with
    next-step autoreset, each episode end costs its env one reset step, at most
    ceil(n_steps / (episode_length + 1)) per rollout (one, when the length is unknown)."""
    if not next_step:
        return n_steps * num_envs
    resets = 1 if episode_length is None else -(-n_steps // (episode_length + 1))
    return max(0, n_steps - resets) * num_envs
