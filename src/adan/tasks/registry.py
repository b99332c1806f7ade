"""The config registry: every typed group's dataclass, registered with Hydra and checked.

Each YAML option of a typed group lists its schema first in its defaults
(``- /schema/agent@_here_: ppo``), so Hydra rejects a misspelt key or a value of the wrong type
(``trading.fee_bps=abc``) while composing. Ranges are checked by ``validate_config``, which
builds every typed node into its dataclass (running ``__post_init__``) before any work starts,
and reports the full key of the first bad value. The dataclasses live beside their components
(``adan.<package>.schema``); this module only gathers them, so it sits with the tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from adan.agents.schema import PPOConfig
from adan.data.report import DataError
from adan.data.schema import FileMarketSchema, MarketPipelineSchema
from adan.envs.schema import GymEnvSchema, TradingEnvSchema
from adan.errors import ConfigError
from adan.errors import check as _check
from adan.market.schema import TradingSchema
from adan.models.schema import CNNModelSchema, MLPModelSchema
from adan.rewards.schema import AdaptiveRewardSchema, SimpleRewardSchema


@dataclass
class WalkForwardSchema:
    n_folds: int = 3  # consecutive folds, each train -> val -> test, oldest first
    train_bars: int | None = None  # bars of train per fold; null: fold 0 gets everything before it
    val_bars: int = 2000  # bars of validation per fold (model selection)
    test_bars: int = 2000  # bars of test per fold (scored)
    expanding: bool = False  # true: every fold trains from the first fold's start
    # rules scored on the same test bars
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
