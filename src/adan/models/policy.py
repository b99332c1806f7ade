"""Actor-critic: a feature extractor (shared or one per head) with policy and value heads.

Box actions get a diagonal Gaussian with a state-independent learned log-std (as in PPO's
paper and Stable-Baselines3); Discrete and MultiDiscrete actions get Categorical heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from adan.models.mlp import activation
from adan.models.schema import HEAD_HIDDEN, ActorCriticSchema

ExtractorFactory = Callable[[gym.Space], nn.Module]


def _mlp(in_dim: int, sizes: Sequence[int], act: type[nn.Module]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    for h in sizes:
        layers += [nn.Linear(in_dim, h), act()]
        in_dim = h
    return nn.Sequential(*layers), in_dim


def _orthogonal_init(module: nn.Module, gain: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv1d):
            nn.init.orthogonal_(m.weight, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _normal_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``Normal(mean, std).log_prob(x)``, element-wise."""
    var = std**2
    return -((x - mean) ** 2) / (2 * var) - std.log() - math.log(math.sqrt(2 * math.pi))


def _sum(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """Sum of per-sub-action terms (one term: itself, no extra op)."""
    it = iter(terms)
    total = next(it)
    for t in it:
        total = total + t
    return total


class ActorCritic(nn.Module):
    """π(a|s) and V(s) over one observation space.

    Args:
        extractor: factory ``space -> nn.Module`` exposing ``out_dim`` (a ``_partial_`` config
            of CustomCNN or MLPExtractor).
        share_extractor: one extractor for both heads (CNN default) or a copy per head
            (the usual choice for small MLP tasks such as CartPole).
        pi_hidden / vf_hidden: extra hidden layers of each head.
        log_std_init: initial log standard deviation of the Gaussian head.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        extractor: ExtractorFactory,
        share_extractor: bool = ActorCriticSchema.share_extractor,
        pi_hidden: Sequence[int] = HEAD_HIDDEN,
        vf_hidden: Sequence[int] = HEAD_HIDDEN,
        activation_fn: str = ActorCriticSchema.activation_fn,
        log_std_init: float = ActorCriticSchema.log_std_init,
        ortho_init: bool = ActorCriticSchema.ortho_init,
        compile: bool = ActorCriticSchema.compile,
    ) -> None:
        super().__init__()
        self.observation_space, self.action_space = observation_space, action_space
        act = activation(activation_fn)
        self.pi_extractor = extractor(observation_space)
        self.vf_extractor = self.pi_extractor if share_extractor else extractor(observation_space)
        self.share_extractor = share_extractor
        pi_body, pi_dim = _mlp(self.pi_extractor.out_dim, pi_hidden, act)
        vf_body, vf_dim = _mlp(self.vf_extractor.out_dim, vf_hidden, act)
        self.pi_body, self.vf_body = pi_body, vf_body
        self.value_head = nn.Linear(vf_dim, 1)

        if isinstance(action_space, gym.spaces.Box):
            self.kind = "gaussian"
            self.action_dim = int(np.prod(action_space.shape))
            self.mean_head = nn.Linear(pi_dim, self.action_dim)
            self.log_std = nn.Parameter(torch.full((self.action_dim,), float(log_std_init)))
        elif isinstance(action_space, gym.spaces.Discrete):
            self.kind = "categorical"
            self.nvec = [int(action_space.n)]
            self.logits_head = nn.Linear(pi_dim, int(action_space.n))
        elif isinstance(action_space, gym.spaces.MultiDiscrete):
            self.kind = "multicategorical"
            self.nvec = [int(n) for n in action_space.nvec.ravel()]
            self.logits_head = nn.Linear(pi_dim, sum(self.nvec))
        else:
            raise ValueError(f"unsupported action space {action_space}")

        if ortho_init:
            # Gains from the PPO implementation details study: √2 for bodies, 0.01 for the policy
            # output (near-uniform initial policy), 1 for the value output.
            for body in (self.pi_extractor, self.vf_extractor, self.pi_body, self.vf_body):
                _orthogonal_init(body, math.sqrt(2))
            _orthogonal_init(self.mean_head if self.kind == "gaussian" else self.logits_head, 0.01)
            _orthogonal_init(self.value_head, 1.0)

        self._features = self._compute_heads
        if compile:
            self._features = torch.compile(self._compute_heads)

    def _compute_heads(self, obs):  # noqa: ANN001 - tensor or dict of tensors
        pi_feat = self.pi_extractor(obs)
        vf_feat = pi_feat if self.share_extractor else self.vf_extractor(obs)
        pi = self.pi_body(pi_feat)
        value = self.value_head(self.vf_body(vf_feat)).squeeze(-1)
        out = self.mean_head(pi) if self.kind == "gaussian" else self.logits_head(pi)
        return out, value

    # The action distributions, written out as torch.distributions computes them (same ops,
    # same order, so the same bits) without building distribution objects: on the small
    # batches of a rollout their construction costs more than the network.
    def _gaussian(self, head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std), as ``Normal(mean, std)`` would hold them."""
        return head.float(), self.log_std.exp().expand_as(head).float()

    def _categorical_logits(self, head: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Normalised log-probabilities of each sub-action, as ``Categorical(logits=)``."""
        return tuple(
            lg - lg.logsumexp(-1, keepdim=True) for lg in torch.split(head.float(), self.nvec, -1)
        )

    def _sample(self, head: torch.Tensor, deterministic: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(flat action, its log-probability): ``sample()`` (or the mode) and ``log_prob``."""
        if self.kind == "gaussian":
            mean, std = self._gaussian(head)
            with torch.no_grad():
                flat = mean.detach() if deterministic else torch.normal(mean, std)
            return flat, _normal_log_prob(flat, mean, std).sum(-1)
        logits = self._categorical_logits(head)
        picks = []
        for lg in logits:
            probs = lg.softmax(-1)
            picks.append(
                probs.argmax(-1)
                if deterministic
                else torch.multinomial(probs, 1, True).T.reshape(probs.shape[:-1])
            )
        flat = torch.stack(picks, dim=-1)
        return flat, _sum(
            lg.gather(-1, flat[:, i : i + 1]).squeeze(-1) for i, lg in enumerate(logits)
        )

    def _log_prob_entropy(
        self, head: torch.Tensor, flat_action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "gaussian":
            mean, std = self._gaussian(head)
            entropy = 0.5 + 0.5 * math.log(2 * math.pi) + torch.log(std)
            return _normal_log_prob(flat_action, mean, std).sum(-1), entropy.sum(-1)
        logits = self._categorical_logits(head)
        logp = _sum(
            lg.gather(-1, flat_action[:, i : i + 1].long()).squeeze(-1)
            for i, lg in enumerate(logits)
        )
        ent = _sum(
            -(lg.clamp(min=torch.finfo(lg.dtype).min) * lg.softmax(-1)).sum(-1) for lg in logits
        )
        return logp, ent

    def _reshape_action(self, action: torch.Tensor) -> torch.Tensor:
        if self.kind == "gaussian":
            return action.reshape(action.shape[0], *self.action_space.shape)
        if self.kind == "multicategorical":
            return action.reshape(action.shape[0], *self.action_space.shape)
        return action.squeeze(-1)

    def _flat_action(self, action: torch.Tensor) -> torch.Tensor:
        if self.kind == "gaussian":
            return action.reshape(action.shape[0], -1)
        if self.kind == "multicategorical":
            return action.reshape(action.shape[0], -1).long()
        return action.reshape(-1, 1).long()

    def forward(self, obs, deterministic: bool = False):  # noqa: ANN001
        """Sample (or take the mode of) an action: returns (action, log_prob, value)."""
        head, value = self._features(obs)
        flat, logp = self._sample(head, deterministic)
        return self._reshape_action(flat), logp, value

    def act(self, obs) -> torch.Tensor:  # noqa: ANN001
        """The deterministic action, as ``forward(obs, deterministic=True)[0]`` (the mean, or
        the most likely choice), from the actor alone: no critic, no distributions. Evaluation
        calls it at every step of its episodes, where the rest of ``forward`` would cost more
        than this."""
        pi = self.pi_body(self.pi_extractor(obs))
        if self.kind == "gaussian":
            return self._reshape_action(self.mean_head(pi).float())
        logits = self.logits_head(pi)
        if self.kind == "categorical":
            return logits.argmax(-1)
        picks = [lg.argmax(-1) for lg in torch.split(logits, self.nvec, dim=-1)]
        return self._reshape_action(torch.stack(picks, dim=-1))

    def evaluate_actions(self, obs, action: torch.Tensor):  # noqa: ANN001
        """(log_prob, entropy, value) of given actions, for the PPO loss."""
        head, value = self._features(obs)
        logp, ent = self._log_prob_entropy(head, self._flat_action(action))
        return logp, ent, value

    def value(self, obs) -> torch.Tensor:  # noqa: ANN001
        return self._features(obs)[1]

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        """Tensor action → numpy for the env; Box actions are clipped to the space bounds."""
        a = action.detach().cpu().numpy()
        if self.kind == "gaussian":
            return np.clip(a, self.action_space.low, self.action_space.high).astype(np.float32)
        return a.astype(np.int64)
