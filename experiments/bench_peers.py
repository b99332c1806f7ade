"""ADAN against its peers, measured in one sitting: every ratio the README quotes.

Each cell runs in a fresh process with one thread (OMP/MKL/torch), and the repeats are
interleaved: repeat 1 runs every peer cell and every ADAN cell, then repeat 2, ... so a
slower minute of a shared machine falls on both sides. A row's figure is the median over the
repeats, the 1-minute load average beside it (median of the values read before each cell).

Workloads (each side timed the same way; what each includes is in the table):

- env steps, random actions, resets included: gym-anytrading's ``stocks-v0`` (window 32, its
  own GOOGL data; 1 asset x 2 features) against ADAN's env over a random-walk market of the
  same observation size (window 32 x 1 asset x 2 features): one env each; 8 envs each
  (gymnasium's SyncVectorEnv against `VecTradingEnv`); ADAN at N=4096 against one
  gym-anytrading env, and against the memory-write bound of its observation (this machine's
  copy bandwidth / bytes written per env-step).
- ``trading=moderate`` against ``trading=default``: `VecTradingEnv` at N=64 on the default
  synthetic market's train split (cost ratio, lower is better).
- PPO, same work: 8 envs, 128 steps per env per rollout, 8 minibatches, 4 epochs; SB3's
  ``learn()`` against ADAN's rollout+update time (``summary.json`` ``iteration_seconds``) for
  the same env steps; neither side evaluates. (a) stocks-v0, MLP 64-64 tanh actor and critic;
  (b) ADAN's env on its small market (adan/Trading-v0; ADAN: ``data.source.n_bars=4000``),
  ADAN's CustomCNN shared by 64-unit tanh heads on both sides (SB3: as its features
  extractor). ADAN runs its defaults: ``trainer.precision: auto``, which is fp32 for these
  minibatches of 128 rows (bf16-mixed only from 512 rows on a CPU with bf16 units); SB3 runs
  fp32.
- CartPole-v1 to the stop rule (mean deterministic return > 495 over 30 episodes, checked
  every 3072 env steps): the whole process, start to exit, for both
  (`python train.py experiment=cartpole` and `python experiments/sb3_cartpole.py`).

    make bench-peers                             # installs the bench extra, then this
    python experiments/bench_peers.py --repeats 3 [--quick]

Prints the table and writes it to experiments/results/bench_peers.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results" / "bench_peers.md"
WINDOW = 32
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
PPO_STEPS = 8 * 128 * 12  # 12 rollouts of 8 envs x 128 steps


# ------------------------------------------------------------------------------ env cells
def _time_steps(step, seconds: float, batch: int) -> float:
    """env-steps/s of ``step(i)`` called repeatedly for about ``seconds`` (after a warm-up)."""
    for i in range(50):
        step(i)
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for i in range(64):
            step(i)
        calls += 64
        now = time.perf_counter()
        if now >= deadline:
            return calls * batch / (now - start)


def _anytrading(n: int):
    import gym_anytrading  # noqa: F401  (registers stocks-v0)
    import gymnasium as gym
    from gym_anytrading.datasets import STOCKS_GOOGL

    kwargs = {"window_size": WINDOW, "frame_bound": (WINDOW, len(STOCKS_GOOGL))}
    if n == 1:
        return gym.make("stocks-v0", **kwargs)
    return gym.vector.SyncVectorEnv([lambda: gym.make("stocks-v0", **kwargs)] * n)


def cell_anytrading(n: int, seconds: float) -> float:
    import numpy as np

    env = _anytrading(n)
    env.reset(seed=0)
    actions = np.random.default_rng(1).integers(0, 2, (64, n))
    if n == 1:

        def step(i: int) -> None:
            _, _, term, trunc, _ = env.step(int(actions[i % 64, 0]))
            if term or trunc:
                env.reset()

        return _time_steps(step, seconds, 1)
    return _time_steps(lambda i: env.step(actions[i % 64]), seconds, n)  # autoresets itself


def _random_walk_spec(assets: int, features: int, trading=None):
    sys.path.insert(0, str(ROOT / "experiments"))
    from bench_env import random_walk_market

    from adan.market.spec import MarketSpec

    return MarketSpec.of(random_walk_market(20_000, assets, features), trading, window=WINDOW)


def cell_adan(n: int, seconds: float) -> float:
    import gymnasium as gym
    import numpy as np

    import adan  # noqa: F401  (registers adan/Trading-v0)
    from adan.envs import VecTradingEnv
    from adan.rewards import SimpleReward

    spec = _random_walk_spec(1, 2)
    actions = np.random.default_rng(1).uniform(-1, 1, (64, n, 1)).astype(np.float32)
    if n == 1:  # through gym.make's wrappers, as the peer
        env = gym.make("adan/Trading-v0", spec=spec, episode_length=512)
        env.reset(seed=0)

        def step(i: int) -> None:
            _, _, term, trunc, _ = env.step(actions[i % 64, 0])
            if term or trunc:
                env.reset()

        return _time_steps(step, seconds, 1)
    vec = VecTradingEnv(spec, SimpleReward(), num_envs=n, episode_length=512, seed=0)
    vec.reset(seed=0)
    return _time_steps(lambda i: vec.step(actions[i % 64]), seconds, n)


def cell_write_bound(n: int, seconds: float) -> float:
    """env-steps/s if producing an observation cost only writing its bytes once: a fresh
    [n, obs] buffer filled by one contiguous copy per step."""
    import numpy as np

    obs_floats = WINDOW * 1 * 2 + 1 + 2  # market window + portfolio (A + 2)
    src = np.random.default_rng(0).standard_normal((n, obs_floats), dtype=np.float32)

    def step(_: int) -> None:
        out = np.empty_like(src)
        np.copyto(out, src)

    return _time_steps(step, seconds, n)


def cell_profile(profile: str, seconds: float) -> float:
    import numpy as np

    sys.path.insert(0, str(ROOT / "experiments"))
    from bench_realism import market, trading

    from adan.envs import VecTradingEnv
    from adan.market.spec import MarketSpec
    from adan.rewards import SimpleReward

    spec = MarketSpec.of(market(), trading(profile), window=WINDOW)
    vec = VecTradingEnv(spec, SimpleReward(), num_envs=64, episode_length=512, seed=0)
    vec.reset(seed=0)
    actions = np.random.default_rng(1).uniform(-1, 1, (64, 64, 2)).astype(np.float32)
    return _time_steps(lambda i: vec.step(actions[i % 64]), seconds, 64)


# ------------------------------------------------------------------------------ PPO cells
def cell_sb3_ppo(steps: int) -> float:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    env = make_vec_env(lambda: _anytrading(1), n_envs=8, seed=0)  # DummyVecEnv, Monitor
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=128, n_epochs=4, seed=0, device="cpu",
                policy_kwargs={"net_arch": [64, 64]})  # fmt: skip
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model.num_timesteps / (time.perf_counter() - start)


def cell_sb3_cnn(steps: int) -> float:
    """SB3's PPO with ADAN's CustomCNN as its shared features extractor and ADAN's heads (64
    tanh each): the network ``model=cnn`` trains, on adan/Trading-v0's small market, 8 envs."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    import adan  # noqa: F401
    from adan.models import CustomCNN

    class AdanCNN(BaseFeaturesExtractor):
        def __init__(self, observation_space) -> None:  # noqa: ANN001
            cnn = CustomCNN(observation_space)
            super().__init__(observation_space, cnn.out_dim)
            self.cnn = cnn

        def forward(self, obs):  # noqa: ANN001, ANN202
            return self.cnn(obs)

    torch.set_num_threads(1)
    env = make_vec_env(lambda: gym.make("adan/Trading-v0"), n_envs=8, seed=0)
    kwargs = {"features_extractor_class": AdanCNN, "share_features_extractor": True,
              "net_arch": {"pi": [64], "vf": [64]}, "activation_fn": torch.nn.Tanh}  # fmt: skip
    model = PPO("MultiInputPolicy", env, n_steps=128, batch_size=128, n_epochs=4, seed=0,
                device="cpu", policy_kwargs=kwargs)  # fmt: skip
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model.num_timesteps / (time.perf_counter() - start)


