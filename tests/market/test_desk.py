"""The trading desk inside the simulator: stops with gap fills, the kill switch, the behaviour
engine and the regime reaching orders, observation and reward, profiles as sub-batches, and
exact checkpoint/resume with every stage on."""

from dataclasses import replace

import numpy as np
import pytest

from adan.data import SyntheticMarket
from adan.data.bars import MarketData
from adan.market import MarketSimulator, TradingConfig
from adan.market.behaviour import BehaviourConfig
from adan.market.risk import RiskConfig
from adan.market.spec import MarketSpec
from adan.market.stops import StopsConfig
from tests.market.markets import Rewarded, make_market
from tests.market.profiles import trading_profile

FREE = {"fee_bps": 0.0, "half_spread_bps": 0.0, "slippage_bps": 0.0}


def scripted(open_, close, low=None, high=None) -> MarketData:
    data = make_market(open_, close)
    lo = data.low if low is None else np.asarray(low, dtype=float)[:, None]
    hi = data.high if high is None else np.asarray(high, dtype=float)[:, None]
    return replace(data, low=lo, high=hi, volume=np.full_like(data.close, 1e9))


def simulator(data, trading, window=4, envs=1, **kw) -> MarketSimulator:
    length = len(data) - window - 1  # one episode over all bars, starting at bar window - 1
    return MarketSimulator(
        MarketSpec.of(data, trading=trading, window=window),
        envs,
        episode_length=length,
        seed=0,
        **kw,
    )


@pytest.mark.parametrize(
    ("open7", "low7", "exit_price"),
    [(99.0, 94.0, 95.0), (90.0, 89.0, 90.0)],
    ids=["touches-the-stop", "gaps-through-it"],
)
def test_a_stop_fills_at_its_level_or_at_the_open_of_a_gap(open7, low7, exit_price):
    n = 20
    open_, close = np.full(n, 100.0), np.full(n, 100.0)
    open_[7], close[7] = open7, 96.0
    low = np.minimum(open_, close) - 0.5
    low[7] = low7
    trading = TradingConfig(fee_bps=10.0, half_spread_bps=0.0, slippage_bps=0.0,
                            stops=StopsConfig(mode="pct", stop_loss=0.05))  # fmt: skip
    sim = simulator(scripted(open_, close, low=low, high=np.maximum(open_, close) + 0.5), trading)
    assert sim.t[0] == 3
    for _ in range(3):  # buys at bar 4's open (100), stop at 95; holds through bar 6
        _, _, _, _, info = sim.step(np.array([[1.0]]))
        assert info["stop_exits"][0] == 0
    units = sim.portfolio.units[0, 0]
    cash = sim.portfolio.cash[0]
    _, _, _, _, info = sim.step(np.array([[1.0]]))  # bar 7: the stop is hit
    assert info["stop_exits"][0] == 1 and sim.portfolio.units[0, 0] == 0.0
    fee = units * exit_price * 10e-4
    assert sim.portfolio.cash[0] == pytest.approx(cash + units * exit_price - fee)
    assert info["cost"][0] == pytest.approx(fee)


def test_kill_switch_flattens_and_keeps_the_account_flat_for_the_episode():
    close = np.r_[np.full(6, 100.0), np.linspace(100, 80, 6), np.linspace(80, 120, 20)]
    trading = TradingConfig(**FREE, risk=RiskConfig(max_drawdown=0.1))
    sim = simulator(scripted(close, close), trading)
    clipped = []
    for _ in range(len(close) - 6):
        _, _, _, _, info = sim.step(np.array([[1.0]]))
        clipped.append(bool(info["risk_clipped"][0]))
        if sim.desk.risk.killed[0]:
            break
    assert sim.portfolio.drawdown[0] >= 0.1
    for _ in range(10):  # the price recovers; the agent still wants to be long
        _, _, _, _, info = sim.step(np.array([[1.0]]))
        assert sim.portfolio.units[0, 0] == 0.0 and info["risk_clipped"][0]
    assert clipped[-1] and not any(clipped[:-1])  # flattened on the step the switch fired
    assert sim.stats.risk_clips[0] == 11
    sim.reset()
    sim.step(np.array([[1.0]]))
    assert sim.portfolio.units[0, 0] > 0  # a new episode trades again


def synthetic(n_bars=1500, seed=2) -> MarketData:
    from adan.data import MarketPipeline
    from adan.data.features import DEFAULT_FEATURES

    bars = SyntheticMarket(n_assets=2, n_bars=n_bars, seed=seed).generate()
    split = {"train": 0.9, "val": 0.05, "test": 0.05}
    return MarketPipeline(bars, list(DEFAULT_FEATURES), split).build()["train"]


