"""No look-ahead from raw bars to the decision: rewriting every bar after t changes neither the
observation at t (after trading every bar up to t; higher-timeframe windows included) nor the
policy's action there. Also: the envs and CustomCNN with higher timeframes."""

import warnings
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from adan.agents.rollout import obs_to_tensor
from adan.data import MarketPipeline, SyntheticMarket
from adan.data.features import DEFAULT_FEATURES
from adan.envs import TradingEnv, VecTradingEnv
from adan.market import TradingConfig
from adan.market.simulator import MarketSimulator
from adan.market.spec import MarketSpec
from adan.models import ActorCritic, CustomCNN, MLPExtractor
from adan.rewards import SimpleReward
from tests.market.profiles import trading_profile

FEATURES = list(DEFAULT_FEATURES)
SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2, "embargo": 10}
TIMEFRAMES = [
    {"rule": "4h", "features": ["log_return", "rsi_14", "volume_z"], "window": 8},
    {"rule": "1d", "features": ["log_return", "momentum_6"], "window": 4},
]


def rewrite_after(bars, t_raw, seed=0):
    """``bars`` with every bar after ``t_raw`` (open, high, low, close, volume) rewritten."""
    rng = np.random.default_rng(seed)
    future = slice(t_raw + 1, None)
    o, c, h, lo, v = (x.copy() for x in (bars.open, bars.close, bars.high, bars.low, bars.volume))
    shape = o[future].shape
    o[future] *= rng.uniform(0.5, 1.5, shape)
    c[future] *= rng.uniform(0.5, 1.5, shape)
    h[future] = np.maximum(o[future], c[future]) * 1.01
    lo[future] = np.minimum(o[future], c[future]) * 0.99
    v[future] *= rng.uniform(0.1, 10, shape)
    return replace(bars, open=o, high=h, low=lo, close=c, volume=v)


@pytest.mark.parametrize(
    ("timeframes", "profile"),
    [(None, None), (TIMEFRAMES, None), (None, "moderate")],
    ids=["base", "timeframes", "realistic-desk"],
)
def test_future_bars_do_not_move_observation_or_decision(timeframes, profile):
    """``realistic-desk``: trading=moderate (estimated spread, impact, participation cap,
    vol-target sizing, ATR stops, risk limits with tiers, behaviour engine, regime in the
    observation): none of it may read a bar after t either."""
    bars = SyntheticMarket(n_assets=2, n_bars=3000, seed=3).generate()
    base = MarketPipeline(bars, FEATURES, SPLIT, timeframes=timeframes).build()["val"]
    window = 16
    cut = 200  # bar index within the val split where the decision is taken
    t_raw = base.meta["bar_range"][0] + cut  # the same bar in the raw series

    changed = rewrite_after(bars, t_raw)
    other = MarketPipeline(changed, FEATURES, SPLIT, timeframes=timeframes).build()["val"]
    assert not np.allclose(other.close[cut + 1 :], base.close[cut + 1 :])

    torch.manual_seed(0)
    trading = TradingConfig() if profile is None else trading_profile(profile)
    actions = np.sin(np.arange(cut))[:, None] * np.array([1.0, -0.5])  # trades every bar
    obs_at_cut = []
    for data in (base, other):
        # one episode over the whole split: it starts at bar window-1, deterministically
        env = VecTradingEnv(
            MarketSpec.of(data, trading=trading, window=window),
            SimpleReward(),
            num_envs=1,
            episode_length=len(data) - window - 1,
            seed=0,
        )
        obs, _ = env.reset(seed=0)
        while env.simulator.t[0] < cut:  # trade up to the cut: fills, costs, marks
            obs, *_ = env.step(actions[env.simulator.t[0]][None].astype(np.float32))
        assert env.simulator.t[0] == cut
        obs_at_cut.append(obs)
    keys = {"market", "portfolio"} | {f"market_{tf['rule']}" for tf in timeframes or ()}
    keys |= {"regime"} if profile else set()
    assert set(obs_at_cut[0]) == keys
    for key in keys:
        np.testing.assert_array_equal(obs_at_cut[0][key], obs_at_cut[1][key], err_msg=key)

    policy = ActorCritic(
        env.single_observation_space,
        env.single_action_space,
        partial(CustomCNN, channels=[8], kernel_sizes=[3]),
    ).eval()
    actions = [policy(obs_to_tensor(o, "cpu"), deterministic=True)[0] for o in obs_at_cut]
    torch.testing.assert_close(actions[0], actions[1], rtol=0, atol=0)


