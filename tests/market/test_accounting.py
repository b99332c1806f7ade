"""Cost accounting, fill timing and the absence of look-ahead in the simulator core."""

import math

import numpy as np
import pytest

from adan.market import MarketSimulator, TradingConfig
from adan.market.spec import MarketSpec
from adan.rewards import SimpleReward
from tests.market.markets import EVERY_BAR, Rewarded, make_market, random_walk


def one_start_sim(open_, close, window=2, trading=None):
    """A single-env simulator whose data leaves exactly one possible start bar (window - 1)."""
    data = make_market(open_, close)
    episode_length = len(data) - window - 1
    spec = MarketSpec.of(data, trading or TradingConfig(execution=EVERY_BAR), window=window)
    return Rewarded(
        MarketSimulator(spec, 1, episode_length=episode_length), SimpleReward(scale=1.0)
    )


def test_two_step_hand_computed_costs_and_equity():
    sim = one_start_sim([100, 100, 110, 120, 100, 100], [100, 100, 115, 118, 100, 100])
    assert sim.t[0] == 1  # decisions at bar 1's close, fills at bar 2's open

    obs, reward, term, trunc, info = sim.step(np.array([[0.5]]))
    units = 0.5 * 10_000 / 110  # half of equity at the fill price open[2]
    assert sim.portfolio.units[0, 0] == pytest.approx(units, rel=1e-12)
    assert info["fee"][0] == pytest.approx(5_000 * 5e-4, rel=1e-12)  # 2.5
    assert info["spread"][0] == pytest.approx(5_000 * 2e-4, rel=1e-12)  # 1.0
    assert info["slippage"][0] == pytest.approx(5_000 * 1e-4, rel=1e-12)  # 0.5
    cash = 10_000 - 5_000 - 4.0
    equity1 = cash + units * 115  # marked at close[2]
    assert sim.portfolio.cash[0] == pytest.approx(cash, rel=1e-12)
    assert info["equity"][0] == pytest.approx(equity1, rel=1e-12)
    assert reward[0] == pytest.approx(math.log(equity1 / 10_000), rel=1e-6)
    assert info["turnover"][0] == pytest.approx(0.5, rel=1e-12)
    assert obs["portfolio"][0, 0] == pytest.approx(units * 115 / equity1, rel=1e-6)
    assert obs["portfolio"][0, 1] == pytest.approx(cash / equity1, rel=1e-6)
    assert not term[0] and not trunc[0]

    _, reward, _, _, info = sim.step(np.array([[0.5]]))
    equity_open = cash + units * 120  # rebalance at open[3]
    new_units = 0.5 * equity_open / 120
    notional = abs(new_units - units) * 120
    assert info["fee"][0] == pytest.approx(notional * 5e-4, rel=1e-9)
    assert info["spread"][0] == pytest.approx(notional * 2e-4, rel=1e-9)
    assert info["slippage"][0] == pytest.approx(notional * 1e-4, rel=1e-9)
    cash2 = cash + (units - new_units) * 120 - notional * 8e-4
    equity2 = cash2 + new_units * 118
    assert info["equity"][0] == pytest.approx(equity2, rel=1e-12)
    assert reward[0] == pytest.approx(math.log(equity2 / equity1), rel=1e-5)


def test_flat_policy_pays_nothing_and_keeps_equity(market):
    sim = Rewarded(MarketSimulator(MarketSpec.of(market, window=8), 4, episode_length=20, seed=0))
    for _ in range(45):  # crosses episode ends (the core keeps stepping; costs stay zero)
        done_before = sim.step_count >= 20
        _, reward, _, _, info = sim.step(np.zeros((4, 2)), reset_mask=done_before)
        assert np.all(reward == 0.0)
        assert np.all(info["equity"] == 10_000.0)
        for key in ("fee", "spread", "slippage", "turnover"):
            assert np.all(info[key] == 0.0)


