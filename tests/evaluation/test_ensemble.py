"""ModelEnsemble: mean of continuous actions, weighted majority vote of discrete ones."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from adan.evaluation.ensemble import ModelEnsemble, weights_from_scores


class Fixed(torch.nn.Module):
    """A member that always takes the same action (the actor-critic call signature)."""

    def __init__(self, action, kind):
        super().__init__()
        self.register_buffer("a", torch.as_tensor(action))
        self.kind = kind
        self.action_space = (
            gym.spaces.Box(-1, 1, (len(action),))
            if kind == "gaussian"
            else gym.spaces.MultiDiscrete([3] * len(action))
        )

    def forward(self, obs, deterministic=False):
        return self.a.expand(obs["market"].shape[0], -1), None, None

    def act(self, obs):
        return self(obs)[0]

    def to_env_action(self, action):
        return action.numpy()


OBS = {"market": torch.zeros(4, 8, 2, 3), "portfolio": torch.zeros(4, 4)}


def test_mean_of_continuous_actions_and_weights():
    members = [Fixed([1.0, -1.0], "gaussian"), Fixed([0.0, 0.5], "gaussian")]
    out = ModelEnsemble(members)(OBS)[0]
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out[0].numpy(), [0.5, -0.25])
    weighted = ModelEnsemble(members, weights=[3, 1])(OBS)[0]
    np.testing.assert_allclose(weighted[0].numpy(), [0.75, -0.625])


def test_continuous_members_are_clipped_before_the_mean():
    members = [Fixed([3.0, 0.2], "gaussian"), Fixed([-1.0, 0.2], "gaussian")]
    np.testing.assert_allclose(ModelEnsemble(members)(OBS)[0][0].numpy(), [0.0, 0.2])


def test_a_tied_vote_goes_flat():
    members = [Fixed([2, 2], "categorical"), Fixed([0, 2], "categorical")]
    np.testing.assert_array_equal(ModelEnsemble(members)(OBS)[0][0].numpy(), [1, 2])


def test_majority_vote_of_discrete_actions():
    members = [Fixed([2, 0], "categorical"), Fixed([2, 1], "categorical"), Fixed([0, 1], "c")]
    members[2].kind = "categorical"
    out = ModelEnsemble(members)(OBS)[0]
    np.testing.assert_array_equal(out[0].numpy(), [2, 1])
    # a heavy third member outvotes the other two
    out = ModelEnsemble(members, weights=[1, 1, 5])(OBS)[0]
    np.testing.assert_array_equal(out[0].numpy(), [0, 1])


def test_weights_from_validation_scores():
    np.testing.assert_allclose(weights_from_scores([2.0, -1.0, 2.0]), [0.5, 0.0, 0.5])
    np.testing.assert_allclose(weights_from_scores([-1.0, float("nan")]), [0.5, 0.5])


def test_members_must_agree_on_the_action_kind():
    with pytest.raises(ValueError, match="mix action kinds"):
        ModelEnsemble([Fixed([1.0], "gaussian"), Fixed([1], "categorical")])
