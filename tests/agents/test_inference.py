"""Small-batch rollout inference: the native convolution, the same policy outputs."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import numpy as np
import torch

from adan.agents.inference import NATIVE_CONV_MAX_ROWS, small_batch_inference
from adan.models import ActorCritic, CustomCNN

SPACE = gym.spaces.Dict(
    {
        "market": gym.spaces.Box(-10, 10, (32, 2, 9), np.float32),
        "portfolio": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
    }
)


def test_few_rows_on_a_cpu_skip_onednn_and_the_flag_is_restored():
    before = torch.backends.mkldnn.enabled
    with small_batch_inference(NATIVE_CONV_MAX_ROWS, torch.device("cpu")) as native:
        assert native and not torch.backends.mkldnn.enabled
    assert torch.backends.mkldnn.enabled == before
    with small_batch_inference(NATIVE_CONV_MAX_ROWS + 1, torch.device("cpu")) as native:
        assert not native and torch.backends.mkldnn.enabled == before
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)
    with bf16, small_batch_inference(1, torch.device("cpu")) as native:
        assert not native  # oneDNN computes bf16
    with small_batch_inference(1, torch.device("meta")) as native:
        assert not native


def test_the_policy_gives_the_same_actions_and_values_either_way():
    torch.manual_seed(0)
    cnn = partial(CustomCNN, channels=[16, 32], kernel_sizes=[5, 3])
    policy = ActorCritic(SPACE, gym.spaces.Box(-1, 1, (2,), np.float32), cnn)
    g = torch.Generator().manual_seed(1)
    obs = {
        "market": torch.randn(8, 32, 2, 9, generator=g),
        "portfolio": torch.randn(8, 4, generator=g),
    }
    with torch.no_grad():
        torch.manual_seed(3)
        onednn = policy(obs)
        with small_batch_inference(8, torch.device("cpu")) as native:
            assert native
            torch.manual_seed(3)
            plain = policy(obs)
    for a, b in zip(onednn, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
