import numpy as np
import torch

from adan.agents.rollout import compute_gae


def reference_gae(rewards, values, dones, last_value, gamma, lam):
    """Textbook GAE, one env at a time with plain Python loops."""
    t_max, n = rewards.shape
    adv = np.zeros_like(rewards)
    for e in range(n):
        gae = 0.0
        for t in reversed(range(t_max)):
            nv = last_value[e] if t == t_max - 1 else values[t + 1, e]
            nd = 1.0 - dones[t, e]
            delta = rewards[t, e] + gamma * nv * nd - values[t, e]
            gae = delta + gamma * lam * nd * gae
            adv[t, e] = gae
    return adv


def test_gae_matches_reference_with_episode_ends():
    rng = np.random.default_rng(0)
    r, v = rng.normal(size=(16, 5)), rng.normal(size=(16, 5))
    d = (rng.random((16, 5)) < 0.2).astype(np.float64)
    last = rng.normal(size=5)
    adv, ret = compute_gae(*(torch.tensor(x) for x in (r, v, d, last)), 0.97, 0.9)
    expected = reference_gae(r, v, d, last, 0.97, 0.9)
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(ret.numpy(), expected + v, rtol=1e-10)


def test_gae_lambda_one_is_discounted_return_minus_value():
    r = torch.ones(4, 1)
    v = torch.zeros(4, 1)
    d = torch.zeros(4, 1)
    adv, _ = compute_gae(r, v, d, torch.zeros(1), gamma=0.5, gae_lambda=1.0)
    assert torch.allclose(adv[:, 0], torch.tensor([1.875, 1.75, 1.5, 1.0]))


def test_done_cuts_the_bootstrap():
    r = torch.zeros(2, 1)
    v = torch.tensor([[0.0], [5.0]])
    d = torch.tensor([[1.0], [0.0]])
    adv, _ = compute_gae(r, v, d, torch.tensor([7.0]), gamma=0.9, gae_lambda=0.95)
    assert adv[0, 0] == 0.0  # nothing flows back across the episode end
