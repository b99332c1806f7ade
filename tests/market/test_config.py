import re

import pytest

from adan.market import TradingConfig


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fee_bps", -1, "trading.fee_bps must be >= 0, got -1"),
        ("half_spread_bps", -0.5, "trading.half_spread_bps must be >= 0"),
        ("slippage_bps", float("nan"), "trading.slippage_bps must be finite"),
        ("max_leverage", 0, "trading.max_leverage must be > 0"),
        ("initial_cash", -5, "trading.initial_cash must be > 0"),
        ("ruin_threshold", 1.0, "trading.ruin_threshold must be in [0, 1)"),
        ("action_mode", "hold", "trading.action_mode must be one of"),
        ("allow_short", "yes", "trading.allow_short must be a bool"),
        ("fee_bps", "5", "trading.fee_bps must be a number"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TradingConfig(**{field: value})


def test_defaults_and_int_coercion():
    cfg = TradingConfig(fee_bps=7, initial_cash=1000)
    assert isinstance(cfg.fee_bps, float) and cfg.fee_bps == 7.0
    assert cfg.cost_bps == 7.0 + 2.0 + 1.0
    assert TradingConfig().action_mode == "continuous"
