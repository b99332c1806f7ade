"""Rollout storage and Generalised Advantage Estimation for PPO.

The buffer holds ``n_steps × num_envs`` transitions in preallocated tensors; observations may be
arrays or dicts of arrays (the trading env's market window + portfolio vector).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

Obs = torch.Tensor | dict[str, torch.Tensor]


def obs_to_tensor(obs: np.ndarray | dict[str, np.ndarray], device: torch.device) -> Obs:
    """Numpy observation (or dict of them) → tensors on ``device`` (zero-copy on CPU)."""
    if isinstance(obs, dict):
        return {k: torch.as_tensor(v, device=device) for k, v in obs.items()}
    return torch.as_tensor(obs, device=device)


def _index(obs: Obs, idx: torch.Tensor | slice | int) -> Obs:
    if isinstance(obs, dict):
        return {k: v[idx] for k, v in obs.items()}
    return obs[idx]


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(λ) over [T, N] tensors. ``dones[t]`` says the episode ended with step t, so the
    bootstrap from step t+1 is cut; truncations are bootstrapped by the caller beforehand
    (their reward already holds γ·V(final observation)). Returns (advantages, returns)."""
    # Every term without the recurrence at once (the same element-wise ops as step by step);
    # the loop keeps only last_gae = delta + γλ(1 - done)·last_gae.
    not_done = 1.0 - dones
    next_values = torch.cat([values[1:], last_value[None]], dim=0)
    deltas = rewards + gamma * next_values * not_done - values
    decays = gamma * gae_lambda * not_done
    advantages = torch.empty_like(rewards)
    last_gae = torch.zeros_like(last_value)
    for t in range(rewards.shape[0] - 1, -1, -1):
        last_gae = deltas[t] + decays[t] * last_gae
        advantages[t] = last_gae
    return advantages, advantages + values


class RolloutBuffer:
    """Fixed-size on-policy storage of one rollout; ``valid`` masks steps whose action the env
    ignored (gymnasium's next-step autoreset), so they never enter the loss."""

    def __init__(self, n_steps: int, num_envs: int, device: torch.device) -> None:
        self.n_steps, self.num_envs, self.device = n_steps, num_envs, device
        shape = (n_steps, num_envs)
        self.obs: Obs | None = None
        self.actions: torch.Tensor | None = None
        self.log_probs = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.rewards = torch.zeros(shape, device=device)
        self.dones = torch.zeros(shape, device=device)
        self.truncated = torch.zeros(shape, dtype=torch.bool, device=device)
        self.valid = torch.ones(shape, dtype=torch.bool, device=device)
        # What the env returns (numpy) is staged here and moved to the tensors once per rollout
        # by `seal`: a few small tensor ops per step cost more than the copies they make.
        self._reward = np.zeros(shape, dtype=np.float32)
        self._terminated = np.zeros(shape, dtype=bool)
        self._truncated = np.zeros(shape, dtype=bool)
        self._valid = np.ones(shape, dtype=bool)
        self.advantages = torch.zeros(shape, device=device)
        self.returns = torch.zeros(shape, device=device)

    def _alloc_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros((self.n_steps, *x.shape), dtype=x.dtype, device=self.device)

    def add(
        self,
        step: int,
        obs: Obs,
        action: torch.Tensor,
        log_prob: torch.Tensor,
        value: torch.Tensor,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        valid: np.ndarray | None = None,
    ) -> None:
        if self.obs is None:  # allocate lazily from the first observation's shapes and dtypes
            if isinstance(obs, dict):
                self.obs = {k: self._alloc_like(v) for k, v in obs.items()}
            else:
                self.obs = self._alloc_like(obs)
            self.actions = self._alloc_like(action)
        if isinstance(obs, dict):
            for k, v in obs.items():
                self.obs[k][step].copy_(v)
        else:
            self.obs[step].copy_(obs)
        self.actions[step].copy_(action)
        self.log_probs[step] = log_prob
        self.values[step] = value
        self._reward[step] = reward
        self._terminated[step] = terminated
        self._truncated[step] = truncated
        self._valid[step] = True if valid is None else valid

    def seal(self) -> None:
        """Move the staged rewards, episode ends and validity to the tensors (after the last
        `add` of a rollout): ``dones`` = terminated or truncated, ``truncated`` = truncated and
        not terminated (the steps bootstrapped from V(final observation))."""

        def put(dst: torch.Tensor, src: np.ndarray) -> None:
            dst.copy_(torch.from_numpy(src))

        put(self.rewards, self._reward)
        put(self.dones, (self._terminated | self._truncated).astype(np.float32))
        put(self.truncated, self._truncated & ~self._terminated)
        put(self.valid, self._valid)

    def flat(self) -> tuple[dict[str, torch.Tensor | dict[str, torch.Tensor]], torch.Tensor]:
        """Every field flattened over (time, env) as views (no copy), and the row indices of
        the valid transitions, which minibatches are drawn from."""

        def f(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(-1, *x.shape[2:])

        obs = {k: f(v) for k, v in self.obs.items()} if isinstance(self.obs, dict) else f(self.obs)
        data = {
            "obs": obs,
            "actions": f(self.actions),
            "log_probs": f(self.log_probs),
            "values": f(self.values),
            "advantages": f(self.advantages),
            "returns": f(self.returns),
        }
        return data, self.valid.reshape(-1).nonzero().squeeze(1)


def minibatches(
    size: int, n_minibatches: int, generator: torch.Generator | None, device: torch.device
) -> Iterator[torch.Tensor]:
    """Shuffled index batches covering ``size`` samples in ``n_minibatches`` near-equal parts
    (fewer when a rollout has fewer valid samples than that: never an empty minibatch)."""
    perm = torch.randperm(size, generator=generator).to(device)
    yield from torch.tensor_split(perm, max(1, min(n_minibatches, size)))


def take(batch: dict, idx: torch.Tensor) -> dict:
    """Rows ``idx`` of every tensor in a flat batch (observation dicts included): the one copy
    a minibatch costs."""
    return {k: _index(v, idx) for k, v in batch.items()}
