"""A moved key keeps working for now: it lands on its new key with a warning naming it, a
checkpoint's saved config moves silently, and two spellings that disagree are refused."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from adan.config.deprecations import migrate, migrated
from adan.config.resume import check_resume
from adan.errors import ConfigError
from adan.tasks.registry import register_configs, validate_config

CONF = str(Path(__file__).resolve().parents[2] / "conf")
register_configs()


def composed(*overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_env_bars_per_year_moves_to_the_data_group_with_a_warning():
    cfg = composed("env.bars_per_year=8766")
    with pytest.warns(
        FutureWarning, match=r"env\.bars_per_year is deprecated.*data\.bars_per_year"
    ):
        assert migrate(cfg) == ["env.bars_per_year"]
    assert cfg.data.bars_per_year == 8766 and cfg.env.bars_per_year is None
    validate_config(cfg)


def test_nothing_moves_or_warns_when_the_old_key_is_unset():
    cfg = composed("data.bars_per_year=8766")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert migrate(cfg) == []
        assert migrate(composed("experiment=cartpole")) == []  # no data group at all
    assert cfg.data.bars_per_year == 8766


def test_both_spellings_must_agree():
    migrate(composed("env.bars_per_year=8766", "data.bars_per_year=8766"), warn=False)
    with pytest.raises(
        ConfigError, match=r"env\.bars_per_year=8766(\.0)? and data\.bars_per_year=8760"
    ):
        migrate(composed("env.bars_per_year=8766", "data.bars_per_year=8760"))


def test_a_checkpoint_config_moves_silently_and_resumes_with_the_new_key():
    saved = {"env": {"window": 32, "bars_per_year": 8766}, "data": {"clip": 10.0}, "seed": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        moved = migrated(saved)
    assert moved["data"]["bars_per_year"] == 8766 and moved["env"]["bars_per_year"] is None
    assert saved["env"]["bars_per_year"] == 8766  # the checkpoint's own dict is untouched
    # today's config leaves data.bars_per_year null (derived): the resumed run keeps 8766
    requested = {"env": {"window": 32, "bars_per_year": None}, "data": {"clip": 10.0}, "seed": 0}
    requested["data"]["bars_per_year"] = None
    check_resume(moved, requested, "x.ckpt")


def test_regime_detection_keys_move_from_trading_to_data():
    cfg = composed("trading.regime.method=hmm", "trading.regime.warmup=48")
    with pytest.warns(FutureWarning, match=r"trading\.regime\.method is deprecated.*data\.regime"):
        moved = migrate(cfg)
    assert moved == ["trading.regime.method", "trading.regime.warmup"]
    assert cfg.data.regime.method == "hmm" and cfg.data.regime.warmup == 48
    assert cfg.trading.regime.method is None and cfg.trading.regime.observe is False
    validate_config(cfg)
    # the new key set to something else than its default and the old key: refused
    with pytest.raises(ConfigError, match=r"trading\.regime\.warmup=48 and data\.regime\.warmup"):
        migrate(composed("trading.regime.warmup=48", "data.regime.warmup=10"))


def test_a_trading_config_built_in_code_names_the_new_key_and_checks_observe():
    from adan.market.config import TradingConfig

    with pytest.raises(ConfigError, match=r"trading\.regime\.method moved to data\.regime"):
        TradingConfig(regime={"method": "hmm"})
    with pytest.raises(ConfigError, match=r"trading\.regime\.observe must be a bool"):
        TradingConfig(regime={"observe": "yes"})
    assert TradingConfig(regime={"observe": True}).regime.observe is True


def test_an_old_checkpoint_config_with_trading_regime_resumes_under_data_regime():
    old_regime = {"observe": True, "method": "rules", "warmup": 96}
    saved = {"trading": {"regime": old_regime}, "data": {"clip": 10.0}}
    moved = migrated(saved)
    assert moved["data"]["regime"] == {"method": "rules", "warmup": 96}
    assert moved["trading"]["regime"] == {"observe": True, "method": None, "warmup": None}
    requested = {
        "trading": {"regime": {"observe": True, "method": None, "warmup": None}},
        "data": {"clip": 10.0, "regime": {"method": "rules", "warmup": 96}},
    }
    check_resume(moved, requested, "x.ckpt")
