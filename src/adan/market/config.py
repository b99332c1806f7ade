"""Trading rules of one experiment: venue costs, actions, account, and the trading profile(s).

A profile bundles how the account is run: sizing, stops, risk limits and the Dynamic
Behaviour Engine. ``trading=conservative|moderate|aggressive`` pick one; ``trading.profiles``
(``trading=multi_profile``) trains several at once, each on its own sub-batch of envs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, make_dataclass, replace

import numpy as np
from omegaconf import DictConfig, OmegaConf

from adan.config.deprecations import REGIME_MOVED
from adan.data.regime_detection import RegimeConfig
from adan.errors import ConfigError
from adan.market.behaviour import BehaviourConfig
from adan.market.execution import ExecutionConfig
from adan.market.risk import RiskConfig
from adan.market.sizing import SizingConfig
from adan.market.stops import StopsConfig

ACTION_MODES = ("continuous", "discrete")
_TYPES = {"str": str, "int": int, "float": float}


def _check_observation(self: RegimeObservation) -> None:
    if not isinstance(self.observe, bool):
        raise ConfigError(f"trading.regime.observe must be a bool, got {self.observe!r}")
    for name in REGIME_MOVED:
        if getattr(self, name) is not None:
            raise ConfigError(
                f"trading.regime.{name} moved to data.regime.{name} (the pipeline labels the "
                "bars once): set it there"
            )


# The detection settings moved to ``data.regime``; their old keys stay in this node, unset,
# so a config that still sets one composes and is moved by adan.config.deprecations.
RegimeObservation = make_dataclass(
    "RegimeObservation",
    [("observe", bool, False)]
    + [
        (name, _TYPES[str(RegimeConfig.__dataclass_fields__[name].type)] | None, None)
        for name in REGIME_MOVED
    ],
    namespace={
        "__doc__": "``trading.regime``: whether the agent observes the market regime (one-hot, "
        "``regime`` key) that the data pipeline labels with ``data.regime``.",
        "__post_init__": _check_observation,
        "__module__": __name__,
        # what the settings reference says of each key (this class has no source to read)
        "MEANINGS": {
            "observe": "add the regime (one-hot) to the observation, key `regime`",
            **{name: f"deprecated: moved to data.regime.{name}" for name in REGIME_MOVED},
        },
    },
)


def _as_config(cls: type, value: object, key: str) -> object:
    """``value`` as a ``cls`` instance: as is, from a structured/dict config, or from a dict."""
    if isinstance(value, cls):
        return value
    if isinstance(value, DictConfig):
        value = OmegaConf.to_object(value)
        if isinstance(value, cls):
            return value
    if isinstance(value, Mapping):
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ConfigError(f"{key} has unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**value)
    raise ConfigError(f"{key} must be a mapping of {cls.__name__} settings, got {value!r}")


@dataclass
class ProfileConfig:
    """How one account is run: sizing, stops, risk limits, behaviour engine."""

    sizing: SizingConfig = field(default_factory=SizingConfig)
    stops: StopsConfig = field(default_factory=StopsConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    dbe: BehaviourConfig = field(default_factory=BehaviourConfig)

    def __post_init__(self) -> None:
        for name, cls in _PROFILE_FIELDS.items():
            setattr(self, name, _as_config(cls, getattr(self, name), name))


@dataclass
class TradingConfig:
    """What trading costs and what the agent may do; validated on construction.

    Costs are in basis points of traded notional and charged on every fill: ``fee_bps``
    (exchange commission), ``half_spread_bps`` (crossing half the bid/ask spread) and
    ``slippage_bps`` (moving the book). ``max_leverage`` caps gross exposure as a multiple of
    equity. An episode ends (terminated) when equity falls below
    ``ruin_threshold * initial_cash``.
    """

    fee_bps: float = 5.0  # taker fee, bps of traded notional (market orders and stop exits)
    # half the bid/ask spread, bps, paid by market orders and stop exits (the floor of an
    # estimated spread)
    half_spread_bps: float = 2.0
    slippage_bps: float = 1.0  # fixed slippage, bps, on market orders and stop exits
    max_leverage: float = 1.0  # gross exposure cap, x equity; a full action is max_leverage
    # annual rate charged on the notional of short positions, bar by bar (a perpetual's
    # funding or a margin short's borrow); 0.1095: the standard 0.01% per 8 h funding
    borrow_rate: float = 0.1095
    allow_short: bool = True  # false: long-only (negative actions clipped to flat)
    action_mode: str = "continuous"  # continuous: [-1, 1] per asset | discrete: {short, flat, long}
    # continuous only: target = s x the last target + (1 - s) x the sized action, in [0, 1);
    # 0: the action itself
    action_smoothing: float = 0.0
    # the training env pays this x every cost rate; validation, test and eval.py pay 1x.
    # null: 4 for continuous actions (with the 0.2 no-trade band it taught the default agent to
    # hold positions twice as long at the same test Sharpe), 1 for discrete ones (they cannot
    # jitter, and at 2x the default discrete agent ended as buy-and-hold);
    # experiments/results/no_churn.md
    train_cost_multiplier: float | None = None
    initial_cash: float = 10_000.0  # equity at each episode start, in quote currency
    ruin_threshold: float = 0.5  # episode terminates when equity < this x initial_cash, [0, 1)
    name: str = "default"  # the profile's name in logs (trading/<name>/...)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    regime: RegimeObservation = field(default_factory=RegimeObservation)
    sizing: SizingConfig = field(default_factory=SizingConfig)
    stops: StopsConfig = field(default_factory=StopsConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    dbe: BehaviourConfig = field(default_factory=BehaviourConfig)
    profiles: dict[str, ProfileConfig] | None = None  # several profiles: replaces the four above

    def __post_init__(self) -> None:
        self.execution = _as_config(ExecutionConfig, self.execution, "trading.execution")
        self.regime = _as_config(RegimeObservation, self.regime, "trading.regime")
        for name, cls in _PROFILE_FIELDS.items():
            setattr(self, name, _as_config(cls, getattr(self, name), f"trading.{name}"))
        if self.profiles is not None:
            if isinstance(self.profiles, DictConfig):
                self.profiles = OmegaConf.to_container(self.profiles)
            if not isinstance(self.profiles, Mapping) or not self.profiles:
                raise ConfigError(
                    f"trading.profiles must map profile names to settings, got {self.profiles!r}"
                )
            self.profiles = {
                str(name): _as_config(ProfileConfig, value, f"trading.profiles.{name}")
                for name, value in self.profiles.items()
            }
            for name, cls in _PROFILE_FIELDS.items():
                if getattr(self, name) != cls():
                    raise ConfigError(
                        f"trading.{name} is not used when trading.profiles is set: set it in "
                        f"each profile (trading.profiles.<name>.{name})"
                    )
        for name, profile in self.profile_configs():
            no_stop = profile.stops.mode == "none" or profile.stops.stop_loss is None
            if profile.sizing.mode == "risk_per_trade" and no_stop:
                raise ConfigError(
                    f"trading profile {name!r}: sizing.mode=risk_per_trade sizes from the stop "
                    "distance; set trading.stops.mode to pct or atr, with a stop_loss"
                )
        for name in ("fee_bps", "half_spread_bps", "slippage_bps", "borrow_rate"):
            value = self._number(name)
            if value < 0:
                raise ConfigError(f"trading.{name} must be >= 0, got {value:g}")
        if not 0 <= self._number("action_smoothing") < 1:
            raise ConfigError(
                f"trading.action_smoothing must be in [0, 1), got {self.action_smoothing:g}"
            )
        if self.action_smoothing > 0 and self.action_mode == "discrete":
            raise ConfigError(
                "trading.action_smoothing blends targets, which discrete actions do not have: "
                "set it to 0 with trading.action_mode=discrete"
            )
        if self.train_cost_multiplier is not None and self._number("train_cost_multiplier") < 0:
            raise ConfigError(
                f"trading.train_cost_multiplier must be >= 0, got {self.train_cost_multiplier:g}"
            )
        if self._number("max_leverage") <= 0:
            raise ConfigError(f"trading.max_leverage must be > 0, got {self.max_leverage:g}")
        if self._number("initial_cash") <= 0:
            raise ConfigError(f"trading.initial_cash must be > 0, got {self.initial_cash:g}")
        if not 0 <= self._number("ruin_threshold") < 1:
            raise ConfigError(
                f"trading.ruin_threshold must be in [0, 1), got {self.ruin_threshold:g}"
            )
        if not isinstance(self.allow_short, bool):
            raise ConfigError(f"trading.allow_short must be a bool, got {self.allow_short!r}")
        if self.action_mode not in ACTION_MODES:
            raise ConfigError(
                f"trading.action_mode must be one of {ACTION_MODES}, got {self.action_mode!r}"
            )

    def _number(self, name: str) -> float:
        """Coerce field ``name`` to a finite float (YAML may give ints), or raise naming it."""
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"trading.{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"trading.{name} must be finite, got {value!r}")
        setattr(self, name, float(value))
        return float(value)

    def profile_configs(self) -> list[tuple[str, ProfileConfig]]:
        """(name, settings) of every profile: ``profiles``, or this config's own one."""
        if self.profiles:
            return list(self.profiles.items())
        own = ProfileConfig(**{name: getattr(self, name) for name in _PROFILE_FIELDS})
        return [(self.name, own)]

    def only(self, name: str) -> TradingConfig:
        """This config reduced to its profile ``name`` (e.g. to backtest one of several)."""
        chosen = dict(self.profile_configs())
        if name not in chosen:
            raise ConfigError(f"trading has no profile {name!r}; it has {sorted(chosen)}")
        profile = chosen[name]
        return replace(self, name=name, profiles=None,
                       **{k: getattr(profile, k) for k in _PROFILE_FIELDS})  # fmt: skip

    def for_training(self) -> TradingConfig:
        """The rules the training env trades under: costs times ``training_cost_factor``."""
        if self.training_cost_factor == 1.0:
            return self
        return self.with_costs_scaled(self.training_cost_factor)

    @property
    def training_cost_factor(self) -> float:
        """``train_cost_multiplier``, or when null the action mode's: 4 for continuous
        targets (their jitter is what it cures), 1 for discrete actions."""
        if self.train_cost_multiplier is not None:
            return float(self.train_cost_multiplier)
        return 1.0 if self.action_mode == "discrete" else 4.0

    def with_costs_scaled(self, factor: float) -> TradingConfig:
        """These rules with every cost rate (fees, spread, slippage, impact, borrow) times
        ``factor``: a training market dearer than the one the agent is scored on."""
        ex = self.execution
        return replace(
            self,
            fee_bps=self.fee_bps * factor,
            half_spread_bps=self.half_spread_bps * factor,
            slippage_bps=self.slippage_bps * factor,
            borrow_rate=self.borrow_rate * factor,
            execution=replace(
                ex, maker_fee_bps=ex.maker_fee_bps * factor, impact_coef=ex.impact_coef * factor
            ),  # fmt: skip
        )

    @property
    def cost_bps(self) -> float:
        """All-in cost of one unit of traded notional, in basis points."""
        return self.fee_bps + self.half_spread_bps + self.slippage_bps


_PROFILE_FIELDS = {"sizing": SizingConfig, "stops": StopsConfig, "risk": RiskConfig,
                   "dbe": BehaviourConfig}  # fmt: skip


def assign_profiles(num_envs: int, num_profiles: int) -> np.ndarray:
    """Profile index of each env [N]: contiguous, near-equal sub-batches in profile order."""
    if num_envs < num_profiles:
        raise ConfigError(
            f"env.num_envs={num_envs} cannot hold {num_profiles} trading profiles; "
            "set env.num_envs >= the number of profiles"
        )
    return (np.arange(num_envs) * num_profiles) // num_envs
