"""``adan/Trading-v0`` in gymnasium's registry, and Stable-Baselines3's PPO training on it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import adan  # noqa: F401  (registers adan/Trading-v0)
from adan.envs import TradingEnv, VecTradingEnv
from adan.envs.registration import make_trading_env, small_market
from adan.errors import ConfigError


def test_make_builds_the_small_default_market_and_passes_gymnasiums_checker():
    env = gym.make("adan/Trading-v0")
    assert isinstance(env.unwrapped, TradingEnv)
    spec = env.unwrapped.simulator.spec
    assert spec.window == 32 and spec.data.num_assets == 2
    assert spec.data is small_market()["train"]
    check_env(env.unwrapped, skip_render_check=True)


def test_module_prefix_imports_adan_for_the_user():
    env = gym.make("adan:adan/Trading-v0", split="val", window=16)
    assert env.unwrapped.simulator.spec.data is small_market()["val"]
    assert env.observation_space["market"].shape == (16, 2, 9)


def test_vector_entry_point_is_the_batched_env_and_matches_single_envs():
    vec = gym.make_vec("adan/Trading-v0", num_envs=3, trading={"fee_bps": 9.0})
    assert isinstance(vec, VecTradingEnv) and vec.num_envs == 3
    assert vec.simulator.trading.fee_bps == 9.0
    obs, _ = vec.reset(seed=10)
    actions = np.full((3, 2), 0.5, dtype=np.float32)
    obs, reward, *_ = vec.step(actions)
    for i in range(3):  # env i of a batch seeded s is the single env seeded s + i
        single = make_trading_env(trading={"fee_bps": 9.0})
        single.reset(seed=10 + i)
        one, r, *_ = single.step(actions[i])
        np.testing.assert_array_equal(one["market"], obs["market"][i])
        np.testing.assert_array_equal(one["portfolio"], obs["portfolio"][i])
        assert r == reward[i]


def test_bad_arguments_name_what_to_change():
    with pytest.raises(ValueError, match="split must be one of"):
        gym.make("adan/Trading-v0", split="holdout")
    with pytest.raises(ConfigError, match="trading.fee_bps"):
        gym.make("adan/Trading-v0", trading={"fee_bps": -1.0})


def test_stable_baselines3_ppo_trains_on_the_registered_env():
    import stable_baselines3 as sb3  # the dev extra installs it (via adan[bench])
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("adan/Trading-v0", episode_length=128)
    sb3_check_env(env.unwrapped, warn=False)
    model = sb3.PPO("MultiInputPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=0,
                    device="cpu")  # fmt: skip
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=3072)

    assert model.num_timesteps == 3072
    episodes = list(model.ep_info_buffer)  # SB3's Monitor: one entry per finished episode
    assert len(episodes) == 3072 // 128
    assert all(ep["l"] == 128 and np.isfinite(ep["r"]) for ep in episodes)
    assert any(not p.equal(q) for p, q in zip(model.policy.parameters(), before, strict=True))
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action.astype(np.float32))
