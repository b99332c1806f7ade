import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from adan.envs import VecTradingEnv
from adan.market import TradingConfig
from adan.market.spec import MarketSpec
from adan.rewards import AdaptiveReward, SimpleReward
from tests.market.markets import random_walk

L = 10


def make(mode="NextStep", n=4, data=None, **kw):
    data = random_walk(num_bars=200, seed=1) if data is None else data
    return VecTradingEnv(
        MarketSpec.of(data, trading=TradingConfig(**kw), window=8),
        AdaptiveReward(scale=1.0),
        num_envs=n,
        episode_length=L,
        seed=0,
        autoreset_mode=mode,
    )


def fresh_portfolio(n_assets=2):
    return np.array([0.0] * n_assets + [1.0, 0.0], dtype=np.float32)


def test_spaces_metadata_and_observations():
    env = make(n=5)
    assert env.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert env.single_observation_space["market"].shape == (8, 2, 3)
    assert env.observation_space["market"].shape == (5, 8, 2, 3)
    assert env.observation_space["portfolio"].shape == (5, 4)
    assert env.single_action_space.shape == (2,) and env.action_space.shape == (5, 2)
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space and info == {}
    obs2, *_ = env.step(env.action_space.sample())
    assert obs2 in env.observation_space
    assert not np.shares_memory(obs["market"], obs2["market"])
    disc = make(n=3, action_mode="discrete")
    assert disc.action_space.shape == (3, 2) and disc.action_space.high.max() == 2  # as gymnasium


def test_mode_accepts_enum_or_string_and_rejects_others():
    assert make(AutoresetMode.SAME_STEP).metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert make("SameStep").autoreset_mode is AutoresetMode.SAME_STEP
    with pytest.raises(ValueError):
        make("Sometimes")


def test_next_step_autoreset_ignores_action_and_returns_reset_obs():
    env = make("NextStep", n=3)
    env.reset(seed=5)
    for _ in range(L):
        obs, r, te, tr, info = env.step(np.full((3, 2), 0.5, dtype=np.float32))
    assert tr.all() and not te.any() and info["_episode"].all()
    np.testing.assert_allclose(obs["portfolio"][:, :2], 0.5, atol=0.02)  # final obs: still invested
    np.testing.assert_allclose(info["episode"]["r"], env.market.episode_reward, rtol=1e-12)

    state = env.get_state()
    outs = []
    for action in (np.ones((3, 2)), -np.ones((3, 2))):  # the action must not matter
        env.set_state(state)
        outs.append(env.step(action.astype(np.float32)))
    for obs, r, te, tr, info in outs:
        assert np.all(r == 0) and not te.any() and not tr.any() and "episode" not in info
        np.testing.assert_array_equal(obs["portfolio"], np.tile(fresh_portfolio(), (3, 1)))
        assert np.all(info["equity"] == 10_000) and np.all(info["fee"] == 0)
        assert np.all(env.simulator.step_count == 0)
    np.testing.assert_array_equal(outs[0][0]["market"], outs[1][0]["market"])
    obs, r, te, tr, _ = env.step(np.ones((3, 2), dtype=np.float32))
    assert np.all(r != 0) and np.all(env.simulator.step_count == 1)


def test_same_step_autoreset_puts_final_obs_in_info():
    env = make("SameStep", n=3)
    env.reset(seed=5)
    for _ in range(L - 1):
        obs, r, te, tr, info = env.step(np.full((3, 2), 0.5, dtype=np.float32))
        assert "final_obs" not in info
    ref = make("NextStep", n=3)
    ref.reset(seed=5)
    for _ in range(L):
        ref_obs, ref_r, *_ = ref.step(np.full((3, 2), 0.5, dtype=np.float32))
    obs, r, te, tr, info = env.step(np.full((3, 2), 0.5, dtype=np.float32))
    assert tr.all() and info["_final_obs"].all() and info["_final_info"].all()
    np.testing.assert_array_equal(r, ref_r)  # the reward of the last step is kept
    for i in range(3):
        for key in ("market", "portfolio"):
            np.testing.assert_array_equal(info["final_obs"][i][key], ref_obs[key][i])
    np.testing.assert_array_equal(obs["portfolio"], np.tile(fresh_portfolio(), (3, 1)))
    assert np.all(env.simulator.step_count == 0)
    assert "equity" in info["final_info"] and info["final_info"]["_equity"].all()
    assert info["_episode"].all() and np.all(info["episode"]["l"] == L)
    obs, r, te, tr, info = env.step(np.zeros((3, 2), dtype=np.float32))
    assert not (te | tr).any() and np.all(env.simulator.step_count == 1)


