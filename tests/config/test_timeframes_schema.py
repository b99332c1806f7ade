"""data.timeframes and env.validate_every_step in the config tree."""

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from adan.errors import ConfigError
from adan.tasks.registry import register_configs, validate_config

CONF = str(Path(__file__).resolve().parents[2] / "conf")
register_configs()


def composed(*overrides):
    with initialize_config_dir(CONF, version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=False)


TF = "data.timeframes=[{rule: 4h, features: [log_return, rsi_14], window: 8}]"


def test_timeframes_compose_validate_and_default_to_none():
    assert list(composed().data.timeframes) == []
    cfg = composed(TF)
    validate_config(cfg)
    assert cfg.data.timeframes[0].rule == "4h" and cfg.data.timeframes[0].window == 8


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.timeframes=[{rule: 1W, features: [log_return]}]", "data.timeframes.rule"),
        (
            "data.timeframes=[{rule: 4h, features: [log_return], window: 1}]",
            "data.timeframes.window",
        ),
        ("data.timeframes=[{rule: 4h, features: [nope]}]", "data.timeframes.features"),
        ("data.timeframes=[{rule: 4h, features: []}]", "data.timeframes.features"),
        (
            "data.timeframes=[{rule: 4h, features: [log_return]},{rule: 4h, features: [rsi_14]}]",
            "data.timeframes",
        ),
    ],
)
def test_bad_timeframes_name_the_key(override, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        validate_config(composed(override))


@pytest.mark.parametrize("overrides", [[], ["experiment=cartpole"]])
def test_debug_fast_checks_every_observation(overrides):
    assert composed(*overrides).env.validate_every_step is False
    cfg = composed(*overrides, "debug=fast")
    validate_config(cfg)
    assert cfg.env.validate_every_step is True