def cell_adan_cnn(steps: int) -> float:
    """``python train.py`` (model=cnn, its defaults: trainer.precision auto) on the same small
    market (4,000 synthetic bars, seed 0), 8 envs, no validation."""
    with tempfile.TemporaryDirectory() as tmp:
        summary, _ = _train(
            [
                "data.source.n_bars=4000",
                "seed=0",
                "env.num_envs=8",
                f"agent.total_timesteps={steps}",
                "trainer.check_val_every_n_epoch=100000",
                "callbacks.model_checkpoint.monitor=null",
            ],
            Path(tmp) / "run",
        )
    return summary["env_steps"] / summary["iteration_seconds"]


def _train(overrides: list[str], out: Path) -> tuple[dict, float]:
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={out}",
           "~callbacks.progress_bar", "logger=csv", *overrides]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / "summary.json").read_text()), wall


def cell_adan_ppo(steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        summary, _ = _train(
            [
                "experiment=cartpole",
                "env.env_id=gym_anytrading:stocks-v0",
                "~callbacks.early_stopping",
                "trainer.check_val_every_n_epoch=100000",
                "eval_episodes=8",
                f"agent.total_timesteps={steps}",
                "agent.n_steps=128",
                "agent.n_minibatches=8",
                "agent.n_epochs=4",
                "agent.learning_rate=3e-4",
                "agent.anneal_clip_range=false",
                "agent.gamma=0.99",
                "agent.gae_lambda=0.95",
                "agent.clip_range_vf=null",
            ],
            Path(tmp) / "run",
        )
    return summary["env_steps"] / summary["iteration_seconds"]


def cell_cartpole(side: str, seed: int) -> float:
    """Whole-process seconds to the stop rule (start to exit)."""
    start = time.perf_counter()
    if side == "sb3":
        cmd = [sys.executable, str(ROOT / "experiments" / "sb3_cartpole.py"), "--seed", str(seed)]
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        _train(["experiment=cartpole", f"seed={seed}"], Path(tmp) / "run")
    return time.perf_counter() - start


CELLS = {
    "anytrading_1": lambda a: cell_anytrading(1, a.seconds),
    "anytrading_8": lambda a: cell_anytrading(8, a.seconds),
    "adan_1": lambda a: cell_adan(1, a.seconds),
    "adan_8": lambda a: cell_adan(8, a.seconds),
    "adan_4096": lambda a: cell_adan(4096, a.seconds),
    "bound_4096": lambda a: cell_write_bound(4096, a.seconds),
    "default_64": lambda a: cell_profile("default", a.seconds),
    "moderate_64": lambda a: cell_profile("moderate", a.seconds),
    "sb3_ppo": lambda a: cell_sb3_ppo(a.ppo_steps),
    "adan_ppo": lambda a: cell_adan_ppo(a.ppo_steps),
    "sb3_cnn": lambda a: cell_sb3_cnn(a.ppo_steps),
    "adan_cnn": lambda a: cell_adan_cnn(a.ppo_steps),
    "sb3_cartpole": lambda a: cell_cartpole("sb3", a.repeat),
    "adan_cartpole": lambda a: cell_cartpole("adan", a.repeat),
}


# ------------------------------------------------------------------------------ the table
def run_cell(name: str, args: argparse.Namespace, repeat: int) -> tuple[float, float]:
    """(value, load average before) of one cell, in a fresh one-thread process."""
    load = os.getloadavg()[0]
    cmd = [sys.executable, __file__, "--cell", name, "--seconds", str(args.seconds),
           "--ppo-steps", str(args.ppo_steps), "--repeat", str(repeat)]  # fmt: skip
    env = {**os.environ, **ONE_THREAD}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"cell {name} failed:\n{proc.stderr[-3000:]}")
    return float(proc.stdout.strip().splitlines()[-1]), load