def test_simple_reward_is_log_equity_change_net_of_costs(market):
    sim = Rewarded(
        MarketSimulator(
            MarketSpec.of(market, TradingConfig(execution=EVERY_BAR), window=8),
            8,
            episode_length=50,
            seed=1,
        ),
        SimpleReward(scale=1.0),
    )
    rng = np.random.default_rng(0)
    equity = sim.portfolio.equity.copy()
    for _ in range(30):
        _, reward, _, _, info = sim.step(rng.uniform(-1, 1, (8, 2)))
        paid = info["fee"] + info["spread"] + info["slippage"]
        assert np.all(paid > 0)
        np.testing.assert_allclose(reward, np.log(info["equity"] / equity), rtol=1e-5, atol=1e-9)
        np.testing.assert_array_equal(info["equity"], sim.portfolio.equity)
        equity = info["equity"]


def test_book_identity_equity_is_initial_plus_realised_plus_unrealised(market):
    sim = MarketSimulator(MarketSpec.of(market, window=8), 16, episode_length=100, seed=2)
    rng = np.random.default_rng(1)
    for _ in range(60):
        sim.step(rng.uniform(-1, 1, (16, 2)))
        pf = sim.portfolio
        prices = market.close[sim.t]
        np.testing.assert_allclose(
            pf.equity, 10_000 + pf.realised_pnl + pf.unrealised_pnl(prices), rtol=1e-10
        )


def test_round_trip_realises_price_move_minus_costs():
    sim = one_start_sim([100, 100, 100, 130, 130, 130], [100, 100, 110, 125, 130, 130], window=2)
    sim.step(np.array([[1.0]]))  # buy 100 units at 100
    _, _, _, _, info = sim.step(np.array([[0.0]]))  # sell them at open[3] = 130
    costs = (10_000 + 13_000) * 8e-4
    assert sim.portfolio.units[0, 0] == 0.0
    assert sim.portfolio.realised_pnl[0] == pytest.approx(100 * 30 - costs, rel=1e-12)
    assert info["equity"][0] == pytest.approx(10_000 + 3_000 - costs, rel=1e-12)


def test_fill_uses_next_open_not_current_close():
    # Close is 100 everywhere; bar 2 gaps down to open at 50 and closes at 100.
    sim = one_start_sim([100, 100, 50, 100, 100, 100], [100] * 6)
    _, _, _, _, info = sim.step(np.array([[1.0]]))
    assert sim.portfolio.units[0, 0] == pytest.approx(10_000 / 50)  # filled at open[2]
    # PnL from open[2] = 50 to close[2] = 100 on 200 units, minus costs on 10,000 notional.
    assert info["equity"][0] == pytest.approx(200 * 100 - 10_000 * 8e-4, rel=1e-12)


def test_gap_between_close_and_next_open_hits_the_held_position():
    sim = one_start_sim([100, 100, 100, 80, 80, 80], [100, 100, 100, 80, 80, 80])
    sim.step(np.array([[1.0]]))
    _, _, _, _, info = sim.step(np.array([[0.0]]))  # decided at close 100, sold at open 80
    costs = 10_000 * 8e-4 + 8_000 * 8e-4
    assert info["equity"][0] == pytest.approx(8_000 - costs, rel=1e-12)


