"""Observation checks: a NaN, a wrong shape or dtype is refused naming the key (and env);
out-of-range values are counted and logged once; per-step checks only when asked for."""

import logging
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

from adan.data.bars import TimeframeData
from adan.envs import TradingEnv, VecTradingEnv
from adan.envs.gym_tasks import make_gym_vec_env
from adan.envs.validation import PROBLEMS, ObservationValidator
from adan.market import TradingConfig
from adan.market.spec import MarketSpec
from adan.rewards import SimpleReward
from tests.market.markets import random_walk

SPACE = gym.spaces.Dict(
    {
        "market": gym.spaces.Box(-np.inf, np.inf, (4, 2, 3), np.float32),
        "portfolio": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
    }
)


def obs(n=None):
    lead = () if n is None else (n,)
    return {
        "market": np.zeros((*lead, 4, 2, 3), np.float32),
        "portfolio": np.zeros((*lead, 4), np.float32),
    }


def vec_env(data, **kw):
    kw = {"num_envs": 4, "episode_length": 30, "seed": 0, **kw}
    return VecTradingEnv(MarketSpec.of(data, TradingConfig(), window=8), SimpleReward(), **kw)


def with_timeframe(data, window=3):
    """``data`` plus a made-up 4h timeframe (2 features) whose index sees closed bars only."""
    t = len(data)
    p = t // 4 + 1
    feats = np.random.default_rng(0).standard_normal((p, data.num_assets, 2), dtype=np.float32)
    index = np.maximum(np.arange(t) // 4 - 1, window - 1).astype(np.int64)
    tf = TimeframeData("4h", ("a", "b"), feats, index, window)
    return replace(data, timeframes={"4h": tf})


def test_single_and_batched_observations_are_counted():
    v = ObservationValidator(SPACE)
    v.check(obs())
    v.check(obs(5))
    v.check(obs(1), batched=True)
    assert v.counts["market"] == dict.fromkeys(PROBLEMS, 0) | {"checked": 7}
    assert v.counts["portfolio"]["checked"] == 7


def test_nan_is_refused_naming_key_env_and_position():
    v = ObservationValidator(SPACE)
    o = obs(3)
    o["market"][2, 1, 0, 2] = np.nan
    with pytest.raises(ValueError, match=r"'market' of env 2 is nan at position \(1, 0, 2\)"):
        v.check(o)
    assert v.counts["market"]["nonfinite"] == 1
    o = obs()
    o["portfolio"][3] = np.inf
    with pytest.raises(ValueError, match=r"'portfolio' of env 0 is inf at position \(3,\)"):
        v.check(o)


def test_bad_shape_dtype_and_keys_are_refused():
    v = ObservationValidator(SPACE)
    o = obs(2)
    o["market"] = o["market"][:, :3]
    with pytest.raises(ValueError, match=r"'market' has shape \(2, 3, 2, 3\)"):
        v.check(o)
    assert v.counts["market"]["bad_shape"] == 1
    with pytest.raises(ValueError, match="expected \\[N"):
        v.check(obs(), batched=True)
    o = obs(2)
    o["portfolio"] = o["portfolio"].astype(np.float64)
    with pytest.raises(ValueError, match="'portfolio' has dtype float64"):
        v.check(o)
    assert v.counts["portfolio"]["bad_dtype"] == 2
    with pytest.raises(ValueError, match="keys"):
        v.check({"market": obs()["market"]})


def test_out_of_range_is_counted_and_logged_once(caplog):
    v = ObservationValidator(SPACE, bounds=5.0)
    o = obs(3)
    o["market"][1, 0, 0, 0] = 6.0
    o["market"][2, 3, 1, 2] = -7.0
    with caplog.at_level(logging.WARNING, logger="adan.envs.validation"):
        v.check(o)
        v.check(o)
    assert v.counts["market"]["out_of_range"] == 4 and v.counts["portfolio"]["out_of_range"] == 0
    warnings = [r for r in caplog.records if "beyond" in r.getMessage()]
    assert len(warnings) == 1 and "'market' of env 1" in warnings[0].getMessage()


def test_box_spaces_are_checked_under_one_key():
    v = ObservationValidator(gym.spaces.Box(-1, 1, (4,), np.float32))
    v.check(np.zeros((8, 4), np.float32))
    assert v.counts["obs"]["checked"] == 8
    x = np.zeros((8, 4), np.float32)
    x[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"'obs' of env 5 is nan at position \(2,\)"):
        v.check(x)


@pytest.mark.parametrize("key", ["market", "market_4h"])
def test_env_refuses_nan_features_when_built(key):
    data = with_timeframe(random_walk(num_bars=300))
    if key == "market":
        feats = data.features.copy()
        feats[:, 1, 2] = np.nan
        data = replace(data, features=feats)
    else:
        tf = data.timeframes["4h"]
        feats = tf.features.copy()
        feats[:, 0, 1] = np.nan
        data = replace(data, timeframes={"4h": replace(tf, features=feats)})
    with pytest.raises(ValueError, match=f"observation '{key}' of env 0 is nan"):
        vec_env(data)
    with pytest.raises(ValueError, match=f"observation '{key}' of env 0 is nan"):
        TradingEnv(
            MarketSpec.of(data, trading=TradingConfig(), window=8),
            SimpleReward(),
            episode_length=30,
        )


def test_debug_mode_checks_every_step_and_finds_a_later_nan():
    data = with_timeframe(random_walk(num_bars=300))
    env = vec_env(data, validate_every_step=True)
    counts = env.observation_checks
    assert counts["market"]["checked"] == 4  # the first observation, when built
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.zeros((4, 2), np.float32))
    assert {k: c["checked"] for k, c in counts.items()} == dict.fromkeys(
        ("market", "market_4h", "portfolio"), 4 * 7
    )
    # a NaN written (in place: the windows are views) into the bar after env 2's current one
    bad = int(env.simulator.t[2]) + 1
    data.features[bad, 0, 1] = np.nan
    starts = env.simulator.t + 1 - 7  # first bar of each env's next window
    first = int(np.flatnonzero((starts <= bad) & (bad <= env.simulator.t + 1))[0])
    match = rf"'market' of env {first} is nan at position \({bad - starts[first]}, 0, 1\)"
    with pytest.raises(ValueError, match=match):
        env.step(np.zeros((4, 2), np.float32))
    assert counts["market"]["nonfinite"] >= 1