# (workload, peer cell, ADAN cell, unit, higher is better, target on ADAN / peer, what)
ROWS = [
    ("one env, 1 asset x 2 features, window 32", "anytrading_1", "adan_1", "steps/s", 3.0,
     "gym.make: stocks-v0 / adan/Trading-v0"),
    ("8 envs", "anytrading_8", "adan_8", "steps/s", 5.0,
     "SyncVectorEnv x 8 of stocks-v0 / VecTradingEnv N=8"),
    ("N=4096 against one peer env", "anytrading_1", "adan_4096", "steps/s", 100.0,
     "one stocks-v0 / VecTradingEnv N=4096"),
    ("N=4096 against the memory-write bound", "bound_4096", "adan_4096", "steps/s", 0.5,
     "one copy of the observation's bytes / VecTradingEnv N=4096"),
    ("trading=moderate's cost per step over trading=default's, N=64", "default_64",
     "moderate_64", "cost", 1.5, "default / moderate (ratio: moderate time over default time)"),
    ("PPO, same work (stocks-v0, 8 envs, MLP 64-64)", "sb3_ppo", "adan_ppo", "steps/s", 1.5,
     "SB3 learn() / ADAN rollout+update"),
    ("PPO, same work (adan/Trading-v0, 8 envs, CustomCNN + 64-64 heads)", "sb3_cnn",
     "adan_cnn", "steps/s", 1.5, "SB3 learn() with ADAN's CNN / ADAN rollout+update"),
    ("CartPole to the stop rule, whole process", "sb3_cartpole", "adan_cartpole", "s", 1.0,
     "python sb3_cartpole.py / python train.py experiment=cartpole (ratio: SB3 s over ADAN s)"),
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.5, help="stepping time of an env cell")
    ap.add_argument("--ppo-steps", type=int, default=PPO_STEPS)
    ap.add_argument("--quick", action="store_true", help="0.3 s env cells, 2 PPO rollouts")
    ap.add_argument("--cell", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cell:
        import torch

        torch.set_num_threads(1)
        print(CELLS[args.cell](args))
        return
    if args.quick:
        args.seconds, args.ppo_steps = 0.3, 8 * 128 * 2
    names = list(dict.fromkeys(c for row in ROWS for c in row[1:3]))
    values: dict[str, list[float]] = {n: [] for n in names}
    loads: dict[str, list[float]] = {n: [] for n in names}
    for repeat in range(args.repeats):
        for name in names:
            value, load = run_cell(name, args, repeat)
            values[name].append(value)
            loads[name].append(load)
            print(f"repeat {repeat}: {name} = {value:,.3f} (load {load:.2f})", flush=True)
    med = {n: statistics.median(v) for n, v in values.items()}
    load = {n: statistics.median(v) for n, v in loads.items()}
    lines = [
        "| workload | peer / ADAN | peer | ADAN | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload, peer, ours, unit, target, what in ROWS:
        # "s": lower is better; "cost": ADAN's slowdown of its own baseline (<= target)
        ratio = med[peer] / med[ours] if unit in ("s", "cost") else med[ours] / med[peer]
        met = ratio <= target if unit == "cost" else ratio >= target
        fmt, shown = (",.1f", "s") if unit == "s" else (",.0f", "steps/s")
        lines.append(
            f"| {workload} | {what} | {format(med[peer], fmt)} {shown} (load {load[peer]:.2f}) "
            f"| {format(med[ours], fmt)} {shown} (load {load[ours]:.2f}) | {ratio:.3g}x "
            f"| {'<=' if unit == 'cost' else '>='} {target:.3g}x | {'yes' if met else 'no'} |"
        )
    import numpy as np

    report = "\n".join(
        [
            "# ADAN against its peers, one sitting",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores; Python "
            f"{platform.python_version()}, numpy {np.__version__}. One thread per process; "
            f"medians of {args.repeats} interleaved repeats; load = 1-minute load average "
            "before each cell (median). Produced by `make bench-peers` "
            "(`python experiments/bench_peers.py`).",
            "",
            *lines,
            "",
            "Raw values per repeat: "
            + "; ".join(f"{n} {[round(v, 3) for v in values[n]]}" for n in names),
            "",
        ]
    )
    print(report)
    RESULTS.write_text(report)


if __name__ == "__main__":
    main()