def test_same_step_final_obs_only_for_finished_envs():
    close = np.r_[np.full(30, 100.0), np.full(170, 30.0)]  # crash at bar 30
    data = random_walk(num_bars=200, num_assets=1, seed=0)
    data.open[:, 0], data.close[:, 0] = close, close
    env = make("SameStep", n=2, data=data)
    env.reset(seed=0)
    env.simulator.t[:] = [25, 60]  # env 0 is about to crash, env 1 is past it
    for _ in range(5):
        obs, r, te, tr, info = env.step(np.ones((2, 1), dtype=np.float32))
    assert te.tolist() == [True, False]
    assert info["final_obs"][1] is None and info["final_obs"][0] is not None
    assert info["_final_obs"].tolist() == [True, False]
    assert info["_trading"].tolist() == [True, False]


def test_reset_mask_resets_only_selected_envs_and_seeds_like_gymnasium():
    env = make(n=4)
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        obs, *_ = env.step(np.full((4, 2), 0.3, dtype=np.float32))
    t_before = env.simulator.t.copy()
    mask = np.array([False, True, False, True])
    new_obs, _ = env.reset(seed=50, options={"reset_mask": mask})
    np.testing.assert_array_equal(env.simulator.t[~mask], t_before[~mask])
    np.testing.assert_array_equal(new_obs["portfolio"][~mask], obs["portfolio"][~mask])
    np.testing.assert_array_equal(new_obs["portfolio"][mask], np.tile(fresh_portfolio(), (2, 1)))
    other = make(n=4)
    other.reset(seed=50)
    np.testing.assert_array_equal(env.simulator.t[mask], other.simulator.t[mask])
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.ones(3, dtype=bool)})


def test_reset_seed_reproduces_and_seed_none_continues():
    env = make(n=8)
    env.reset(seed=3)
    first = env.simulator.t.copy()
    env.reset()
    assert not np.array_equal(first, env.simulator.t)
    env.reset(seed=3)
    np.testing.assert_array_equal(first, env.simulator.t)


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_get_state_set_state_round_trip(mode):
    env = make(mode, n=4)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(L - 1):
        env.step(rng.uniform(-1, 1, (4, 2)).astype(np.float32))
    state = env.get_state()
    actions = rng.uniform(-1, 1, (25, 4, 2)).astype(np.float32)
    first = [env.step(a) for a in actions]
    restored = make(mode, n=4)
    restored.set_state(state)
    second = [restored.step(a) for a in actions]
    for a, b in zip(first, second, strict=True):
        for key in ("market", "portfolio"):
            np.testing.assert_array_equal(a[0][key], b[0][key])
        for x, y in zip(a[1:4], b[1:4], strict=True):
            np.testing.assert_array_equal(x, y)
        assert ("episode" in a[4]) == ("episode" in b[4])


def test_disabled_mode_leaves_resets_to_the_caller():
    env = make("Disabled", n=2)
    env.reset(seed=0)
    for _ in range(L):
        *_, tr, _ = env.step(np.zeros((2, 2), dtype=np.float32))
    assert tr.all()
    env.reset(options={"reset_mask": tr})
    assert np.all(env.simulator.step_count == 0)


def test_simple_reward_episode_return_is_log_growth():
    data = random_walk(num_bars=200, seed=1)
    env = VecTradingEnv(
        MarketSpec.of(data, trading=TradingConfig(), window=8),
        SimpleReward(scale=1.0),
        num_envs=3,
        episode_length=L,
    )
    env.reset(seed=0)
    for _ in range(L):
        *_, info = env.step(np.full((3, 2), 0.4, dtype=np.float32))
    np.testing.assert_allclose(info["episode"]["r"], info["trading"]["log_return"], rtol=1e-5)


def test_state_saved_before_the_reward_moved_to_the_env_still_resumes_exactly():
    """Checkpoints written while the simulator applied the reward kept the episode return in
    the simulator's stats (``stats["reward"]``); they load into the env that applies it now."""
    env = make(n=4)
    env.reset(seed=0)
    rng = np.random.default_rng(3)
    for _ in range(L // 2):
        env.step(rng.uniform(-1, 1, (4, 2)).astype(np.float32))
    state = env.get_state()
    old = {**state["simulator"], "stats": dict(state["simulator"]["stats"])}
    old["stats"]["reward"] = old.pop("episode_reward")  # the earlier layout
    actions = rng.uniform(-1, 1, (L, 4, 2)).astype(np.float32)
    expected = [env.step(a) for a in actions]
    restored = make(n=4)
    restored.set_state({**state, "simulator": old})
    got = [restored.step(a) for a in actions]
    ended = 0
    for (_, r, *_, info), (_, r2, *_, info2) in zip(expected, got, strict=True):
        np.testing.assert_array_equal(r, r2)
        if "episode" in info:
            ended += 1
            np.testing.assert_array_equal(info["episode"]["r"], info2["episode"]["r"])
    assert ended  # an episode return that spans the checkpoint was compared
