"""Trading configs as the Hydra tree composes them (conf/trading/<name>.yaml)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from adan.market import TradingConfig
from adan.tasks.registry import register_configs

CONF = str(Path(__file__).resolve().parents[2] / "conf")


def trading_profile(name: str, *overrides: str) -> TradingConfig:
    """``trading=<name>`` (with ``trading.<key>=...`` overrides) built into a TradingConfig."""
    register_configs()
    with initialize_config_dir(CONF, version_base="1.3"):
        cfg = compose(
            "train", overrides=["paths.output_dir=/tmp/adan-run", f"trading={name}", *overrides]
        )
    return instantiate(cfg.trading)