def test_behaviour_engine_scales_orders_and_the_regime_reaches_obs_and_reward():
    data = synthetic()
    trading = TradingConfig(**FREE, dbe=BehaviourConfig(enabled=True, smoothing=1.0),
                            regime={"observe": True})  # fmt: skip
    sim = MarketSimulator(
        MarketSpec.of(data, trading=trading, window=16), 8, episode_length=200, seed=4
    )
    obs = sim.observe()
    table = {name: p for name, p in trading.dbe.regimes.items()}
    sizes = []
    for _ in range(100):
        regime = sim.desk.regimes[sim.t]
        np.testing.assert_array_equal(obs["regime"], np.eye(4, dtype=np.float32)[regime])
        size = sim.desk.dbe.params["size"].copy()
        weights = sim.desk.decide(np.full((8, 2), 0.5), sim.t, sim.portfolio)
        np.testing.assert_allclose(weights, 0.5 * size[:, None] * np.ones((1, 2)))
        obs, _, _, _, info = sim.step(np.full((8, 2), 0.5))
        np.testing.assert_array_equal(info["regime"], sim.desk.regimes[sim.t])
        np.testing.assert_array_equal(info["dbe"]["size"], sim.desk.dbe.params["size"])
        sizes.append(size)
    sizes = np.array(sizes)
    assert len(np.unique(np.round(sizes, 6))) > 1  # it moved with the regimes
    names = ("bull", "bear", "sideways", "volatile")
    allowed = {table[names[r]].size for r in range(4)}
    assert sizes.max() <= max(allowed) + 1e-9


def test_profiles_run_as_sub_batches_identical_to_separate_runs():
    data = synthetic(n_bars=2500)
    multi = trading_profile("multi_profile")
    assert [name for name, _ in multi.profile_configs()] == [
        "conservative",
        "moderate",
        "aggressive",
    ]
    sim = Rewarded(
        MarketSimulator(
            MarketSpec.of(data, trading=multi, window=16), 6, episode_length=120, seed=10
        )
    )
    np.testing.assert_array_equal(sim.profile, [0, 0, 1, 1, 2, 2])
    singles = [
        Rewarded(
            MarketSimulator(
                MarketSpec.of(data, trading=multi.only(name), window=16),
                2,
                episode_length=120,
                seed=10 + 2 * i,
            )
        )  # fmt: skip
        for i, name in enumerate(sim.profile_names)
    ]
    rng = np.random.default_rng(0)
    for _ in range(150):  # past the first episode end: resets included
        actions = rng.uniform(-1, 1, (6, 2))
        _, reward, term, trunc, _ = sim.step(actions)
        for i, single in enumerate(singles):
            _, r, te, tr, _ = single.step(actions[2 * i : 2 * i + 2])
            rows = slice(2 * i, 2 * i + 2)
            np.testing.assert_array_equal(sim.portfolio.equity[rows], single.portfolio.equity)
            np.testing.assert_array_equal(reward[rows], r)
            if te.any() or tr.any():
                single.reset(te | tr)
        if (term | trunc).any():
            sim.reset(term | trunc)
    stats = sim.stats
    assert stats.trades.sum() > 0


