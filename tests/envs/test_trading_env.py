import warnings
from dataclasses import replace

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from adan.envs import TradingEnv, VecTradingEnv
from adan.market import TradingConfig
from adan.market.spec import MarketSpec
from adan.rewards import AdaptiveReward, SimpleReward
from tests.market.markets import EVERY_BAR, random_walk
from tests.market.profiles import trading_profile


@pytest.mark.parametrize("mode", ["continuous", "discrete"])
@pytest.mark.parametrize("allow_short", [True, False])
def test_check_env_passes_without_warnings(market, mode, allow_short):
    cfg = TradingConfig(action_mode=mode, allow_short=allow_short)
    env = TradingEnv(
        MarketSpec.of(market, trading=cfg, window=16), AdaptiveReward(), episode_length=40, seed=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


def test_spaces_and_info(market):
    env = TradingEnv(
        MarketSpec.of(market, trading=TradingConfig(execution=EVERY_BAR), window=16),
        SimpleReward(),
        episode_length=5,
    )
    assert env.observation_space["market"].shape == (16, 2, 3)
    assert env.observation_space["portfolio"].shape == (4,)
    assert env.action_space.shape == (2,)
    obs, info = env.reset(seed=1)
    np.testing.assert_array_equal(obs["portfolio"], [0, 0, 1, 0])
    for _ in range(5):
        obs, reward, term, trunc, info = env.step(np.array([0.5, -0.5], dtype=np.float32))
    assert isinstance(reward, float) and trunc and not term
    assert set(info) >= {"fee", "spread", "slippage", "turnover", "equity", "drawdown"}
    assert isinstance(info["fee"], float) and "log_return" in info["reward_components"]
    assert info["trading"]["trades"] == 10 and "episode" not in info
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())


def test_check_env_passes_with_the_realistic_desk(market):
    env = TradingEnv(
        MarketSpec.of(market, trading=trading_profile("moderate"), window=16),
        AdaptiveReward(),
        episode_length=40,
        seed=0,
    )
    assert env.observation_space["regime"].shape == (4,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("profile", [None, "moderate", "aggressive"])
def test_single_and_vector_env_trajectories_are_identical(profile):
    data = random_walk(num_bars=300, seed=2)
    data = replace(data, volume=np.full_like(data.close, 500.0))  # partial fills sometimes
    trading = TradingConfig() if profile is None else trading_profile(profile)
    n, steps = 3, 70
    spec = MarketSpec.of(data, trading, window=8)
    vec = VecTradingEnv(spec, AdaptiveReward(), num_envs=n, episode_length=20)
    singles = [TradingEnv(spec, AdaptiveReward(), episode_length=20) for _ in range(n)]
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, n, 2)).astype(np.float32)

    vobs, _ = vec.reset(seed=42)
    sobs = [env.reset(seed=42 + i)[0] for i, env in enumerate(singles)]
    needs_reset = [False] * n
    for k in range(steps):
        for i in range(n):
            for key in vobs:
                np.testing.assert_array_equal(vobs[key][i], sobs[i][key])
        vobs, vr, vte, vtr, _ = vec.step(actions[k])
        sobs = list(sobs)
        for i, env in enumerate(singles):
            if needs_reset[i]:  # NextStep autoreset: reset obs, reward 0, not done
                sobs[i], _ = env.reset()
                r, te, tr = 0.0, False, False
            else:
                sobs[i], r, te, tr, _ = env.step(actions[k, i])
            needs_reset[i] = te or tr
            assert vr[i] == np.float32(r) and vte[i] == te and vtr[i] == tr
    assert vec.simulator.stats.length.max() < 20  # episodes ended and restarted


def test_state_round_trip(market):
    env = TradingEnv(
        MarketSpec.of(market, trading=TradingConfig(), window=8),
        AdaptiveReward(),
        episode_length=30,
    )
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(10):
        env.step(rng.uniform(-1, 1, 2))
    state = env.get_state()
    actions = rng.uniform(-1, 1, (15, 2))
    first = [env.step(a) for a in actions]
    env.set_state(state)
    second = [env.step(a) for a in actions]
    for (o1, r1, *_), (o2, r2, *_) in zip(first, second, strict=True):
        assert r1 == r2
        np.testing.assert_array_equal(o1["market"], o2["market"])
        np.testing.assert_array_equal(o1["portfolio"], o2["portfolio"])
