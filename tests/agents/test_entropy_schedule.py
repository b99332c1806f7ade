"""The entropy bonus's linear schedule and the entropy floor (a learned Lagrange multiplier)."""

import math

import gymnasium as gym
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from adan.agents.ppo import LOG_FLOOR_COEF_MIN
from adan.agents.schema import PPOConfig
from adan.errors import ConfigError
from adan.evaluation.checkpoint import SafeCheckpointIO, read_checkpoint
from tests.agents.envs import ConstantVecEnv
from tests.agents.test_ppo import make_ppo

# a two-armed bandit whose arm 1 pays 1 more: without a floor the policy becomes greedy
BANDIT = dict(n_steps=16, n_minibatches=4, n_epochs=4, learning_rate=3e-3, anneal_lr=False)


def bandit(**kw):
    return make_ppo(ConstantVecEnv(num_envs=8, length=5, bonus=1.0), **{**BANDIT, **kw})


def fit(module, epochs, ckpt_path=None, callbacks=()):
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=bool(callbacks),
        callbacks=list(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        plugins=[SafeCheckpointIO(require_adan=False)],
    )
    trainer.fit(module, ckpt_path=ckpt_path)


def logged(module):
    rows = []
    module.log_metrics = rows.append
    return rows


def test_ent_coef_goes_linearly_to_ent_coef_final_and_stays_there():
    m = make_ppo(
        ConstantVecEnv(num_envs=2, length=4),
        total_timesteps=2 * 8 * 4,
        ent_coef=0.01,
        ent_coef_final=0.002,
        entropy_floor=None,
    )
    rows = logged(m)
    fit(m, epochs=6)  # two iterations past the plan
    coefs = [r["train/ent_coef"] for r in rows]
    assert coefs[:4] == pytest.approx([0.01, 0.008, 0.006, 0.004], abs=1e-15)
    assert coefs[4:] == [0.002, 0.002]
    assert all("train/entropy_floor_coef" not in r for r in rows)


def test_without_ent_coef_final_the_coefficient_is_constant():
    m = make_ppo(ConstantVecEnv(num_envs=2, length=4), ent_coef=0.003, entropy_floor=None)
    rows = logged(m)
    fit(m, epochs=3)
    assert [r["train/ent_coef"] for r in rows] == [0.003] * 3


def test_the_floor_stops_the_greedy_collapse():
    runs = {}
    for floor in (None, 0.5):
        m = bandit(total_timesteps=8 * 16 * 24, entropy_floor=floor)
        runs[floor] = logged(m)
        fit(m, epochs=24)
    target = 0.5 * math.log(2)
    assert m.entropy_target == pytest.approx(target)
    free = np.array([r["train/entropy"] for r in runs[None]])
    entropy = np.array([r["train/entropy"] for r in runs[0.5]])
    coef = np.array([r["train/entropy_floor_coef"] for r in runs[0.5]])
    assert free[-1] < 0.1 * target and free[12:].mean() < 0.2 * target  # greedy

    assert coef[0] == pytest.approx(1e-6) and coef.max() > 0.1
    below = entropy < target
    rising, falling = below[:-1] & below[1:], ~below[:-1] & ~below[1:]
    assert rising.any() and np.all(np.diff(coef)[rising] > 0)
    assert np.all(np.diff(coef)[falling] <= 0)
    # The multiplier cycles (rise, overshoot, decay), so the entropy oscillates about the floor.
    assert entropy[12:].mean() > 0.8 * target
    assert runs[0.5][-1]["train/ent_coef"] == pytest.approx(coef[-1])  # here ent_coef=0


def test_resuming_mid_training_is_bit_identical_with_the_floor_on(tmp_path):
    epochs, cut = 12, 8
    straight = bandit(total_timesteps=8 * 16 * epochs, entropy_floor=0.5, entropy_floor_lr=2.0)
    straight_rows = logged(straight)
    fit(straight, epochs)

    first = bandit(total_timesteps=8 * 16 * epochs, entropy_floor=0.5, entropy_floor_lr=2.0)
    save = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0)
    fit(first, cut, callbacks=[save])
    ckpt = tmp_path / "last.ckpt"
    log_coef = read_checkpoint(ckpt, require_adan=False)["adan_state"]["log_floor_coef"]
    assert log_coef > LOG_FLOOR_COEF_MIN + 1  # the floor binds at the cut

    resumed = bandit(total_timesteps=8 * 16 * epochs, entropy_floor=0.5, entropy_floor_lr=2.0)
    resumed_rows = logged(resumed)
    fit(resumed, epochs, ckpt_path=ckpt)
    assert resumed.log_floor_coef == straight.log_floor_coef
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0, msg=key)
    keys = ("train/entropy", "train/entropy_floor_coef", "train/ent_coef", "train/policy_loss")
    for a, b in zip(straight_rows[cut:], resumed_rows, strict=True):
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def test_the_floor_is_a_fraction_of_the_uniform_entropy_of_multidiscrete_actions():
    env = ConstantVecEnv(num_envs=2)
    env.single_action_space = gym.spaces.MultiDiscrete([3, 3])
    m = make_ppo(env, entropy_floor=0.4)
    assert m.uniform_entropy == pytest.approx(2 * math.log(3))
    assert m.entropy_target == pytest.approx(0.4 * 2 * math.log(3))


def test_the_default_floor_changes_nothing_for_box_actions():
    params = []
    for floor in (PPOConfig.entropy_floor, None):
        env = gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync")
        m = make_ppo(env, entropy_floor=floor, ent_coef=0.01)
        rows = logged(m)
        fit(m, epochs=2)
        assert m.entropy_target is None and m.floor_coef == 0.0
        assert all("train/entropy_floor_coef" not in r for r in rows)
        assert [r["train/ent_coef"] for r in rows] == [0.01, 0.01]
        params.append(m.state_dict())
    assert PPOConfig.entropy_floor is not None
    for key, value in params[0].items():
        torch.testing.assert_close(params[1][key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize(
    "key, value, rule",
    [
        ("ent_coef_final", -0.1, "must be >= 0 or null"),
        ("entropy_floor", 0.0, r"must be in \(0, 1\) or null"),
        ("entropy_floor", 1.0, r"must be in \(0, 1\) or null"),
        ("entropy_floor_lr", 0.0, "must be > 0"),
    ],
)
def test_out_of_range_settings_are_refused_with_their_key(key, value, rule):
    with pytest.raises(ConfigError, match=rf"agent\.{key} {rule}"):
        PPOConfig(**{key: value})