@pytest.mark.parametrize("steps", [1, 7])
def test_no_look_ahead_observation_ignores_every_later_bar(steps):
    base = random_walk(num_bars=300, seed=3)
    sim = MarketSimulator(MarketSpec.of(base, window=16), 1, episode_length=50, seed=11)
    cut = int(sim.t[0]) + steps  # the env will be at bar `cut` after `steps` steps
    rng = np.random.default_rng(5)
    later = slice(cut + 1, None)
    features = base.features.copy()
    features[later] = rng.standard_normal(features[later].shape, dtype=np.float32) * 50
    open_, close = base.open.copy(), base.close.copy()
    open_[later] *= rng.uniform(0.2, 5.0, open_[later].shape)
    close[later] *= rng.uniform(0.2, 5.0, close[later].shape)
    altered = make_market(open_, close, features)
    sim2 = MarketSimulator(MarketSpec.of(altered, window=16), 1, episode_length=50, seed=11)

    actions = rng.uniform(-1, 1, (steps, 1, 2))
    for k in range(steps):
        obs1, o1, *_ = sim.step(actions[k])
        obs2, o2, *_ = sim2.step(actions[k])
        np.testing.assert_array_equal(o1.net_log_return, o2.net_log_return)
    assert sim.t[0] == sim2.t[0] == cut
    for key in ("market", "portfolio"):
        assert obs1[key].tobytes() == obs2[key].tobytes()
    # ... and the bar after `cut` really differs: the next step's fill moves.
    _, o1, *_ = sim.step(np.ones((1, 2)))
    _, o2, *_ = sim2.step(np.ones((1, 2)))
    assert o1.net_log_return[0] != o2.net_log_return[0]


def test_observation_window_is_the_last_window_bars():
    data = random_walk(num_bars=200, num_assets=2, num_features=3, seed=4)
    sim = MarketSimulator(MarketSpec.of(data, window=10), 5, episode_length=30, seed=0)
    obs = sim.observe()
    for i, t in enumerate(sim.t):
        np.testing.assert_array_equal(obs["market"][i], data.features[t - 9 : t + 1])
    obs, *_ = sim.step(np.zeros((5, 2)))
    for i, t in enumerate(sim.t):
        np.testing.assert_array_equal(obs["market"][i], data.features[t - 9 : t + 1])
    assert obs["market"].dtype == np.float32 and obs["portfolio"].dtype == np.float32
    assert obs["portfolio"].shape == (5, 2 + 2)  # weights, cash fraction, drawdown
    np.testing.assert_allclose(obs["portfolio"][:, 2], 1.0)  # flat book: all cash


def test_rejects_data_too_short_and_bad_prices():
    with pytest.raises(ValueError, match="at least 75"):
        MarketSimulator(MarketSpec.of(random_walk(num_bars=74), window=10), 1, episode_length=64)
    data = random_walk(num_bars=100)
    data.close[5, 0] = -1.0
    with pytest.raises(ValueError, match="close must be finite and > 0"):
        MarketSimulator(MarketSpec.of(data, window=10), 1, episode_length=20)


def test_costs_scale_with_config():
    cfg = TradingConfig(fee_bps=10, half_spread_bps=0, slippage_bps=0)
    sim = one_start_sim([100] * 6, [100] * 6, trading=cfg)
    _, _, _, _, info = sim.step(np.array([[1.0]]))
    assert info["fee"][0] == pytest.approx(10.0)
    assert info["spread"][0] == 0.0 and info["slippage"][0] == 0.0


def test_closing_positions_books_exactly_as_rebalancing_them_to_zero():
    from adan.market import Portfolio

    rng = np.random.default_rng(4)
    first, added = rng.normal(0, 5, (6, 3)), rng.normal(0, 2, (6, 3))
    books = [Portfolio(6, 3, 1000.0) for _ in range(2)]
    for pf in books:  # open, then add to or reduce the positions
        pf.rebalance(first, np.full((6, 3), 100.0), np.full(6, 1.0))
        pf.rebalance(pf.units + added, np.full((6, 3), 101.0), np.zeros(6))
    mask = np.random.default_rng(6).random((6, 3)) < 0.5
    prices, costs = np.random.default_rng(7).uniform(90, 110, (6, 3)), np.full(6, 0.5)
    books[0].close(mask, prices, costs)
    books[1].rebalance(np.where(mask, 0.0, books[1].units), prices, costs)
    for name, value in books[0].state_dict().items():
        np.testing.assert_allclose(value, books[1].state_dict()[name], rtol=1e-12, err_msg=name)
    assert (books[0].units[mask] == 0).all() and (books[0].avg_price[mask] == 0).all()
