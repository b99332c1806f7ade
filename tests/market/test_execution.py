"""Execution: estimated spread, square-root impact, participation cap with working orders and
their time-to-live, limit orders, and fills whose every cost reaches the reward."""

from dataclasses import replace

import numpy as np
import pytest

from adan.errors import ConfigError
from adan.market import ExecutionConfig, MarketSimulator, TradingConfig
from adan.market.execution import ExecutionModel, estimated_half_spread
from adan.market.spec import MarketSpec
from adan.rewards import SimpleReward
from tests.market.markets import Rewarded, make_market, random_walk


def bid_ask_bars(half_spread: float, bars: int = 3000, ticks: int = 60, seed: int = 0):
    """OHLC of trades that print at mid x (1 +/- half_spread), the mid a random walk."""
    rng = np.random.default_rng(seed)
    mid = np.exp(np.cumsum(rng.normal(0, 0.0004, bars * ticks)))
    trades = mid * (1 + half_spread * rng.choice([-1.0, 1.0], bars * ticks))
    trades = trades.reshape(bars, ticks)
    return trades.max(1)[:, None], trades.min(1)[:, None], trades[:, -1][:, None]


def test_estimated_spread_recovers_a_known_spread_and_is_causal():
    high, low, close = bid_ask_bars(0.001)
    est = estimated_half_spread(high, low, close, window=200)
    assert np.median(est[200:]) == pytest.approx(0.001, rel=0.3)
    wider = estimated_half_spread(*bid_ask_bars(0.003), window=200)
    assert np.median(wider[200:]) > 2 * np.median(est[200:])
    later = [x.copy() for x in (high, low, close)]
    for x in later:
        x[1500:] *= 1.7
    np.testing.assert_array_equal(estimated_half_spread(*later, window=200)[:1500], est[:1500])


def model(config: ExecutionConfig, data, **costs) -> ExecutionModel:
    fees = {"fee_bps": 5.0, "half_spread_bps": 2.0, "slippage_bps": 1.0} | costs
    return ExecutionModel(config, *fees.values(), data.open, data.high, data.low, data.close,
                          data.volume)  # fmt: skip


def test_impact_grows_with_the_square_root_of_order_size():
    data = random_walk(num_bars=200)
    ex = model(ExecutionConfig(impact_coef=1.0), data, fee_bps=0, half_spread_bps=0, slippage_bps=0)
    t = np.array([100])
    price = np.full((1, 2), 100.0)
    small = ex.costs(np.array([[1.0, 0.0]]), price, t).impact[0, 0]
    large = ex.costs(np.array([[4.0, 0.0]]), price, t).impact[0, 0]
    # cost per unit of notional doubles when the order is four times larger
    assert (large / 4) / small == pytest.approx(2.0)
    assert ex.costs(np.array([[-4.0, 0.0]]), price, t).impact[0, 0] == pytest.approx(large)


def test_fixed_and_estimated_spread_and_maker_taker_fees():
    data = random_walk(num_bars=200)
    units, price, t = np.array([[2.0, -1.0]]), np.full((1, 2), 50.0), np.array([120])
    taker = model(ExecutionConfig(), data).costs(units, price, t)
    np.testing.assert_allclose(taker.fee, [[100 * 5e-4, 50 * 5e-4]])
    np.testing.assert_allclose(taker.spread, [[100 * 2e-4, 50 * 2e-4]])
    est = model(ExecutionConfig(spread="estimated"), data).costs(units, price, t)
    assert (est.spread >= taker.spread - 1e-12).all()  # the fixed spread is the floor
    maker = model(ExecutionConfig(order_type="limit", maker_fee_bps=1.0), data).costs(
        units, price, t
    )
    np.testing.assert_allclose(maker.fee, [[100 * 1e-4, 50 * 1e-4]])
    assert (maker.spread == 0).all() and (maker.slippage == 0).all()


def flat_market(bars=40, volume=30.0, price=100.0):
    data = make_market(np.full(bars, price), np.full(bars, price))
    return replace(data, volume=np.full((bars, 1), volume))


