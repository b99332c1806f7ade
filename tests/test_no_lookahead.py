"""No look-ahead from raw bars to the decision: rewriting every bar after t changes neither the
observation at t (after trading every bar up to t) nor the policy's action there."""

from dataclasses import replace
from functools import partial

import numpy as np
import torch

from adan.agents.rollout import obs_to_tensor
from adan.data import MarketPipeline, SyntheticMarket
from adan.data.features import DEFAULT_FEATURES
from adan.envs import VecTradingEnv
from adan.market import TradingConfig
from adan.models import ActorCritic, CustomCNN
from adan.rewards import SimpleReward

FEATURES = list(DEFAULT_FEATURES)
SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2, "embargo": 10}


def test_future_bars_do_not_move_observation_or_decision():
    bars = SyntheticMarket(n_assets=2, n_bars=3000, seed=3).generate()
    base = MarketPipeline(bars, FEATURES, SPLIT).build()["val"]
    window = 16
    cut = 200  # bar index within the val split where the decision is taken
    t_raw = base.meta["bar_range"][0] + cut  # the same bar in the raw series

    rng = np.random.default_rng(0)
    future = slice(t_raw + 1, None)
    o, c, h, lo, v = (x.copy() for x in (bars.open, bars.close, bars.high, bars.low, bars.volume))
    shape = o[future].shape
    o[future] *= rng.uniform(0.5, 1.5, shape)
    c[future] *= rng.uniform(0.5, 1.5, shape)
    h[future] = np.maximum(o[future], c[future]) * 1.01
    lo[future] = np.minimum(o[future], c[future]) * 0.99
    v[future] *= rng.uniform(0.1, 10, shape)
    changed = replace(bars, open=o, high=h, low=lo, close=c, volume=v)
    other = MarketPipeline(changed, FEATURES, SPLIT).build()["val"]
    assert not np.allclose(other.close[cut + 1 :], base.close[cut + 1 :])

    torch.manual_seed(0)
    trading = TradingConfig()
    actions = np.sin(np.arange(cut))[:, None] * np.array([1.0, -0.5])  # trades every bar
    obs_at_cut = []
    for data in (base, other):
        # one episode over the whole split: it starts at bar window-1, deterministically
        env = VecTradingEnv(
            data,
            trading,
            SimpleReward(),
            num_envs=1,
            window=window,
            episode_length=len(data) - window - 1,
            seed=0,
        )
        obs, _ = env.reset(seed=0)
        while env.simulator.t[0] < cut:  # trade up to the cut: fills, costs, marks
            obs, *_ = env.step(actions[env.simulator.t[0]][None].astype(np.float32))
        assert env.simulator.t[0] == cut
        obs_at_cut.append(obs)
    np.testing.assert_array_equal(obs_at_cut[0]["market"], obs_at_cut[1]["market"])
    np.testing.assert_array_equal(obs_at_cut[0]["portfolio"], obs_at_cut[1]["portfolio"])

    policy = ActorCritic(
        env.single_observation_space,
        env.single_action_space,
        partial(CustomCNN, channels=[8], kernel_sizes=[3]),
    ).eval()
    actions = [policy(obs_to_tensor(o, "cpu"), deterministic=True)[0] for o in obs_at_cut]
    torch.testing.assert_close(actions[0], actions[1], rtol=0, atol=0)