def test_checkpoint_resume_is_exact_with_every_stage_on():
    data = synthetic()
    trading = trading_profile("multi_profile")
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (80, 6, 2))
    sim = Rewarded(
        MarketSimulator(
            MarketSpec.of(data, trading=trading, window=16), 6, episode_length=50, seed=3
        )
    )
    for a in actions[:30]:
        sim.step(a)
    state = sim.get_state()
    expected = [sim.step(a) for a in actions[30:]]
    other = Rewarded(
        MarketSimulator(
            MarketSpec.of(data, trading=trading, window=16), 6, episode_length=50, seed=99
        )
    )
    other.set_state(state)
    got = [other.step(a) for a in actions[30:]]
    for (obs, reward, *_, info), (obs2, reward2, *_, info2) in zip(expected, got, strict=True):
        np.testing.assert_array_equal(reward, reward2)
        for key in obs:
            np.testing.assert_array_equal(obs[key], obs2[key], err_msg=key)
        for key in ("cost", "stop_exits", "risk_clipped", "regime"):
            np.testing.assert_array_equal(info[key], info2[key], err_msg=key)
        for key in info["dbe"]:
            np.testing.assert_array_equal(info["dbe"][key], info2["dbe"][key], err_msg=key)

    def flat(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from flat(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    mine, theirs = dict(flat(sim.get_state())), dict(flat(other.get_state()))
    assert mine.keys() == theirs.keys()
    for key, value in mine.items():
        if key != "stats.elapsed_before":  # wall-clock seconds
            np.testing.assert_array_equal(value, theirs[key], err_msg=key)


def test_hedged_book_has_no_beta_to_the_hedge_asset():
    bars = SyntheticMarket(n_assets=2, n_bars=3000, seed=7, correlation=0.8).generate()
    from adan.data import MarketPipeline

    data = MarketPipeline(bars, ["log_return"], {"train": 0.96, "val": 0.02, "test": 0.02})
    data = data.build()["train"]
    betas = {}
    for hedge in (None, "SYN1"):
        risk = RiskConfig(hedge={"asset": hedge, "window": 168})
        trading = TradingConfig(**FREE, max_leverage=2.0, risk=risk)
        sim = simulator(data, trading, window=200)
        equity = [sim.portfolio.equity[0]]
        for _ in range(len(data) - 202):
            _, _, _, _, info = sim.step(np.array([[0.5, 0.0]]))  # long SYN0 only
            equity.append(info["equity"][0])
        book = np.diff(np.log(equity))
        t0 = int(sim.start[0])
        hedge_ret = np.diff(np.log(data.close[t0 : t0 + len(equity), 1]))
        betas[hedge] = np.cov(book, hedge_ret)[0, 1] / np.var(hedge_ret, ddof=1)
        if hedge:
            assert (sim.portfolio.units[0, 1] < 0).all()  # the hedge is short
    assert abs(betas["SYN1"]) < 0.1 < betas[None]


@pytest.mark.parametrize("mode", ["pct", "atr"])
def test_risk_per_trade_sizes_from_the_stop_the_desk_will_set(mode):
    from adan.market.execution import ExecutionConfig
    from adan.market.sizing import SizingConfig
    from adan.market.stops import average_true_range

    data = synthetic()
    stops = StopsConfig(mode=mode, stop_loss=0.04 if mode == "pct" else 2.0, atr_window=14)
    trading = TradingConfig(
        **FREE,
        max_leverage=5.0,
        stops=stops,
        sizing=SizingConfig(mode="risk_per_trade", risk_per_trade=0.01),
        execution=ExecutionConfig(rebalance_band=0.0),  # the stop is set at the fill
    )
    sim = MarketSimulator(
        MarketSpec.of(data, trading=trading, window=16), 4, episode_length=100, seed=0
    )
    t = sim.t.copy()
    weights = sim.desk.decide(np.full((4, 2), 0.5), t, sim.portfolio)
    if mode == "pct":
        distance = np.full((4, 2), 0.04)
    else:
        atr = average_true_range(data.high, data.low, data.close, 14)
        distance = 2.0 * atr[t] / data.close[t]
    np.testing.assert_allclose(weights * distance, 0.5 * 0.01, rtol=1e-12)
    sim.step(np.full((4, 2), 0.5))  # the stop it then sets is at that distance from the fill
    fill = sim.portfolio.avg_price
    np.testing.assert_allclose((fill - sim.desk.stops.stop) / fill, distance, rtol=0.05)


def test_kill_switch_flattens_through_a_binding_participation_cap():
    from adan.market.execution import ExecutionConfig

    close = np.r_[np.full(6, 100.0), np.linspace(100, 60, 15), np.full(30, 60.0)]
    data = replace(scripted(close, close), volume=np.full((len(close), 1), 200.0))
    trading = TradingConfig(**FREE, risk=RiskConfig(max_drawdown=0.1),
                            execution=ExecutionConfig(participation=0.1, ttl=2,
                                                      rebalance_band=0.0))  # fmt: skip
    sim = simulator(data, trading)
    bought = []
    while not sim.desk.risk.killed[0]:
        sim.step(np.array([[1.0 if len(bought) % 2 else 0.99]]))  # new targets: new orders
        bought.append(sim.portfolio.units[0, 0])
    held = [bought[-2]]  # before the step on which the switch fired
    for _ in range(20):  # the agent asks for nothing: only the forced flatten trades
        sim.step(np.array([[0.0]]))
        held.append(sim.portfolio.units[0, 0])
    assert held[0] > 60  # far more than one bar's 20 units can sell
    assert np.all(np.diff(held) <= 0) and held[-1] == 0.0  # 20 a bar, past the 2-bar TTL


def test_stop_exits_pay_taker_costs_even_with_limit_orders():
    from adan.market.execution import ExecutionConfig

    n = 20
    open_, close = np.full(n, 100.0), np.full(n, 100.0)
    open_[7], close[7] = 90.0, 90.0  # gaps through the 5% stop
    low = np.minimum(open_, close) - 0.5
    trading = TradingConfig(fee_bps=10.0, half_spread_bps=3.0, slippage_bps=1.0,
                            execution=ExecutionConfig(order_type="limit", maker_fee_bps=1.0),
                            stops=StopsConfig(mode="pct", stop_loss=0.05))  # fmt: skip
    sim = simulator(scripted(open_, close, low=low, high=np.maximum(open_, close) + 0.5), trading)
    for _ in range(3):
        _, _, _, _, info = sim.step(np.array([[1.0]]))
    units = sim.portfolio.units[0, 0]
    assert info["fills"]["spread"].sum() == 0  # limit fills: maker fee, no spread
    _, _, _, _, info = sim.step(np.array([[1.0]]))
    exits = info["exits"]
    assert exits["units"][0, 0] == -units and exits["price"][0, 0] == 90.0
    notional = units * 90.0
    assert exits["fee"][0, 0] == pytest.approx(notional * 10e-4)
    assert exits["spread"][0, 0] == pytest.approx(notional * 3e-4)
    assert info["cost"][0] == pytest.approx(notional * 14e-4 + info["fills"]["fee"].sum())


def test_limit_entry_inside_a_bar_does_not_take_that_bars_high_as_its_target():
    from adan.market.execution import ExecutionConfig

    n = 20
    open_, close = np.full(n, 100.0), np.full(n, 100.0)
    high, low = open_ + 0.5, open_ - 0.5
    open_[5], high[5], low[5], close[5] = 100.5, 106.0, 97.0, 101.0  # buy limit at 100 fills
    trading = TradingConfig(
        **FREE,
        execution=ExecutionConfig(order_type="limit"),
        stops=StopsConfig(mode="pct", stop_loss=0.05, take_profit=0.05),
    )
    sim = simulator(scripted(open_, close, low=low, high=high), trading)
    sim.step(np.array([[0.0]]))
    _, _, _, _, info = sim.step(np.array([[1.0]]))  # decided at bar 4, fills in bar 5 at 100
    assert info["fills"]["price"][0, 0] == 100.0 and sim.portfolio.units[0, 0] > 0
    assert info["stop_exits"][0] == 0  # 106 may have printed before the fill
    assert sim.desk.stops.target[0, 0] == pytest.approx(105.0)  # the target stays for later


def test_behaviour_engine_never_lifts_gross_above_max_leverage():
    data = synthetic()
    dbe = BehaviourConfig(enabled=True, smoothing=1.0, size_max=1.5,
                          regimes={r: {"size": 1.5, "exposure": 2.0}
                                   for r in ("bull", "bear", "sideways", "volatile")})  # fmt: skip
    trading = TradingConfig(**FREE, max_leverage=1.0, dbe=dbe)
    sim = MarketSimulator(
        MarketSpec.of(data, trading=trading, window=16), 8, episode_length=100, seed=0
    )
    for _ in range(20):
        weights = sim.desk.decide(np.full((8, 2), 1.0), sim.t, sim.portfolio)
        assert np.abs(weights).sum(axis=1).max() <= 1.0 + 1e-12
        sim.step(np.full((8, 2), 1.0))


def test_a_profile_without_the_engine_is_not_capped_by_one_with_it():
    from adan.market.config import ProfileConfig

    data = synthetic()
    profiles = {
        "calm": ProfileConfig(dbe=BehaviourConfig(enabled=True)),
        "plain": ProfileConfig(),
    }
    trading = TradingConfig(**FREE, max_leverage=2.0, profiles=profiles)
    sim = MarketSimulator(
        MarketSpec.of(data, trading=trading, window=16), 4, episode_length=100, seed=0
    )
    alone = MarketSimulator(
        MarketSpec.of(data, trading=trading.only("plain"), window=16), 2, episode_length=100, seed=2
    )
    both = sim.desk.decide(np.full((4, 2), 1.0), sim.t, sim.portfolio)
    single = alone.desk.decide(np.full((2, 2), 1.0), alone.t, alone.portfolio)
    np.testing.assert_array_equal(both[2:], single)
    assert np.abs(single).sum(axis=1) == pytest.approx([2.0, 2.0])
