"""The Hydra tree composes, and bad values are refused before any work starts, naming the key."""

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ValidationError

from adan.data import DataError
from adan.errors import ConfigError
from adan.tasks.registry import register_configs, validate_config

CONF = str(Path(__file__).resolve().parents[2] / "conf")
register_configs()


def composed(*overrides):
    """The train config as Hydra composes it; the run directory (which only a running Hydra
    app knows) is set to a fixed path so that keys interpolating it resolve."""
    with initialize_config_dir(CONF, version_base="1.3"):
        return compose(
            "train",
            overrides=["paths.output_dir=/tmp/adan-run", *overrides],
            return_hydra_config=False,
        )


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model=cnn", "reward=adaptive"],
        ["model=mlp"],
        ["trainer=gpu"],
        ["trainer=ddp"],
        ["logger=tensorboard"],
        ["logger=wandb"],
        ["debug=fast"],
        ["experiment=cartpole"],
        ["experiment=cartpole", "debug=fast"],
        ["trading.action_mode=discrete", "trading.allow_short=false"],
    ],
)
def test_options_compose_and_validate(overrides):
    cfg = composed(*overrides)
    validate_config(cfg)
    assert cfg.agent._target_ == "adan.agents.PPO"


def test_cartpole_drops_the_market_groups():
    cfg = composed("experiment=cartpole")
    assert "data" not in cfg and "trading" not in cfg and cfg.env.env_id == "CartPole-v1"
    assert cfg.model.extractor._target_ == "adan.models.MLPExtractor"


def test_gpu_trainer_defaults_to_bf16_and_cpu_to_auto():
    assert composed("trainer=gpu").trainer.precision == "bf16-mixed"
    assert composed().trainer.precision == "auto"  # bf16-mixed where the CPU has bf16 units
    assert composed("trainer=ddp").trainer.precision == "auto"


@pytest.mark.parametrize(
    "override, key",
    [
        ("agent.clip_range=-1", "agent.clip_range"),
        ("agent.gamma=1.5", "agent.gamma"),
        ("trading.fee_bps=-2", "trading.fee_bps"),
        ("trading.action_mode=market", "trading.action_mode"),
        ("env.window=1", "env.window"),
        ("reward=adaptive reward.eta=2", "reward.eta"),
        ("model.extractor.dropout=1.5", "model.extractor.dropout"),
        ("model.extractor.kernel_sizes=[3]", "model.extractor.channels"),
        ("data.split.train=1.5", "data.split.train"),
        ("data.split.val=0.5", "data.split.train + val + test"),
        ("data.features=[rsi_14,rsi_x]", "data.features"),
        ("data.split.train_end=2020-03-01", "data.split.val_end"),
        ("data.split.train_end=2020-03-01 data.split.val_end=2020-01-01", "time order"),
        ("data.split.test=0", "data.split.test"),
        ("data=csv data.path=x.csv data.split.test=0", "data.split.test"),
        ("data=csv data.path=x.csv data.format=xlsx", "data.format"),
        ("data=csv data.path=x.csv +data.columns.volumes=q", "data.columns"),
        ("data=binance_sample data.n_jobs=0", "data.n_jobs"),
        ("agent.n_minibatches=100000", "agent.n_minibatches"),
    ],
)
def test_out_of_range_values_name_the_key(override, key):
    cfg = composed(*override.split())
    with pytest.raises(ConfigError, match=re.escape(key)):
        validate_config(cfg)


def test_file_data_options_compose_and_validate():
    for option in ("csv", "parquet", "binance_sample"):
        cfg = composed(f"data={option}", "data.path=x.csv")
        validate_config(cfg)
        assert cfg.data._target_ == "adan.data.FileMarket"
    assert composed("data=parquet", "data.path=x").data.format == "parquet"
    with pytest.raises(ConfigError, match="data.path must name a file"):
        validate_config(composed("data=csv"))
    with pytest.raises(DataError, match="data.cleaning.mode must be 'repair' or 'strict'"):
        validate_config(composed("data=csv", "data.path=x.csv", "data.cleaning.mode=fix"))


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigCompositionException) as err:
        composed("trading.fee_bps=abc")
    assert "trading.fee_bps" in str(err.value)
    assert isinstance(err.value.__cause__, ValidationError)


def test_misspelt_key_names_the_key():
    with pytest.raises(ConfigCompositionException) as err:
        composed("agent.clip_rnge=0.1")
    assert "agent.clip_rnge" in str(err.value)
    assert "not in 'PPOConfig'" in str(err.value.__cause__)
    # Hydra lets `+key=value` append to a typed node; validation still refuses it
    with pytest.raises(ConfigError, match=r"agent\.clip_rnge is not a setting of PPOConfig"):
        validate_config(composed("+agent.clip_rnge=0.1"))
    with pytest.raises(ConfigError, match=r"model\.extractor\.widht"):
        validate_config(composed("+model.extractor.widht=3"))


def test_unknown_group_option_lists_the_choices():
    with pytest.raises(MissingConfigException) as err:
        composed("model=transformer")
    assert (
        "model/transformer" in str(err.value)
        and "cnn" in str(err.value)
        and "mlp" in str(err.value)
    )