def test_single_env_debug_mode_counts_steps():
    env = TradingEnv(
        MarketSpec.of(random_walk(num_bars=300), trading=TradingConfig(), window=8),
        SimpleReward(),
        episode_length=30,
        validate_every_step=True,
    )
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.zeros(2, np.float32))
    assert env.observation_checks["market"]["checked"] == 5  # built + reset + 3 steps


class Forbidden:
    def check(self, *args, **kwargs):
        raise AssertionError("validator called with validate_every_step=False")


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_no_per_step_checks_when_off(mode):
    env = vec_env(random_walk(num_bars=300), autoreset_mode=mode, episode_length=5)
    counts = env.observation_checks
    assert counts["market"]["checked"] == 4
    env.validator = Forbidden()  # any call on the step path fails the test
    env.reset(seed=0)
    for _ in range(12):  # episode ends included
        env.step(np.zeros((4, 2), np.float32))
    assert counts["market"]["checked"] == 4


def test_gym_tasks_check_every_observation_when_asked():
    env = make_gym_vec_env("CartPole-v1", num_envs=2, validate_every_step=True)
    env.reset(seed=0)
    for _ in range(4):
        env.step(env.action_space.sample())
    assert env.observation_checks["obs"]["checked"] == 10
    assert not hasattr(make_gym_vec_env("CartPole-v1", num_envs=2), "observation_checks")
