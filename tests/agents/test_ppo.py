import math
from functools import partial

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from gymnasium.vector import AutoresetMode

from adan.agents import PPO
from adan.models import ActorCritic, MLPExtractor
from tests.agents.envs import ConstantVecEnv

POLICY = partial(
    ActorCritic,
    extractor=partial(MLPExtractor, hidden_sizes=[16]),
    share_extractor=False,
    pi_hidden=[],
    vf_hidden=[],
)


def make_ppo(env, **kw):
    torch.manual_seed(0)
    # the values these tests were tuned with (no value clipping, no entropy bonus or floor)
    args = dict(total_timesteps=64, n_steps=8, n_minibatches=2, n_epochs=2, gamma=0.9, seed=0)
    args.update(clip_range_vf=None, ent_coef=0.0, entropy_floor=None)
    args.update(kw)
    return PPO(env, POLICY, None, **args)


def fit(module, epochs=None):
    trainer = pl.Trainer(
        max_epochs=epochs or module.num_updates,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module)
    return trainer


def test_truncation_is_bootstrapped_with_the_final_value_next_step_mode():
    env = ConstantVecEnv(num_envs=2, length=3, truncate=True)
    m = make_ppo(env)
    m._obs, _ = env.reset()
    buf = m.collect_rollout()
    v = buf.values
    # steps 0,1: plain reward; step 2 truncates → reward + γ·V(final obs = obs at step 3)
    assert torch.allclose(buf.rewards[0], torch.ones(2))
    assert torch.allclose(buf.rewards[2], 1 + 0.9 * v[3])
    # step 3 is the autoreset step: its action was ignored, so it is masked out
    assert buf.valid[:, 0].tolist() == [True, True, True, False, True, True, True, False]


def test_termination_is_not_bootstrapped():
    env = ConstantVecEnv(num_envs=2, length=3, truncate=False)
    m = make_ppo(env)
    m._obs, _ = env.reset()
    buf = m.collect_rollout()
    assert torch.allclose(buf.rewards[2], torch.ones(2))
    assert buf.dones[2].tolist() == [1.0, 1.0]


def test_same_step_mode_bootstraps_from_final_obs_and_keeps_every_step():
    env = ConstantVecEnv(num_envs=2, length=3, truncate=True, mode=AutoresetMode.SAME_STEP)
    m = make_ppo(env)
    m._obs, _ = env.reset()
    buf = m.collect_rollout()
    assert bool(buf.valid.all())
    final_value = m.policy.value(torch.ones(1, 1)).item()
    assert torch.allclose(buf.rewards[2], torch.full((2,), 1 + 0.9 * final_value), atol=1e-6)


def test_ppo_learns_the_better_action():
    env = ConstantVecEnv(num_envs=8, length=5, bonus=1.0)
    m = make_ppo(env, total_timesteps=8 * 16 * 15, n_steps=16, learning_rate=3e-3, n_epochs=4)
    fit(m)
    probs = torch.softmax(m.policy._compute_heads(torch.ones(1, 1))[0], -1)
    assert probs[0, 1] > 0.9


def test_learning_rate_anneals_linearly_to_zero():
    env = ConstantVecEnv(num_envs=2, length=4)
    m = make_ppo(env, total_timesteps=2 * 8 * 4, learning_rate=1e-3)
    lrs = []
    m.log_metrics = lambda metrics: lrs.append(metrics["train/learning_rate"])
    fit(m)
    assert lrs == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])


def test_target_kl_stops_the_update_early():
    env = ConstantVecEnv(num_envs=8, length=5, bonus=1.0)
    seen = []
    m = make_ppo(
        env, total_timesteps=8 * 16 * 3, n_steps=16, learning_rate=0.05, n_epochs=10, target_kl=1e-4
    )
    m.log_metrics = lambda metrics: seen.append(metrics["train/early_stop"])
    fit(m)
    assert max(seen) == 1.0
    assert all(math.isfinite(s) for s in seen)


def test_rejects_env_without_autoreset():
    env = ConstantVecEnv(mode=AutoresetMode.DISABLED)
    with pytest.raises(ValueError, match="autoreset"):
        make_ppo(env)


def test_discrete_gaussian_heads_and_deterministic_mode():
    import gymnasium as gym

    space = gym.spaces.Box(-1, 1, (3,), np.float32)
    pol = POLICY(gym.spaces.Box(-1, 1, (4,), np.float32), space)
    obs = torch.zeros(5, 4)
    a1, _, _ = pol(obs, deterministic=True)
    a2, _, _ = pol(obs, deterministic=True)
    assert a1.shape == (5, 3) and torch.equal(a1, a2)
    logp, ent, v = pol.evaluate_actions(obs, a1)
    assert logp.shape == (5,) and ent.shape == (5,) and v.shape == (5,)
    assert np.all(np.abs(pol.to_env_action(a1 * 100)) <= 1)