def test_higher_windows_at_t_ignore_every_later_bar_at_every_phase():
    """At each hour of a day (each phase of the 4h and 1d periods) rewriting every base bar
    after t leaves the ``market_<rule>`` windows at t bit-identical; rewriting from t itself
    changes the windows that closed with t (so the comparison is not vacuous)."""
    bars = SyntheticMarket(n_assets=2, n_bars=2000, seed=5).generate()

    def val_split(source):
        return MarketPipeline(source, ["log_return"], SPLIT, timeframes=TIMEFRAMES).build()["val"]

    def windows_at(val, t_raw):
        sim = MarketSimulator(MarketSpec.of(val, window=4), 1, episode_length=8, seed=0)
        sim.t[:] = t_raw - val.meta["bar_range"][0]
        obs = sim.observe()
        return obs["market_4h"], obs["market_1d"]

    val = val_split(bars)
    start = val.meta["bar_range"][0] + 30
    hours = bars.timestamps.astype("datetime64[h]").astype(np.int64) % 24
    for t_raw in range(start, start + 24):
        base = windows_at(val, t_raw)
        later = windows_at(val_split(rewrite_after(bars, t_raw, seed=t_raw)), t_raw)
        for rule, x, y in zip(("4h", "1d"), base, later, strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"market_{rule} at bar {t_raw}")
        from_t = windows_at(val_split(rewrite_after(bars, t_raw - 1, seed=t_raw)), t_raw)
        closes = (hours[t_raw] % 4 == 3, hours[t_raw] == 23)  # t is the period's last hour
        for x, y, closed in zip(base, from_t, closes, strict=True):
            if closed:  # the higher bar that closed with t is in the window: it must change
                assert not np.array_equal(x[:, -1], y[:, -1])
            else:  # the period holding t is not closed: bar t is not in the window
                np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def tf_market():
    bars = SyntheticMarket(n_assets=2, n_bars=2000, seed=1).generate()
    return MarketPipeline(bars, FEATURES[:3], SPLIT, timeframes=TIMEFRAMES).build()["train"]


def test_trading_env_with_timeframes_passes_check_env_and_matches_the_vector_env(tf_market):
    env = TradingEnv(
        MarketSpec.of(tf_market, trading=TradingConfig(), window=16),
        SimpleReward(),
        episode_length=40,
    )
    assert env.observation_space["market_4h"].shape == (8, 2, 3)
    assert env.observation_space["market_1d"].shape == (4, 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)

    n = 3
    spec = MarketSpec.of(tf_market, TradingConfig(), window=16)
    vec = VecTradingEnv(spec, SimpleReward(), num_envs=n, episode_length=20)
    singles = [TradingEnv(spec, SimpleReward(), episode_length=20) for _ in range(n)]
    vobs, _ = vec.reset(seed=7)
    sobs = [e.reset(seed=7 + i)[0] for i, e in enumerate(singles)]
    actions = np.random.default_rng(0).uniform(-1, 1, (15, n, 2)).astype(np.float32)
    for k in range(15):
        for i in range(n):
            for key in vec.single_observation_space:
                np.testing.assert_array_equal(vobs[key][i], sobs[i][key], err_msg=key)
        vobs, *_ = vec.step(actions[k])
        sobs = [e.step(actions[k, i])[0] for i, e in enumerate(singles)]
    # the simulator's window is the higher bars index[t] - W + 1 .. index[t]
    t = vec.simulator.t
    tf = tf_market.timeframes["4h"]
    for i in range(n):
        want = tf.features[tf.index[t[i]] - 7 : tf.index[t[i]] + 1]
        np.testing.assert_array_equal(vobs["market_4h"][i], want)


def test_cnn_has_a_branch_per_timeframe_and_gradients_reach_each(tf_market):
    vec = VecTradingEnv(
        MarketSpec.of(tf_market, trading=TradingConfig(), window=16), SimpleReward(), num_envs=4
    )
    space = vec.single_observation_space
    cnn = CustomCNN(space, channels=[8, 8], kernel_sizes=[5, 3], pooling="avgmax", features_dim=24)
    assert sorted(cnn.timeframe_blocks) == ["market_1d", "market_4h"]
    assert cnn.timeframe_blocks["market_1d"][0][0].kernel_size == (4,)  # window 4 < kernel 5
    obs = {k: torch.as_tensor(v).requires_grad_() for k, v in vec.reset(seed=0)[0].items()}
    out = cnn(obs)
    assert out.shape == (4, 24)
    out.sum().backward()
    for key in obs:
        assert obs[key].grad.abs().sum() > 0, key
    for name, p in cnn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # the MLP flattens every key; the actor-critic runs on either extractor
    for extractor in (partial(CustomCNN, channels=[8], kernel_sizes=[3]), MLPExtractor):
        policy = ActorCritic(space, vec.single_action_space, extractor)
        action, logp, value = policy(obs_to_tensor(vec.reset(seed=1)[0], "cpu"))
        assert action.shape == (4, 2) and value.shape == (4,)
