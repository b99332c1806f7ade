"""Episode boundaries, risk limits, per-episode statistics, seeding and checkpointing."""

import numpy as np
import pytest

from adan.market import BatchRNG, MarketSimulator, TradingConfig, target_weights
from adan.market.spec import MarketSpec
from adan.rewards import AdaptiveReward
from tests.market.markets import EVERY_BAR, Rewarded, make_market, random_walk


def test_ruin_terminates_and_reports_the_episode():
    close = np.array([100.0] * 4 + [40.0] * 10)
    sim = MarketSimulator(MarketSpec.of(make_market(close, close), window=3), 1, episode_length=10)
    sim.t[:] = 2  # bar 3 still at 100: buy there, then the price falls 60 % at bar 4
    _, _, term, trunc, info = sim.step(np.array([[1.0]]))
    assert not term[0] and "episode" not in info
    _, _, term, trunc, info = sim.step(np.array([[1.0]]))
    assert term[0] and not trunc[0]
    assert info["equity"][0] < 0.5 * 10_000
    assert info["_episode"][0] and info["episode"]["l"][0] == 2
    assert info["trading"]["max_drawdown"][0] == pytest.approx(0.6, abs=0.01)


def test_no_ruin_with_threshold_zero_until_equity_is_gone():
    close = np.array([100.0] * 4 + [40.0] * 10)
    cfg = TradingConfig(ruin_threshold=0.0)
    sim = MarketSimulator(
        MarketSpec.of(make_market(close, close), trading=cfg, window=3), 1, episode_length=10
    )
    sim.t[:] = 2
    sim.step(np.array([[1.0]]))
    _, _, term, _, _ = sim.step(np.array([[1.0]]))
    assert not term[0]


def test_truncation_exactly_at_episode_length(market):
    sim = MarketSimulator(MarketSpec.of(market, window=8), 3, episode_length=12, seed=0)
    for k in range(1, 13):
        _, _, term, trunc, info = sim.step(np.zeros((3, 2)))
        assert not term.any()
        assert trunc.all() == (k == 12) and trunc.any() == (k == 12)
    assert info["_episode"].all() and np.all(info["episode"]["l"] == 12)
    assert np.all(sim.t - sim.start == 12)


def test_episode_starts_cover_the_allowed_range_reproducibly(market):
    sim = MarketSimulator(MarketSpec.of(market, window=30), 2000, episode_length=300, seed=9)
    starts = sim.t.copy()
    assert starts.min() == 29 and starts.max() == len(market) - 300 - 2
    again = MarketSimulator(MarketSpec.of(market, window=30), 2000, episode_length=300, seed=9)
    np.testing.assert_array_equal(starts, again.t)
    other = MarketSimulator(MarketSpec.of(market, window=30), 2000, episode_length=300, seed=10)
    assert not np.array_equal(starts, other.t)


def test_env_i_of_a_batch_seeded_s_equals_a_lone_env_seeded_s_plus_i(market):
    batch = MarketSimulator(MarketSpec.of(market, window=8), 5, episode_length=20, seed=100)
    for i in range(5):
        lone = MarketSimulator(MarketSpec.of(market, window=8), 1, episode_length=20, seed=100 + i)
        assert lone.t[0] == batch.t[i]
    batch.reset(seed=7)
    lone = MarketSimulator(MarketSpec.of(market, window=8), 1, episode_length=20, seed=0)
    lone.reset(seed=[7 + 3])
    assert lone.t[0] == batch.t[3]


def test_batch_rng_subset_draws_match_full_draws():
    full, part = BatchRNG(6, seed=3), BatchRNG(6, seed=3)
    a = full.integers(np.arange(6), 0, 1000)
    b = part.integers(np.array([4]), 0, 1000)
    assert b[0] == a[4]
    state = full.state_dict()
    x = full.integers(np.arange(6), 0, 1 << 40)
    full.load_state_dict(state)
    np.testing.assert_array_equal(x, full.integers(np.arange(6), 0, 1 << 40))


def test_trading_summary_matches_the_equity_path(market):
    sim = Rewarded(
        MarketSimulator(
            MarketSpec.of(market, TradingConfig(execution=EVERY_BAR), window=8, bars_per_year=252),
            4,
            episode_length=40,
            seed=5,
        )
    )
    rng = np.random.default_rng(2)
    equity = [sim.portfolio.equity.copy()]
    costs, rewards = 0.0, 0.0
    for _ in range(40):
        _, reward, _, _, info = sim.step(rng.uniform(-1, 1, (4, 2)))
        equity.append(info["equity"])
        costs = costs + info["fee"] + info["spread"] + info["slippage"] + info["borrow"]
        rewards = rewards + reward.astype(np.float64)
    equity = np.array(equity)
    returns = equity[1:] / equity[:-1] - 1
    tr = info["trading"]
    assert info["_trading"].all()
    np.testing.assert_allclose(tr["log_return"], np.log(equity[-1] / 10_000), rtol=1e-10)
    sharpe = returns.mean(0) / returns.std(0, ddof=1) * np.sqrt(252)
    np.testing.assert_allclose(tr["sharpe"], sharpe, rtol=1e-6)
    np.testing.assert_allclose(
        tr["max_drawdown"], (1 - equity / np.maximum.accumulate(equity)).max(0)
    )
    np.testing.assert_allclose(tr["win_rate"], (returns > 0).mean(0))  # always holding
    np.testing.assert_allclose(tr["costs"], costs / 10_000)
    np.testing.assert_array_equal(tr["trades"], 80)  # 2 assets, a fill every bar
    np.testing.assert_allclose(info["episode"]["r"], rewards, rtol=1e-6)