def test_participation_cap_fills_in_part_and_works_the_rest_until_ttl():
    data = flat_market(volume=30.0)  # 10% of 30 units = 3 units a bar
    trading = TradingConfig(
        fee_bps=0, half_spread_bps=0, slippage_bps=0,
        execution=ExecutionConfig(participation=0.1, ttl=4),
    )  # fmt: skip
    sim = MarketSimulator(
        MarketSpec.of(data, trading=trading, window=4), 1, episode_length=30, seed=0
    )
    held = []
    for _ in range(6):  # wants 10_000 / 100 = 100 units; the same action every bar
        _, _, _, _, info = sim.step(np.array([[1.0]]))
        held.append(sim.portfolio.units[0, 0])
        assert info["fills"]["units"][0, 0] == pytest.approx(
            held[-1] - (held[-2] if len(held) > 1 else 0)
        )
    np.testing.assert_allclose(held, [3, 6, 9, 12, 12, 12])  # worked 4 bars, then cancelled
    assert sim.desk.orders.expired[0] == 1 and sim.desk.orders.partial[0] == 4
    sim.step(np.array([[0.5]]))  # a new target: a new order (selling down to 50 units)
    assert sim.portfolio.units[0, 0] == pytest.approx(15.0)


def test_without_a_cap_orders_fill_in_full_every_bar():
    data = flat_market(volume=30.0)
    sim = MarketSimulator(MarketSpec.of(data, window=4), 1, episode_length=30, seed=0)
    sim.step(np.array([[1.0]]))
    assert sim.portfolio.units[0, 0] * 100 == pytest.approx(sim.desk.equity_open[0])


def test_limit_orders_fill_only_when_the_bar_trades_through_at_the_maker_fee():
    # bar 4 (decision) closes at 100; bar 5 trades 101-103 (no fill) and closes at 102, where
    # the order is re-priced; bar 6 opens at 100.5, below that limit: it fills at the open.
    close = np.array([100.0] * 5 + [102.0, 100.0] + [100.0] * 20)
    open_ = np.array([100.0] * 5 + [101.0, 100.5] + [100.0] * 20)
    data = make_market(open_, close)
    high = np.maximum(open_, close) + 1.0
    low = np.maximum(open_, close) - 0.0
    low[6] = 99.0
    data = replace(data, high=high[:, None], low=low[:, None], volume=np.full((27, 1), 1e9))
    trading = TradingConfig(execution=ExecutionConfig(order_type="limit", maker_fee_bps=1.0, ttl=5))
    sim = MarketSimulator(
        MarketSpec.of(data, trading=trading, window=5), 1, episode_length=21, seed=0
    )
    assert sim.t[0] == 4
    _, _, _, _, info = sim.step(np.array([[1.0]]))
    assert sim.portfolio.units[0, 0] == 0.0  # bar 5 never traded down to 100
    _, _, _, _, info = sim.step(np.array([[1.0]]))  # same target: the order still rests
    fill = info["fills"]
    assert fill["units"][0, 0] > 0 and fill["price"][0, 0] == 100.5
    assert fill["fee"][0, 0] == pytest.approx(fill["units"][0, 0] * 100.5 * 1e-4)
    assert fill["spread"][0, 0] == 0.0


def test_every_cost_of_a_fill_is_recorded_and_paid_out_of_the_reward():
    data = replace(random_walk(num_bars=300), volume=np.full((300, 2), 1e4))
    base = TradingConfig(execution=ExecutionConfig(impact_coef=2.0, spread="estimated"))
    free = TradingConfig(fee_bps=0, half_spread_bps=0, slippage_bps=0, borrow_rate=0)
    actions = np.sin(np.arange(40))[:, None] * np.array([[1.0, -0.7]])
    runs = {}
    for name, trading in (("costly", base), ("free", free)):
        sim = Rewarded(
            MarketSimulator(
                MarketSpec.of(data, trading=trading, window=8), 1, episode_length=60, seed=1
            ),
            SimpleReward(),
        )
        rewards, infos = [], []
        for a in actions:
            _, r, _, _, info = sim.step(a[None])
            rewards.append(r[0])
            infos.append(info)
        runs[name] = (np.array(rewards), infos)
    for info in runs["costly"][1]:
        fills = info["fills"]
        parts = sum(fills[k].sum() for k in ("fee", "spread", "slippage", "impact"))
        assert parts + info["borrow"][0] == pytest.approx(info["cost"][0])
        assert (fills["impact"] > 0).any() or (fills["units"] == 0).all()
    assert all(i["cost"][0] == 0 for i in runs["free"][1])
    assert runs["costly"][0].sum() < runs["free"][0].sum()  # the reward pays the costs


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("participation", 0.0, "trading.execution.participation must be in (0, 1]"),
        ("order_type", "stop", "trading.execution.order_type must be one of"),
        ("ttl", 0, "trading.execution.ttl must be >= 1"),
        ("impact_coef", -1.0, "trading.execution.impact_coef must be >= 0"),
    ],
)
def test_bad_execution_settings_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ExecutionConfig(**{key: value})
