"""What keeps a jittery policy from paying the spread every bar: the no-trade band, action
smoothing, the borrow of shorts, and a training market dearer than the scored one."""

import numpy as np
import pytest

from adan.errors import ConfigError
from adan.market import MarketSimulator, TradingConfig
from adan.market.execution import ExecutionConfig
from adan.market.spec import MarketSpec
from tests.market.markets import make_market, random_walk


def _sim(trading: TradingConfig, data=None, num_envs: int = 1, length: int = 60):
    data = random_walk(num_bars=200) if data is None else data
    spec = MarketSpec.of(data, trading, window=4, bars_per_year=8760)
    return MarketSimulator(spec, num_envs, episode_length=length, seed=0)


def _jitter(steps: int, assets: int, level: float = 0.6, size: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(3)
    return level + rng.uniform(-size, size, (steps, 1, assets))


@pytest.mark.parametrize("order_type", ["market", "limit"])
def test_a_target_inside_the_band_is_not_traded(order_type):
    band = ExecutionConfig(order_type=order_type, rebalance_band=0.2)
    sims = {
        "band": _sim(TradingConfig(execution=band)),
        "none": _sim(
            TradingConfig(execution=ExecutionConfig(order_type=order_type, rebalance_band=0.0))
        ),
    }
    traded = {name: 0 for name in sims}
    for actions in _jitter(40, 2):
        for name, sim in sims.items():
            _, _, _, _, info = sim.step(actions)
            traded[name] += int((info["fills"]["units"] != 0).sum())
    # the banded book traded into its position and then held it through the jitter
    assert traded["band"] <= 4
    assert traded["none"] >= 30
    held = sims["band"].portfolio.weights(sims["band"].data.close[sims["band"].t])
    assert np.all(np.abs(held - 0.6) < 0.2 + 0.05 + 0.05)  # band + jitter + drift


def test_a_move_past_the_band_and_a_flatten_always_trade():
    sim = _sim(TradingConfig(execution=ExecutionConfig(rebalance_band=0.3)))
    sim.step(np.array([[0.5, -0.5]]))
    assert np.all(sim.portfolio.units[0] * [1, -1] > 0)
    before = sim.portfolio.units.copy()
    _, _, _, _, info = sim.step(np.array([[0.7, -0.1]]))  # +0.2: held; +0.4: traded
    assert info["fills"]["units"][0, 0] == 0.0 and info["fills"]["units"][0, 1] != 0.0
    assert sim.portfolio.units[0, 0] == before[0, 0]
    _, _, _, _, info = sim.step(np.array([[0.0, -0.1]]))  # a flat target is never held back
    assert sim.portfolio.units[0, 0] == 0.0
    assert info["fills"]["units"][0, 1] == 0.0


def test_the_band_cuts_turnover_and_costs_of_a_jittery_policy():
    data = random_walk(num_bars=400)
    rng = np.random.default_rng(0)
    # a persistent view (changes every ~50 bars) plus bar-to-bar jitter
    view = np.repeat(rng.choice([-0.8, 0.8], (8, 1, 2)), 50, axis=0)
    actions = (view + rng.normal(0, 0.1, view.shape))[:390]
    totals = {}
    for band in (0.0, 0.25):
        sim = _sim(TradingConfig(execution=ExecutionConfig(rebalance_band=band)), data, length=390)
        cost = turnover = 0.0
        for a in actions:
            _, _, _, _, info = sim.step(a)
            cost += info["cost"][0]
            turnover += info["turnover"][0]
        totals[band] = (turnover, cost)
    assert totals[0.25][0] * 3 < totals[0.0][0]
    assert totals[0.25][1] * 3 < totals[0.0][1]


def test_shorts_pay_borrow_per_bar_and_longs_do_not():
    flat = [100.0] * 8
    trading = TradingConfig(fee_bps=0, half_spread_bps=0, slippage_bps=0, borrow_rate=0.876)
    spec = MarketSpec.of(make_market(flat, flat), trading, window=2, bars_per_year=8760)
    sim = MarketSimulator(spec, 2, episode_length=5, seed=0)
    _, _, _, _, info = sim.step(np.array([[-1.0], [1.0]]))
    # 10,000 short at 0.876 / 8760 = 1e-4 per bar: 1.0 of cash; the long pays nothing
    assert info["borrow"] == pytest.approx([1.0, 0.0])
    assert info["cost"] == pytest.approx([1.0, 0.0])
    assert sim.portfolio.equity == pytest.approx([9_999.0, 10_000.0])
    _, _, _, _, info = sim.step(np.array([[-1.0], [1.0]]))
    assert info["borrow"][0] == pytest.approx(0.9999, rel=1e-3)  # on what is still short


def test_long_only_and_zero_rate_pay_no_borrow():
    for trading in (TradingConfig(allow_short=False), TradingConfig(borrow_rate=0.0)):
        sim = _sim(trading)
        _, _, _, _, info = sim.step(np.array([[-1.0, -1.0]]))
        assert info["borrow"][0] == 0.0


def test_smoothing_blends_the_targets_and_survives_a_checkpoint():
    sim = _sim(TradingConfig(action_smoothing=0.75, fee_bps=0, half_spread_bps=0,
                             slippage_bps=0))  # fmt: skip
    sim.step(np.array([[1.0, 0.0]]))
    assert sim.desk.smoothed[0] == pytest.approx([0.25, 0.0])
    sim.step(np.array([[1.0, 0.0]]))
    assert sim.desk.smoothed[0] == pytest.approx([0.4375, 0.0])
    state = sim.get_state()
    other = _sim(TradingConfig(action_smoothing=0.75, fee_bps=0, half_spread_bps=0,
                               slippage_bps=0))  # fmt: skip
    other.set_state(state)
    a = np.array([[-1.0, 1.0]])
    np.testing.assert_array_equal(sim.step(a)[4]["equity"], other.step(a)[4]["equity"])
    np.testing.assert_array_equal(sim.desk.smoothed, other.desk.smoothed)
    sim.reset()
    assert not sim.desk.smoothed.any()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"action_smoothing": 1.0}, "trading.action_smoothing must be in \\[0, 1\\)"),
        ({"action_smoothing": 0.5, "action_mode": "discrete"}, "trading.action_smoothing"),
        ({"train_cost_multiplier": -1.0}, "trading.train_cost_multiplier must be >= 0"),
        ({"borrow_rate": -0.1}, "trading.borrow_rate must be >= 0"),
    ],
)
def test_bad_no_churn_settings_name_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        TradingConfig(**settings)


def test_training_costs_scale_every_rate():
    trading = TradingConfig(
        train_cost_multiplier=3.0,
        execution=ExecutionConfig(impact_coef=0.5, maker_fee_bps=1.0),
    )
    dear = trading.for_training()
    assert (dear.fee_bps, dear.half_spread_bps, dear.slippage_bps) == (15.0, 6.0, 3.0)
    assert dear.execution.maker_fee_bps == 3.0 and dear.execution.impact_coef == 1.5
    assert dear.borrow_rate == pytest.approx(3 * trading.borrow_rate)
    once = TradingConfig(train_cost_multiplier=1.0)
    assert once.for_training() == once
    # the default (null): 4x for continuous targets, 1x for discrete actions
    assert TradingConfig().for_training().fee_bps == 4 * TradingConfig().fee_bps
    discrete = TradingConfig(action_mode="discrete")
    assert discrete.training_cost_factor == 1.0 and discrete.for_training() == discrete
