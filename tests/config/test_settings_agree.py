"""One home per setting: what a YAML option composes, its schema dataclass and the
component's constructor give the same default, so code that builds a component directly
(a test, a script under experiments/, a notebook) gets the values a `train.py` run gets.

A YAML option may differ from its dataclass only where it means to (``ON_PURPOSE``); a
constructor only where its parameter has another type for the same meaning (``SAME_MEANING``).
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from adan import agents, data, envs, models, rewards
from adan.agents.schema import PPOConfig
from adan.data.schema import FileMarketSchema, MarketPipelineSchema
from adan.envs.schema import GymEnvSchema, TradingEnvSchema
from adan.envs.trading_env import TradingEnv
from adan.models.schema import ActorCriticSchema, CNNSchema, MLPSchema
from adan.rewards.schema import AdaptiveRewardSchema, SimpleRewardSchema
from adan.tasks.reference import field_default
from adan.tasks.registry import SCHEMAS, register_configs

CONF = str(Path(__file__).resolve().parents[2] / "conf")
register_configs()

# (group, option, extra overrides) -> keys the option sets on purpose, with why
ON_PURPOSE: dict[tuple[str, str], set[str]] = {
    ("data", "synthetic"): {"source"},  # the synthetic market, seeded by ${seed}
    ("data", "csv"): {"path", "cache_dir", "report_path"},  # run-directory wiring
    ("data", "parquet"): {"path", "cache_dir", "report_path", "format"},
    # the shipped sample: its files, assets, held-out year, split and higher timeframes
    ("data", "binance_sample"): {
        "path",
        "cache_dir",
        "report_path",
        "test_path",
        "assets",
        "timeframes",
        "split.train",
        "split.test",
    },
    ("agent", "ppo"): {"seed"},  # ${seed}
    ("reward", "adaptive"): {"regime_weights"},  # the shipped regime preset
}

# constructor parameters whose default means the same as the dataclass's
SAME_MEANING = {
    ("AdaptiveRewardSchema", "regime_weights"),  # None and {}: no regime weights
    ("MarketPipelineSchema", "split"),  # None: SplitSchema's defaults
    ("MarketPipelineSchema", "timeframes"),  # None and []: none
    ("MarketPipelineSchema", "regime"),  # None: RegimeConfig's defaults
    ("FileMarketSchema", "columns"),  # None and {}: the usual names
    ("FileMarketSchema", "cleaning"),  # None: CleaningPolicy's defaults
}

CONSTRUCTORS = [
    (PPOConfig, agents.PPO),
    (TradingEnvSchema, envs.VecTradingEnv),
    (TradingEnvSchema, TradingEnv),
    (GymEnvSchema, envs.make_gym_vec_env),
    (SimpleRewardSchema, rewards.SimpleReward),
    (AdaptiveRewardSchema, rewards.AdaptiveReward),
    (CNNSchema, models.CustomCNN),
    (MLPSchema, models.MLPExtractor),
    (ActorCriticSchema, models.ActorCritic),
    (MarketPipelineSchema, data.MarketPipeline),
    (FileMarketSchema, data.FileMarket),
]


def _plain(value: Any) -> Any:
    """Dataclasses, tuples and nested containers as plain dicts and lists."""
    if dataclasses.is_dataclass(value):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _differences(node: dict, kind: type, prefix: str = "") -> set[str]:
    """Keys of ``node`` (a composed option, unresolved) whose value is not ``kind``'s default."""
    found = set()
    for f in dataclasses.fields(kind):
        default = field_default(f)
        value = node.get(f.name, dataclasses.MISSING)
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            found |= _differences(value, type(default), f"{prefix}{f.name}.")
        elif _plain(value) != _plain(default):
            found.add(prefix + f.name)
    return found


def _option(group: str, name: str) -> dict:
    overrides = ["paths.output_dir=/tmp/adan-run", f"{group}={name}"]
    if group == "data" and name != "synthetic":
        overrides.append("data.path=bars.csv")
    if group == "env" and name == "gym":
        overrides = ["paths.output_dir=/tmp/adan-run", "experiment=cartpole"]
    with initialize_config_dir(CONF, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    node = OmegaConf.to_container(cfg[group], resolve=False)
    if group == "env" and name == "gym":  # the experiment sets its task on purpose
        node = {**node, **{"env_id": "CartPole-v1", "num_envs": 8}}
    return node


OPTIONS = [(g, n) for g, options in SCHEMAS.items() for n in options]


@pytest.mark.parametrize(("group", "name"), OPTIONS, ids=[f"{g}={n}" for g, n in OPTIONS])
def test_yaml_option_sets_only_what_it_means_to(group, name):
    kind = SCHEMAS[group][name]
    differs = _differences(_option(group, name), kind)
    assert differs == ON_PURPOSE.get((group, name), set()), (
        f"conf/{group}/{name}.yaml disagrees with {kind.__name__} on {sorted(differs)}: move the "
        "default into the dataclass, or list the key in ON_PURPOSE with the reason"
    )


@pytest.mark.parametrize(
    ("schema", "ctor"), CONSTRUCTORS, ids=[f"{c.__name__}" for _, c in CONSTRUCTORS]
)
def test_constructor_defaults_are_the_dataclass_defaults(schema, ctor):
    defaults = {f.name: field_default(f) for f in dataclasses.fields(schema)}
    checked = 0
    for name, param in inspect.signature(ctor).parameters.items():
        if name not in defaults or param.default is inspect.Parameter.empty:
            continue
        if (schema.__name__, name) in SAME_MEANING:
            continue
        checked += 1
        assert _plain(param.default) == _plain(defaults[name]), (
            f"{ctor.__qualname__}({name}={param.default!r}) but {schema.__name__}.{name} = "
            f"{defaults[name]!r}: code that builds it directly would train another setting"
        )
    assert checked > 0, f"{ctor.__qualname__} shares no defaulted parameter with {schema.__name__}"


def test_same_meaning_entries_are_still_needed():
    """An allow-list entry whose defaults now agree is dead: remove it."""
    ctor_of = {s.__name__: c for s, c in CONSTRUCTORS}
    for schema_name, key in SAME_MEANING:
        schema = {s.__name__: s for s, _ in CONSTRUCTORS}[schema_name]
        field = next(f for f in dataclasses.fields(schema) if f.name == key)
        param = inspect.signature(ctor_of[schema_name]).parameters[key]
        assert _plain(param.default) != _plain(field_default(field)), (schema_name, key)


def test_the_comparison_sees_a_disagreement():
    """The checker itself: a composed option with one changed value is reported by key."""
    node = _option("agent", "ppo")
    node["n_minibatches"] = 3
    node["seed"] = 0
    assert _differences(node, PPOConfig) == {"n_minibatches"}
