"""Proximal Policy Optimisation as a LightningModule.

One Lightning "epoch" is one PPO iteration: collect ``n_steps`` from every environment, compute
GAE(λ), then run ``n_epochs`` passes of clipped-surrogate minibatch updates, all inside a single
manually optimised ``training_step`` (Lightning's automatic loop costs 1.6–2.8 ms per minibatch
here). Checkpoints therefore fall between iterations and carry the environment and RNG state, so
a resumed run continues exactly where it stopped.

Works with any gymnasium VectorEnv, with next-step (gymnasium's default) or same-step autoreset.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytorch_lightning as pl
import torch
from gymnasium.vector import AutoresetMode

from adan.agents.inference import small_batch_inference
from adan.agents.rollout import RolloutBuffer, compute_gae, minibatches, obs_to_tensor, take
from adan.agents.schema import PPOConfig
from adan.checkpoint_format import STATE_KEY
from adan.envs.state import capture_env_state, restore_env_state
from adan.errors import CheckpointError, ConfigError, DivergenceError

# No evaluator means no validation loop; Lightning would warn about the empty loader.
warnings.filterwarnings("ignore", message="Total length of `list` across ranks is zero")

PolicyFactory = Callable[[gym.Space, gym.Space], torch.nn.Module]
Evaluator = Callable[[torch.nn.Module], dict[str, float]]

# Bounds of the entropy floor's coefficient: 1e-6 is "off" next to a unit-scale policy gradient
# (normalised advantages), 10 outweighs it many times over.
LOG_FLOOR_COEF_MIN, LOG_FLOOR_COEF_MAX = math.log(1e-6), math.log(10.0)


class PPO(pl.LightningModule):
    """PPO-clip with GAE, value clipping, entropy bonus, gradient clipping, linear annealing,
    an optional target-KL stop, an entropy floor and bootstrapping of truncated episodes.

    Args:
        env: a gymnasium VectorEnv (training environments).
        policy: factory ``(observation_space, action_space) -> ActorCritic``.
        evaluator: optional callable scoring the policy on held-out data; run by Lightning's
            validation loop, its metrics are logged under ``val/``.
        total_timesteps: environment steps to train for (rounded down to whole iterations).
        n_steps: steps per environment per rollout.
        n_minibatches / n_epochs: minibatches per pass and passes over each rollout.
        target_kl: stop the update once a minibatch's approx. KL exceeds 1.5 × this
            (Stable-Baselines3's rule); ``None`` disables it.
        clip_range_vf: clip the value update around the old value (``None``: unclipped).
        ent_coef / ent_coef_final: the entropy bonus goes linearly from one to the other over
            ``total_timesteps`` (``ent_coef_final=None``: constant).
        entropy_floor: for Discrete and MultiDiscrete actions, a floor on the policy's mean
            entropy as a fraction of the uniform policy's, ``H* = entropy_floor * sum(log n_i)``
            (``None``: off; a no-op for Box actions, whose entropy has no maximum to scale).
            It is a Lagrangian constraint, as SAC's automatic temperature: the bonus gets an
            extra coefficient ``beta = exp(log_beta)``, and after each minibatch
            ``log_beta += entropy_floor_lr * (H* - H) / sum(log n_i)`` (``H``: the minibatch's
            mean entropy), clipped to [1e-6, 10]. ``beta`` grows geometrically while the
            entropy is below the floor and decays towards 0 above it, so a slack floor leaves
            the update as it was.
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        policy: PolicyFactory,
        evaluator: Evaluator | None = None,
        total_timesteps: int = PPOConfig.total_timesteps,
        n_steps: int = PPOConfig.n_steps,
        n_minibatches: int = PPOConfig.n_minibatches,
        n_epochs: int = PPOConfig.n_epochs,
        learning_rate: float = PPOConfig.learning_rate,
        anneal_lr: bool = PPOConfig.anneal_lr,
        gamma: float = PPOConfig.gamma,
        gae_lambda: float = PPOConfig.gae_lambda,
        clip_range: float = PPOConfig.clip_range,
        anneal_clip_range: bool = PPOConfig.anneal_clip_range,
        clip_range_vf: float | None = PPOConfig.clip_range_vf,
        normalize_advantage: bool = PPOConfig.normalize_advantage,
        ent_coef: float = PPOConfig.ent_coef,
        ent_coef_final: float | None = PPOConfig.ent_coef_final,
        entropy_floor: float | None = PPOConfig.entropy_floor,
        entropy_floor_lr: float = PPOConfig.entropy_floor_lr,
        vf_coef: float = PPOConfig.vf_coef,
        max_grad_norm: float = PPOConfig.max_grad_norm,
        target_kl: float | None = PPOConfig.target_kl,
        adam_eps: float = PPOConfig.adam_eps,
        seed: int = PPOConfig.seed,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["env", "policy", "evaluator"])
        self.automatic_optimization = False
        self.env = env
        self.num_envs = env.num_envs
        self.policy = policy(env.single_observation_space, env.single_action_space)
        self.evaluator = evaluator
        self.batch_per_rollout = n_steps * self.num_envs
        self.num_updates = max(1, total_timesteps // self.batch_per_rollout)
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self.autoreset_mode = AutoresetMode(mode)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("PPO needs an autoresetting VectorEnv (NextStep or SameStep)")
        self.env_steps = 0
        self.completed_episodes: list[dict[str, float]] = []  # read by callbacks each iteration
        self._obs: Any = None
        self._prev_done = np.zeros(self.num_envs, dtype=bool)
        self._buffer: RolloutBuffer | None = None
        self._reward_sums: dict[str, tuple[float, int]] = {}
        self.iteration_seconds = 0.0  # time in rollouts and updates (this process)
        self.validation_seconds = 0.0  # time in the evaluator (this process)
        self._shuffle = torch.Generator().manual_seed(seed)
        self.uniform_entropy = uniform_entropy(env.single_action_space)
        self.entropy_target: float | None = None  # nats; None: no floor
        if entropy_floor is not None and self.uniform_entropy:
            self.entropy_target = entropy_floor * self.uniform_entropy
        self.log_floor_coef = LOG_FLOOR_COEF_MIN

    @property
    def floor_coef(self) -> float:
        """The entropy floor's coefficient ``beta`` (0 without a floor)."""
        return math.exp(self.log_floor_coef) if self.entropy_target is not None else 0.0

    def _floor_step(self, entropy: float) -> None:
        """Dual step on ``log beta`` from a minibatch's mean entropy (averaged over DDP
        processes, so they keep one ``beta``)."""
        if self._trainer is not None and self.trainer.world_size > 1:
            local = torch.tensor(entropy, device=self.device)
            entropy = float(self.trainer.strategy.reduce(local, reduce_op="mean"))
        gap = (self.entropy_target - entropy) / self.uniform_entropy
        step = self.log_floor_coef + self.hparams.entropy_floor_lr * gap
        self.log_floor_coef = min(max(step, LOG_FLOOR_COEF_MIN), LOG_FLOOR_COEF_MAX)

    # ---------------------------------------------------------------- Lightning plumbing
    def configure_optimizers(self) -> torch.optim.Optimizer:
        # The fused kernel (CPU and CUDA) saves ~20% of a small model's update step, but
        # Lightning's mixed-precision plugin cannot clip gradients of a fused optimizer.
        mixed = "mixed" in str(self.trainer.precision) if self._trainer is not None else False
        return torch.optim.Adam(
            self.policy.parameters(),
            lr=self.hparams.learning_rate,
            eps=self.hparams.adam_eps,
            fused=not mixed,
            foreach=True if mixed else None,
        )

    def train_dataloader(self) -> list[int]:
        return [0]  # one batch per epoch: the batch is collected from the env in training_step

    def val_dataloader(self) -> list[int]:
        return [0] if self.evaluator is not None else []

    def on_fit_start(self) -> None:
        if self._obs is None:  # a fresh run; a resumed one restored _obs from its checkpoint
            # Under DDP every process must collect different experience: offset the seeds.
            rank = self.global_rank
            seed = self.hparams.seed + rank * 100_003
            if rank:
                torch.manual_seed(seed)
                self._shuffle.manual_seed(seed)
            self._obs, _ = self.env.reset(seed=seed)
            self._prev_done[:] = False

    # ---------------------------------------------------------------- rollout
    @torch.no_grad()
    def collect_rollout(self) -> RolloutBuffer:
        """Run the current policy for ``n_steps`` in every env; fill the buffer and GAE."""
        hp = self.hparams
        if self._buffer is None:
            self._buffer = RolloutBuffer(hp.n_steps, self.num_envs, self.device)
        buf = self._buffer
        next_step = self.autoreset_mode == AutoresetMode.NEXT_STEP
        self.policy.train(False)
        # once per rollout: each switch of the convolution backend costs a few microseconds
        with small_batch_inference(self.num_envs, self.device):
            for step in range(hp.n_steps):
                self._rollout_step(buf, step, next_step)
        # env.step calls × envs (autoreset steps included), summed over DDP processes
        world = self._trainer.world_size if self._trainer is not None else 1
        self.env_steps += self.batch_per_rollout * world

        buf.seal()
        last_value = self.policy.value(obs_to_tensor(self._obs, self.device)).float()
        self._require_finite("rewards", buf.rewards, "the environment's rewards (reward.scale?)")
        self._require_finite("values", buf.values, "the critic's values")
        if next_step:
            # A truncated step's next observation is the final one (the reset comes a step
            # later), so its value is already the next row of the buffer: bootstrap from it.
            next_values = torch.cat([buf.values[1:], last_value[None]], dim=0)
            buf.rewards += hp.gamma * next_values * buf.truncated
        buf.advantages, buf.returns = compute_gae(
            buf.rewards, buf.values, buf.dones, last_value, hp.gamma, hp.gae_lambda
        )
        self.policy.train(True)
        return buf

    def _rollout_step(self, buf: RolloutBuffer, step: int, next_step: bool) -> None:
        """Act in every env once and store the transition at ``step`` of the buffer."""
        obs_t = obs_to_tensor(self._obs, self.device)
        action, log_prob, value = self.policy(obs_t)
        env_action = self.policy.to_env_action(action)
        if not np.isfinite(env_action).all():
            self._diverged("the policy's actions", f"step {step} of the rollout")
        obs, reward, terminated, truncated, info = self.env.step(env_action)
        reward = np.asarray(reward, dtype=np.float32)
        if not next_step and np.any(truncated & ~terminated):
            reward = reward + self.hparams.gamma * self._final_values(info, truncated & ~terminated)
        valid = ~self._prev_done if next_step else None
        buf.add(step, obs_t, action, log_prob, value, reward, terminated, truncated, valid)
        self._record_episodes(info)
        self._record_reward_components(info, valid)
        self._obs = obs
        self._prev_done = np.logical_or(terminated, truncated)

    def _final_values(self, info: dict, mask: np.ndarray) -> np.ndarray:
        """V(final observation) of envs truncated this step (same-step autoreset only)."""
        idx = np.flatnonzero(mask)
        final = info["final_obs"]
        if isinstance(final[idx[0]], dict):
            batch = {
                k: np.stack([np.asarray(final[i][k], np.float32) for i in idx])
                for k in final[idx[0]]
            }
        else:
            batch = np.stack([np.asarray(final[i], np.float32) for i in idx])
        values = self.policy.value(obs_to_tensor(batch, self.device)).float().cpu().numpy()
        out = np.zeros(self.num_envs, dtype=np.float32)
        out[idx] = values
        return out

    def _record_episodes(self, info: dict) -> None:
        """Keep finished episodes' statistics (RecordEpisodeStatistics format + trading)."""
        source = info.get("final_info", info) if "episode" not in info else info
        if "episode" not in source:
            return
        done = np.flatnonzero(source["_episode"])
        trading = source.get("trading")
        for i in done:
            ep = {
                "return": float(source["episode"]["r"][i]),
                "length": float(source["episode"]["l"][i]),
            }
            if trading is not None and source["_trading"][i]:
                ep.update({k: float(v[i]) for k, v in trading.items()})
            self.completed_episodes.append(ep)

    def _record_reward_components(self, info: dict, valid: np.ndarray | None) -> None:
        """Running sums of the per-step reward components the env reports (if any)."""
        comps = info.get("reward_components")
        if not comps:
            return
        for name, value in comps.items():
            if name.startswith("_"):
                continue
            v = np.asarray(value, dtype=np.float64)
            total, count = self._reward_sums.get(name, (0.0, 0))
            if valid is not None:
                v = v[valid]
            self._reward_sums[name] = (total + float(v.sum()), count + v.size)

    # ---------------------------------------------------------------- update
    def training_step(self, batch: Any, batch_idx: int) -> None:
        hp = self.hparams
        t0 = time.perf_counter()
        # fraction of training already done (capped: trainer.max_epochs may exceed the plan)
        progress = min(1.0, self.current_epoch / self.num_updates)
        lr = hp.learning_rate * (1.0 - progress) if hp.anneal_lr else hp.learning_rate
        clip = hp.clip_range * (1.0 - progress) if hp.anneal_clip_range else hp.clip_range
        ent_coef = hp.ent_coef
        if hp.ent_coef_final is not None:
            ent_coef = hp.ent_coef * (1.0 - progress) + hp.ent_coef_final * progress
        opt = self.optimizers()
        for group in opt.param_groups:
            group["lr"] = lr

        self.completed_episodes = []
        self._reward_sums: dict[str, tuple[float, int]] = {}
        buf = self.collect_rollout()
        t_rollout = time.perf_counter() - t0
        data, valid_rows = buf.flat()
        n = len(valid_rows)
        if n == 0:  # every env's episodes ended at every step
            raise ConfigError(
                f"agent.n_steps={hp.n_steps} gave a rollout without a transition at iteration "
                f"{self.current_epoch} (every step was an autoreset step): raise agent.n_steps"
            )
        stats: dict[str, list[float]] = {
            k: [] for k in ("pg", "vf", "ent", "kl", "clipfrac", "beta")
        }
        stopped_early = False
        for _ in range(hp.n_epochs):
            for idx in minibatches(n, hp.n_minibatches, self._shuffle, self.device):
                mb = take(data, valid_rows[idx])
                log_prob, entropy, value = self.policy.evaluate_actions(mb["obs"], mb["actions"])
                log_ratio = log_prob - mb["log_probs"]
                ratio = log_ratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean()  # Schulman's k3 estimator
                    stats["kl"].append(approx_kl.item())
                    stats["clipfrac"].append(((ratio - 1).abs() > clip).float().mean().item())
                if hp.target_kl is not None and approx_kl.item() > 1.5 * hp.target_kl:
                    stopped_early = True
                    break
                adv = mb["advantages"]
                if hp.normalize_advantage and adv.numel() > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
                value = value.float()
                if hp.clip_range_vf is None:
                    vf_loss = 0.5 * (mb["returns"] - value).pow(2).mean()
                else:
                    v_clipped = mb["values"] + (value - mb["values"]).clamp(
                        -hp.clip_range_vf, hp.clip_range_vf
                    )
                    vf_loss = (
                        0.5
                        * torch.max(
                            (mb["returns"] - value).pow(2), (mb["returns"] - v_clipped).pow(2)
                        ).mean()
                    )
                ent = entropy.mean()
                beta = self.floor_coef
                loss = pg_loss - (ent_coef + beta) * ent + hp.vf_coef * vf_loss
                terms = (pg_loss.item(), vf_loss.item(), ent.item())  # logged below
                if not math.isfinite(sum(terms)):
                    self._diverged(
                        "the loss",
                        f"policy loss {terms[0]:.4g}, value loss {terms[1]:.4g}, entropy "
                        f"{terms[2]:.4g}{self._bad_gradients(' after a step whose gradient')}",
                    )
                opt.zero_grad(set_to_none=True)
                self.manual_backward(loss)
                self.clip_gradients(
                    opt, gradient_clip_val=hp.max_grad_norm, gradient_clip_algorithm="norm"
                )
                opt.step()
                if self.entropy_target is not None:
                    self._floor_step(terms[2])
                for key, value in zip(("pg", "vf", "ent", "beta"), (*terms, beta), strict=True):
                    stats[key].append(value)
            if stopped_early:
                break

        self._require_finite_parameters()
        y, y_hat = data["returns"][valid_rows], data["values"][valid_rows]
        var_y = torch.var(y)
        explained_var = float("nan") if var_y == 0 else float(1 - torch.var(y - y_hat) / var_y)
        elapsed = time.perf_counter() - t0
        self.iteration_seconds += elapsed
        floor_coef = _mean(stats["beta"]) if stats["beta"] else self.floor_coef
        metrics = {
            "train/policy_loss": _mean(stats["pg"]),
            "train/value_loss": _mean(stats["vf"]),
            "train/entropy": _mean(stats["ent"]),
            "train/ent_coef": ent_coef + floor_coef,  # mean coefficient of this update's losses
            "train/approx_kl": _mean(stats["kl"]),
            "train/clipfrac": _mean(stats["clipfrac"]),
            "train/explained_variance": explained_var,
            "train/learning_rate": lr,
            "train/clip_range": clip,
            "train/early_stop": float(stopped_early),
            "time/sps": self.batch_per_rollout / elapsed,
            "time/rollout_fraction": t_rollout / elapsed,
            "time/env_steps": float(self.env_steps),
        }
        if self.entropy_target is not None:
            metrics["train/entropy_floor_coef"] = floor_coef
        for name, (total, count) in self._reward_sums.items():
            metrics[f"reward/{name}"] = total / max(count, 1)
        if self.completed_episodes:
            metrics["train/episode_return"] = _mean([e["return"] for e in self.completed_episodes])
            metrics["train/episode_length"] = _mean([e["length"] for e in self.completed_episodes])
        self.log_metrics(metrics)
        # Only the progress bar goes through Lightning's (slow, ~0.8 ms per key) result store.
        bar = {"steps": float(self.env_steps), "sps": metrics["time/sps"]}
        if "train/episode_return" in metrics:
            bar["ep_ret"] = metrics["train/episode_return"]
        self.log_dict(bar, prog_bar=True, on_step=False, on_epoch=True, logger=False, batch_size=1)

    # ---------------------------------------------------------------- divergence
    def _diverged(self, quantity: str, detail: str) -> None:
        raise DivergenceError(
            f"training diverged at iteration {self.current_epoch} "
            f"(env step {self.env_steps:,}): {quantity} is not finite ({detail}). Nothing of "
            "this iteration was saved. Lower agent.learning_rate, check reward.scale, or keep "
            "agent.max_grad_norm small"
        )

    def _require_finite(self, quantity: str, x: torch.Tensor, what: str) -> None:
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            self._diverged(quantity, f"{bad} of {x.numel()} values of {what}")

    def _bad_gradients(self, prefix: str) -> str:
        """``"<prefix> was not finite in <names>"``, or "" (read only once training failed)."""
        names = [
            n
            for n, p in self.policy.named_parameters()
            if p.grad is not None and not bool(torch.isfinite(p.grad).all())
        ]
        return f"{prefix} was not finite in {', '.join(names[:4])}" if names else ""

    def _require_finite_parameters(self) -> None:
        """Once per iteration, before anything of it can be saved."""
        names = [n for n, p in self.policy.named_parameters() if not bool(torch.isfinite(p).all())]
        if names:
            self._diverged(
                "the policy's parameters",
                f"{', '.join(names[:4])}{self._bad_gradients('; the last gradient')}",
            )

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Send metrics straight to every logger, indexed by environment steps (the x-axis RL
        curves are read against)."""
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.env_steps)

    # ---------------------------------------------------------------- validation
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        t0 = time.perf_counter()
        # in fp32 whatever trainer.precision: val/* then equal eval.py's scores of the weights
        with torch.autocast(self.device.type, enabled=False):
            values = {f"val/{k}": float(v) for k, v in self.evaluator(self.policy).items()}
        self.validation_seconds += time.perf_counter() - t0
        # Lightning's store feeds the monitoring callbacks (checkpoint, early stopping); the
        # loggers get the values at the env step, on the same x-axis as ``train/*``.
        self.log_dict(values, batch_size=1, logger=False)
        self.log_metrics(values)

    # ---------------------------------------------------------------- checkpoint state
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store what the model's state_dict does not: env, RNGs, counters and the entropy
        floor's coefficient."""
        checkpoint[STATE_KEY] = {
            "env": _env_state(self.env),
            "obs": self._obs,
            "prev_done": self._prev_done.copy(),
            "env_steps": self.env_steps,
            "log_floor_coef": self.log_floor_coef,
            "shuffle_rng": self._shuffle.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(STATE_KEY)
        if state is None:
            return
        self.env = _restore_env(self.env, state["env"])
        self._obs = state["obs"]
        self._prev_done = state["prev_done"]
        self.env_steps = state["env_steps"]
        self.log_floor_coef = state.get("log_floor_coef", LOG_FLOOR_COEF_MIN)  # older files
        self._shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def uniform_entropy(space: gym.Space) -> float | None:
    """Entropy of the uniform policy over a Discrete or MultiDiscrete space (sum of log n_i);
    None for any other space."""
    if isinstance(space, gym.spaces.Discrete):
        return math.log(int(space.n))
    if isinstance(space, gym.spaces.MultiDiscrete):
        return float(np.log(space.nvec.astype(np.float64)).sum())
    return None


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


def _env_state(env: gym.vector.VectorEnv) -> Any:
    """Our envs expose get_state(); any other gymnasium VectorEnv is captured as its plain
    attribute values (never pickled: a checkpoint must not hold code)."""
    if hasattr(env, "get_state"):
        return {"kind": "state", "state": env.get_state()}
    return {"kind": "attributes", "state": capture_env_state(env)}


def _restore_env(env: gym.vector.VectorEnv, saved: dict) -> gym.vector.VectorEnv:
    """The env, restored in place to its saved state."""
    if saved["kind"] == "state":
        env.set_state(saved["state"])
    elif saved["kind"] == "attributes":
        restore_env_state(env, saved["state"])
    else:
        raise CheckpointError(
            f"the checkpoint stores its environment as {saved['kind']!r}, which would run code "
            "from the file to restore; ADAN does not load it"
        )
    return env
