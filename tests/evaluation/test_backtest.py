from functools import partial

import gymnasium as gym
import numpy as np
import pytest
import torch

from adan.evaluation.backtest import PolicyActor, run_backtest
from adan.evaluation.baselines import buy_and_hold, run_baselines
from adan.evaluation.evaluator import TradingEvaluator
from adan.evaluation.metrics import performance
from adan.market import TradingConfig
from adan.market.spec import MarketSpec
from adan.models import ActorCritic, CustomCNN
from tests.market.markets import EVERY_BAR, make_market, random_walk


class ConstantPolicy(torch.nn.Module):
    """Always the same target weights (a stand-in with the ActorCritic call signature)."""

    def __init__(self, weights):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(weights, dtype=torch.float32), requires_grad=False)

    def forward(self, obs, deterministic=False):
        n = obs["market"].shape[0]
        return self.w.expand(n, -1), None, None

    def act(self, obs):
        return self(obs)[0]

    def to_env_action(self, action):
        return action.numpy()


def test_performance_by_hand():
    equity = np.array([100.0, 110.0, 99.0, 108.9])
    m = performance(equity, bars_per_year=4)
    rets = np.array([0.1, -0.1, 0.1])
    assert m["total_return"] == pytest.approx(0.089)
    assert m["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * 2)
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["cagr"] == pytest.approx(1.089 ** (4 / 3) - 1)


def test_flat_policy_keeps_its_cash_and_pays_nothing():
    data = random_walk(num_bars=120, num_assets=2)
    actor = PolicyActor(ConstantPolicy([0.0, 0.0]))
    res = run_backtest(
        actor, MarketSpec.of(data, trading=TradingConfig(), window=16, bars_per_year=8760)
    )
    assert res.equity.shape == (120 - 16, 1)  # start bar, then every bar to the end
    np.testing.assert_allclose(res.equity, 10_000.0)
    assert res.costs.sum() == 0 and res.turnover.sum() == 0 and not res.weights.any()
    assert res.timestamps[0] == data.timestamps[15] and res.timestamps[-1] == data.timestamps[-2]


def test_buy_and_hold_by_hand_and_equal_to_a_long_policy_on_one_asset():
    open_ = np.array([10.0, 10.0, 20.0, 22.0, 11.0, 12.0])
    close = np.array([10.0, 20.0, 22.0, 11.0, 12.0, 15.0])
    data = make_market(open_, close)
    trading = TradingConfig(fee_bps=10, half_spread_bps=5, slippage_bps=5, execution=EVERY_BAR)
    bh = buy_and_hold(MarketSpec.of(data, trading=trading, window=2)).equity[:, 0]
    units = 10_000 / 1.002 / open_[2]
    np.testing.assert_allclose(bh, [10_000, *(units * close[2:-1])])
    # one asset, always fully long: the agent's backtest is the same book
    res = run_backtest(
        PolicyActor(ConstantPolicy([1.0])),
        MarketSpec.of(data, trading=trading, window=2, bars_per_year=8760),
    )
    # the episode ends one bar early (the simulator keeps a spare bar); costs are paid on top of
    # a fully invested book, so the agent holds slightly more units than buy-and-hold's budget
    equity = res.equity[:, 0]
    assert len(equity) == len(bh) == len(close) - 2  # from bar 1's close to bar 4's
    np.testing.assert_allclose(equity, bh, rtol=1e-3)
    # 20 bps on the first fill of the whole 10,000 of equity, then tiny rebalancing trades
    paid = res.costs.sum() / 10_000
    assert paid == pytest.approx(20e-4, rel=0.01) and paid > 20e-4
    np.testing.assert_allclose(res.weights[1:, 0, 0], 1.0, atol=2e-3)
    # the buy-and-hold record covers the same bars and holds its units
    record = buy_and_hold(MarketSpec.of(data, trading=trading, window=2))
    assert record.costs.sum() == pytest.approx(10_000 * 0.002 / 1.002)
    assert record.turnover.sum() == pytest.approx(1 / 1.002)
    free = buy_and_hold(
        MarketSpec.of(
            data, trading=TradingConfig(fee_bps=0, half_spread_bps=0, slippage_bps=0), window=2
        )
    )
    assert free.costs.sum() == 0 and free.turnover.sum() == pytest.approx(1.0)


def test_evaluator_compares_agent_with_buy_and_hold_and_refuses_short_splits():
    data = random_walk(num_bars=200, num_assets=2)
    ev = TradingEvaluator(
        MarketSpec.of(data, trading=TradingConfig(), window=16, bars_per_year=8760)
    )
    out = ev.compare(ConstantPolicy([0.5, 0.5]))
    assert set(out) == {"agent", "buy_and_hold"}
    assert out["agent"]["bars"] == out["buy_and_hold"]["bars"] == 200 - 16 - 1
    with pytest.raises(ValueError, match="needs at least 18"):
        TradingEvaluator(
            MarketSpec.of(
                random_walk(num_bars=17), trading=TradingConfig(), window=16, bars_per_year=8760
            )
        )


def test_baselines_run_with_the_agents_costs_and_bars():
    data = random_walk(num_bars=400, num_assets=2)
    trading = TradingConfig(execution=EVERY_BAR)
    recs = run_baselines(
        ["buy_and_hold", "flat", "random", "ma_crossover"],
        MarketSpec.of(data, trading=trading, window=16, bars_per_year=8760),
    )
    steps = 400 - 16 - 1
    for rec in recs.values():
        assert len(rec.equity) == steps + 1 and len(rec.costs) == steps
    np.testing.assert_allclose(recs["flat"].equity, 10_000.0)
    assert recs["random"].runs == 5 and recs["random"].costs.sum(axis=0).min() > 0
    # the random runs differ from each other, and the same seed repeats them
    assert np.unique(recs["random"].equity[-1]).size == 5
    again = run_baselines(
        ["random"], MarketSpec.of(data, trading=trading, window=16, bars_per_year=8760)
    )["random"]
    np.testing.assert_array_equal(again.equity, recs["random"].equity)
    # MA crossover: long only, 1/A per asset when long, never before the slow average exists
    w = recs["ma_crossover"].weights[:, 0]
    assert w.min() >= 0 and w.max() <= 0.51  # 1/2 at the fill, drifting with the bar
    assert not w[: 96 - 15].any()


def test_ma_crossover_reads_only_past_closes():
    from adan.evaluation.baselines import MACrossoverActor

    close = random_walk(num_bars=300, num_assets=1).close
    changed = close.copy()
    changed[200:] *= 3.0
    for short in (False, True):
        a = MACrossoverActor(close, 5, 20, short)
        b = MACrossoverActor(changed, 5, 20, short)
        np.testing.assert_array_equal(a.side[:200], b.side[:200])


def test_a_backtest_is_not_cut_short_by_the_ruin_threshold():
    open_ = np.linspace(100, 10, 60)
    data = make_market(open_, open_ * 0.99)  # a crash
    res = run_backtest(
        PolicyActor(ConstantPolicy([1.0])),
        MarketSpec.of(
            data, trading=TradingConfig(ruin_threshold=0.5), window=4, bars_per_year=8760
        ),
    )
    assert (
        len(res.equity)
        == len(buy_and_hold(MarketSpec.of(data, trading=TradingConfig(), window=4)).equity)
        == 60 - 4
    )
    assert res.equity[-1, 0] < 0.2 * 10_000


def test_policy_actor_runs_the_actor_alone_on_the_native_convolution_for_few_rows():
    space = gym.spaces.Dict(
        {
            "market": gym.spaces.Box(-10, 10, (32, 2, 9), np.float32),
            "portfolio": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
        }
    )
    torch.manual_seed(0)
    cnn = partial(CustomCNN, channels=[16, 32], kernel_sizes=[5, 3])
    policy = ActorCritic(space, gym.spaces.Box(-1, 1, (2,), np.float32), cnn).eval()
    seen = []  # oneDNN enabled, at each actor call
    critic_calls = []
    policy.value_head.register_forward_hook(lambda *_: critic_calls.append(1))
    act = policy.act

    def recording_act(obs):
        seen.append(torch.backends.mkldnn.enabled)
        return act(obs)

    policy.act = recording_act
    rng = np.random.default_rng(1)
    for rows in (4, 16):
        obs = {
            "market": rng.normal(size=(rows, 32, 2, 9)).astype(np.float32),
            "portfolio": rng.normal(size=(rows, 4)).astype(np.float32),
        }
        actions = PolicyActor(policy)(obs, np.zeros(rows, dtype=np.int64))
        with torch.no_grad():
            mode, _, _ = policy({k: torch.as_tensor(v) for k, v in obs.items()}, True)
        np.testing.assert_allclose(actions, np.clip(mode.numpy(), -1, 1), rtol=1e-5, atol=1e-6)
    assert seen == [False, True]  # native convolution at 4 rows, oneDNN at 16
    assert len(critic_calls) == 2  # only the two reference forward passes ran the critic
    # trading live, the actor gets no bar index (trade.py): the same action
    np.testing.assert_array_equal(PolicyActor(policy)(obs, None), actions)
