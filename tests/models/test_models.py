from functools import partial

import gymnasium as gym
import numpy as np
import pytest
import torch

from adan.models import ActorCritic, CustomCNN, MLPExtractor

SPACE = gym.spaces.Dict(
    {
        "market": gym.spaces.Box(-10, 10, (32, 2, 5), np.float32),
        "portfolio": gym.spaces.Box(-np.inf, np.inf, (6,), np.float32),
    }
)


def sample(batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "market": torch.randn(batch, 32, 2, 5, generator=g),
        "portfolio": torch.randn(batch, 6, generator=g),
    }


def test_cnn_output_shape_and_width_multiplier():
    cnn = CustomCNN(
        SPACE, channels=[8, 16], kernel_sizes=[5, 3], features_dim=24, width_multiplier=2.0
    )
    out = cnn(sample())
    assert out.shape == (4, 24)
    assert (
        cnn.blocks[0][0].out_channels == 16 and cnn.blocks[0][0].in_channels == 10
    )  # A·F channels


def test_cnn_sees_every_asset_and_the_portfolio():
    cnn = CustomCNN(SPACE, channels=[8], kernel_sizes=[3]).eval()
    x = sample()
    base = cnn(x)
    for key, idx in (("market", (slice(None), -1, 1, 0)), ("portfolio", (slice(None), 0))):
        y = {k: v.clone() for k, v in x.items()}
        y[key][idx] += 1.0
        assert not torch.allclose(cnn(y), base), key


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    a = CustomCNN(SPACE, channels=[8, 8], kernel_sizes=[3, 3])
    b = CustomCNN(SPACE, channels=[8, 8], kernel_sizes=[3, 3], gradient_checkpointing=True)
    b.load_state_dict(a.state_dict())
    x = sample()
    a(x).sum().backward()
    b(x).sum().backward()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad, pb.grad)


def test_cnn_refuses_vector_observations():
    with pytest.raises(ValueError, match="model=mlp"):
        CustomCNN(gym.spaces.Box(-1, 1, (4,), np.float32))


def test_actor_critic_on_trading_space_gaussian_and_discrete():
    cnn = partial(CustomCNN, channels=[8], kernel_sizes=[3], features_dim=16)
    box = ActorCritic(SPACE, gym.spaces.Box(-1, 1, (2,), np.float32), cnn)
    a, logp, v = box(sample())
    assert a.shape == (4, 2) and logp.shape == (4,) and v.shape == (4,)
    logp2, ent, _ = box.evaluate_actions(sample(), a)
    torch.testing.assert_close(logp, logp2)
    disc = ActorCritic(SPACE, gym.spaces.MultiDiscrete([3, 3]), cnn)
    a, logp, _ = disc(sample())
    assert a.shape == (4, 2) and a.dtype == torch.int64 and set(a.unique().tolist()) <= {0, 1, 2}
    logp2, _, _ = disc.evaluate_actions(sample(), a)
    torch.testing.assert_close(logp, logp2)


def test_separate_extractors_are_not_shared():
    mlp = partial(MLPExtractor, hidden_sizes=[8])
    ac = ActorCritic(
        gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2), mlp, share_extractor=False
    )
    assert ac.pi_extractor is not ac.vf_extractor


def test_compiled_policy_matches_eager():
    torch.manual_seed(0)
    mlp = partial(MLPExtractor, hidden_sizes=[8])
    space = gym.spaces.Box(-1, 1, (4,), np.float32)
    eager = ActorCritic(space, gym.spaces.Discrete(2), mlp)
    compiled = ActorCritic(space, gym.spaces.Discrete(2), mlp, compile=True)
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(3, 4)
    torch.testing.assert_close(eager.value(x), compiled.value(x))


@pytest.mark.parametrize(
    "action_space",
    [
        gym.spaces.Box(-1, 1, (2,), np.float32),
        gym.spaces.Discrete(3),
        gym.spaces.MultiDiscrete([3, 2]),
    ],
)
def test_act_is_the_deterministic_action_of_forward(action_space):
    """Evaluation's actor-only path picks what forward(deterministic=True) picks."""
    torch.manual_seed(0)
    mlp = partial(MLPExtractor, hidden_sizes=[8])
    space = gym.spaces.Box(-1, 1, (4,), np.float32)
    policy = ActorCritic(space, action_space, mlp, share_extractor=False, pi_hidden=[8])
    for layer in policy.modules():  # wider logits than ortho_init's 0.01 gain: distinct modes
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight)
    x = torch.randn(64, 4)
    with torch.no_grad():
        expected, _, _ = policy(x, deterministic=True)
        action = policy.act(x)
    assert action.shape == expected.shape and action.dtype == expected.dtype
    torch.testing.assert_close(action, expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "action_space",
    [
        gym.spaces.Box(-1, 1, (3,), np.float32),
        gym.spaces.Discrete(4),
        gym.spaces.MultiDiscrete([3, 2, 5]),
    ],
    ids=["box", "discrete", "multidiscrete"],
)
@pytest.mark.parametrize("deterministic", [False, True])
def test_distributions_give_torch_distributions_bits(action_space, deterministic):
    """The policy writes its distributions out without torch.distributions' objects; the
    samples, log-probabilities and entropies are theirs, bit for bit."""
    from torch.distributions import Categorical, Normal

    mlp = partial(MLPExtractor, hidden_sizes=[16])
    space = gym.spaces.Box(-1, 1, (6,), np.float32)
    torch.manual_seed(0)
    pol = ActorCritic(space, action_space, mlp, log_std_init=-0.3)
    obs = torch.randn(64, 6, generator=torch.Generator().manual_seed(1)) * 50  # sharp logits
    with torch.no_grad():
        head, value = pol._features(obs)
        if pol.kind == "gaussian":
            dists = [Normal(head.float(), pol.log_std.exp().expand_as(head).float())]
        else:
            dists = [Categorical(logits=lg) for lg in torch.split(head.float(), pol.nvec, -1)]
        torch.manual_seed(7)
        if pol.kind == "gaussian":
            flat = dists[0].mean if deterministic else dists[0].sample()
            ref_logp = dists[0].log_prob(flat).sum(-1)
            ref_ent = dists[0].entropy().sum(-1)
        else:
            picks = [d.probs.argmax(-1) if deterministic else d.sample() for d in dists]
            flat = torch.stack(picks, -1)
            ref_logp = sum(d.log_prob(flat[:, i]) for i, d in enumerate(dists))
            ref_ent = sum(d.entropy() for d in dists)
        torch.manual_seed(7)
        action, logp, v = pol(obs, deterministic=deterministic)
        logp2, ent, _ = pol.evaluate_actions(obs, action)
    assert torch.equal(pol._flat_action(action).to(flat.dtype), flat)
    assert torch.equal(logp, ref_logp) and torch.equal(logp2, ref_logp)
    assert torch.equal(ent, ref_ent) and torch.equal(v, value)
    if not deterministic and pol.kind != "gaussian":  # the draws really are random
        assert len(flat.unique()) > 1