def test_win_rate_and_trades_count_only_bars_with_a_position(market):
    sim = MarketSimulator(MarketSpec.of(market, window=8), 1, episode_length=10, seed=5)
    for _ in range(10):
        _, _, _, _, info = sim.step(np.zeros((1, 2)))
    assert info["trading"]["win_rate"][0] == 0.0 and info["trading"]["trades"][0] == 0
    assert info["trading"]["sharpe"][0] == 0.0  # zero variance guarded


@pytest.mark.parametrize("mode", ["continuous", "discrete"])
def test_shorting_disabled_never_holds_negative_units(market, mode):
    cfg = TradingConfig(allow_short=False, action_mode=mode)
    sim = MarketSimulator(
        MarketSpec.of(market, trading=cfg, window=8), 4, episode_length=30, seed=0
    )
    action = np.full((4, 2), -1.0) if mode == "continuous" else np.zeros((4, 2), dtype=np.int64)
    sim.step(action)
    assert np.all(sim.portfolio.units == 0.0)


def test_target_weights_clip_shorts_and_cap_gross_leverage():
    long_only = TradingConfig(allow_short=False)
    np.testing.assert_array_equal(target_weights(np.array([[-0.7, 0.3]]), long_only), [[0.0, 0.3]])
    lev = TradingConfig(max_leverage=2.0)
    w = target_weights(np.array([[1.0, -1.0, 0.5], [0.2, -0.3, 0.1], [3.0, 0.0, 0.0]]), lev)
    np.testing.assert_allclose(w[0], np.array([1.0, -1.0, 0.5]) * 2 * 2 / 5)  # scaled to 2
    np.testing.assert_allclose(w[1], [0.4, -0.6, 0.2])  # under the cap: untouched
    np.testing.assert_allclose(w[2], [2.0, 0.0, 0.0])  # clipped to 1 then x2
    assert np.all(np.abs(w).sum(1) <= 2.0 + 1e-12)


def test_discrete_actions_map_to_short_flat_long_and_equal_weight():
    cfg = TradingConfig(action_mode="discrete")
    np.testing.assert_allclose(target_weights(np.array([[0, 1, 2]]), cfg), [[-1 / 2, 0, 1 / 2]])
    np.testing.assert_allclose(target_weights(np.array([[2, 1]]), cfg), [[1.0, 0.0]])
    long_only = TradingConfig(action_mode="discrete", allow_short=False)
    np.testing.assert_allclose(target_weights(np.array([[0, 1]]), long_only), [[0.0, 1.0]])


def test_nan_actions_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        target_weights(np.array([[np.nan, 0.0]]), TradingConfig())


def test_leverage_cap_respected_in_the_book(market):
    cfg = TradingConfig(max_leverage=1.5, execution=EVERY_BAR)
    sim = MarketSimulator(
        MarketSpec.of(market, trading=cfg, window=8), 8, episode_length=50, seed=3
    )
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, _, _, _, info = sim.step(rng.uniform(-1, 1, (8, 2)) * 3)
        fill = market.open[sim.t]
        paid = info["fee"] + info["spread"] + info["slippage"] + info["borrow"]
        # equity at the open before the fill = book after the fill (at fill prices) + costs
        # (the bar's borrow is paid out of the same cash at its close)
        equity_open = sim.portfolio.cash + (sim.portfolio.units * fill).sum(1) + paid
        gross = np.abs(sim.portfolio.units * fill).sum(1)
        ratio = gross / equity_open
        assert np.all(ratio <= 1.5 * (1 + 1e-9))
        assert np.isclose(ratio, 1.5, rtol=1e-9).sum() >= 4  # most rows hit the cap


def run(sim, actions, reset_masks):
    out = []
    for a, m in zip(actions, reset_masks, strict=True):
        obs, r, te, tr, info = sim.step(a, reset_mask=m)
        out.append((obs["market"], obs["portfolio"], r, te, tr, info["equity"]))
    return out


def test_get_state_set_state_continues_bit_exactly():
    data = random_walk(num_bars=300, seed=7)

    def make():
        return Rewarded(
            MarketSimulator(MarketSpec.of(data, window=8), 6, episode_length=15, seed=4),
            AdaptiveReward(),
        )

    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (70, 6, 2))
    sim = make()
    done = np.zeros(6, dtype=bool)
    for a in actions[:23]:
        _, _, te, tr, _ = sim.step(a, reset_mask=done)
        done = te | tr
    state = sim.get_state()
    masks = []
    expected = []
    for a in actions[23:]:
        obs, r, te, tr, info = sim.step(a, reset_mask=done)
        masks.append(done)
        expected.append((obs["market"], obs["portfolio"], r, te, tr, info["equity"]))
        done = te | tr
    assert any(m.any() for m in masks)  # the continuation crosses episode boundaries

    restored = make()
    restored.step(actions[0])  # diverge first: set_state must overwrite everything
    restored.set_state(state)
    got = run(restored, actions[23:], masks)
    for exp, act in zip(expected, got, strict=True):
        for x, y in zip(exp, act, strict=True):
            np.testing.assert_array_equal(x, y)
