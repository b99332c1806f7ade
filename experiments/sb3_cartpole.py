"""Stable-Baselines3 PPO on CartPole-v1 with rl-zoo's hyperparameters, for comparison.

Same stop rule as `experiment=cartpole`'s early stopping, checked on the same schedule (every
3072 env steps: `trainer.check_val_every_n_epoch=12` iterations of 8 envs x 32 steps): the
deterministic policy's mean return over 30 episodes > 495. Prints one JSON line: env steps;
the seconds of ``learn()`` (``learn``), of the evaluations inside it (``eval``) and of the rest
(``train``: rollouts and updates); the fresh-seed test mean. SB3 is not an ADAN dependency:
``pip install -e '.[bench]'`` installs it (or ``pip install --no-deps stable-baselines3``).

    .venv/bin/python experiments/sb3_cartpole.py --seed 0
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch


def evaluate(model, n: int, seed: int) -> float:
    env = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="sync")
    obs, _ = env.reset(seed=seed)
    returns, running = np.zeros(n), np.ones(n, dtype=bool)
    while running.any():
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, term, trunc, _ = env.step(action)
        returns += np.where(running, reward, 0.0)
        running &= ~(term | trunc)
    return float(returns.mean())


def main() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-stop", action="store_true", help="train the whole 100k budget")
    ap.add_argument("--eval-every", type=int, default=3072, help="env steps between evaluations")
    args = ap.parse_args()
    torch.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=args.seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=lambda p: p * 1e-3,
        clip_range=lambda p: p * 0.2,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )

    class StopWhenSolved(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_seconds, self.solved = 0.0, False

        def _on_rollout_end(self) -> None:
            if not args.no_stop and self.num_timesteps % args.eval_every == 0:
                t = time.perf_counter()
                self.solved = evaluate(self.model, 30, 10_000) > 495
                self.eval_seconds += time.perf_counter() - t

        def _on_step(self) -> bool:
            return not self.solved

    cb = StopWhenSolved()
    t0 = time.perf_counter()
    model.learn(100_000, callback=cb)
    learn = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seed": args.seed,
                "steps": model.num_timesteps,
                "learn": learn,
                "eval": cb.eval_seconds,
                "train": learn - cb.eval_seconds,
                "test": evaluate(model, 30, 20_000),
            }
        )
    )


if __name__ == "__main__":
    main()
