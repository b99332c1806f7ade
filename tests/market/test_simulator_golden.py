"""The simulator's every output, bit for bit, against digests recorded from the NumPy simulator
before its step was compiled (2026-12-06): any change to a fill, a cost, an observation, an
info entry or a reward of any trading profile shows up here, named by config and key.

The digests are SHA-256 over the raw bytes of each output, step after step, for 320 steps of
16 envs (episodes of 48 bars, so resets and episode summaries are included). Regenerate them
only for an intended change of the simulator's numbers, and say why in the commit:

    .venv/bin/python -m tests.market.test_simulator_golden --write
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from adan.envs import VecTradingEnv
from adan.market import TradingConfig
from adan.market.spec import MarketSpec
from adan.rewards import AdaptiveReward, SimpleReward
from tests.market.profiles import trading_profile

GOLDEN = Path(__file__).with_name("simulator_golden.json")
ROOT = Path(__file__).resolve().parents[2]
STEPS, NUM_ENVS, EPISODE = 320, 16, 48

# name: (trading=<profile> or None for TradingConfig(), its overrides, reward, autoreset)
CONFIGS = {
    "constructor": (None, (), "simple", "NextStep"),
    "default": ("default", (), "adaptive", "NextStep"),
    "default_every_bar": ("default", ("trading.execution.rebalance_band=0.0",), "simple",
                          "SameStep"),
    "long_only_discrete": ("default", ("trading.allow_short=false",
                                       "trading.action_mode=discrete"), "simple", "NextStep"),
    "smoothing_leverage": ("default", ("trading.action_smoothing=0.5",
                                       "trading.max_leverage=2.0"), "adaptive", "NextStep"),
    "limit_orders": ("default", ("trading.execution.order_type=limit",
                                 "trading.execution.participation=0.1",
                                 "trading.execution.spread=estimated",
                                 "trading.execution.impact_coef=0.5"), "simple", "NextStep"),
    "market_costs": ("default", ("trading.execution.spread=estimated",
                                 "trading.execution.impact_coef=0.5"), "adaptive", "NextStep"),
    "conservative": ("conservative", (), "adaptive", "NextStep"),
    "moderate": ("moderate", (), "adaptive", "SameStep"),
    "aggressive": ("aggressive", (), "adaptive", "NextStep"),
    "multi_profile": ("multi_profile", (), "adaptive", "NextStep"),
}  # fmt: skip


@lru_cache(maxsize=1)
def _market():
    from adan.data import MarketPipeline, SyntheticMarket
    from adan.data.features import DEFAULT_FEATURES

    bars = SyntheticMarket(n_assets=2, n_bars=3000, seed=7).generate()
    split = {"train": 0.8, "val": 0.1, "test": 0.1}
    return MarketPipeline(bars, list(DEFAULT_FEATURES), split).build()["train"]


def _trading(profile: str | None, overrides: tuple[str, ...]) -> TradingConfig:
    return TradingConfig() if profile is None else trading_profile(profile, *overrides)


def _leaves(prefix: str, value, out: dict) -> None:
    """Flatten nested info/obs into {dotted key: array}, dropping wall-clock time."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _leaves(f"{prefix}.{key}" if prefix else key, inner, out)
    elif not prefix.endswith("episode.t"):
        arr = np.asarray(value)
        if arr.dtype != object:
            out[prefix] = arr


def digests(name: str) -> dict[str, str]:
    """SHA-256 per output key over STEPS steps of config ``name``."""
    profile, overrides, reward_name, autoreset = CONFIGS[name]
    trading = _trading(profile, overrides)
    reward = SimpleReward() if reward_name == "simple" else AdaptiveReward()
    env = VecTradingEnv(
        MarketSpec.of(_market(), trading, window=16),
        reward,
        num_envs=NUM_ENVS,
        episode_length=EPISODE,
        seed=0,
        autoreset_mode=autoreset,
    )
    obs, _ = env.reset(seed=11)
    rng = np.random.default_rng(3)
    hashes: dict[str, hashlib._Hash] = {}

    def feed(group: str, value) -> None:
        flat: dict[str, np.ndarray] = {}
        _leaves(group, value, flat)
        for key, arr in flat.items():
            h = hashes.setdefault(key, hashlib.sha256())
            h.update(str(arr.dtype).encode() + str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())

    feed("obs", obs)
    for _ in range(STEPS):
        if trading.action_mode == "discrete":
            high = env.single_action_space.nvec
            action = rng.integers(0, high, (NUM_ENVS, len(high)))
        else:
            action = rng.uniform(-1.2, 1.2, (NUM_ENVS, 2)).astype(np.float32)
        obs, reward_, terminated, truncated, info = env.step(action)
        info.pop("final_obs", None)
        info.pop("_final_obs", None)
        final = info.pop("final_info", None)
        feed("obs", obs)
        feed("reward", reward_)
        feed("terminated", terminated)
        feed("truncated", truncated)
        feed("info", info)
        if final is not None:
            feed("final_info", final)
    feed("desk_stats", {k: np.float64(v) for k, v in env.trading_stats().items()})
    return {key: h.hexdigest() for key, h in sorted(hashes.items())}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_output_is_bit_identical_to_the_recorded_simulator(name):
    recorded = json.loads(GOLDEN.read_text())[name]
    now = digests(name)
    changed = sorted(k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k))
    assert not changed, f"{name}: outputs differ from the recorded simulator's: {changed}"


# every branch of adan.market.kernels: borrow and the no-trade band, no band (SameStep),
# estimated spread and impact, pct stops without targets and ATR stops with them, the
# behaviour engine, working orders (participation-capped market orders; limit orders), risk
# limits, profiles mixed in one batch (an env without stops beside ones with them)
UNCOMPILED = ("constructor", "default_every_bar", "market_costs", "aggressive", "moderate",
              "limit_orders", "conservative", "multi_profile")  # fmt: skip


def test_the_kernels_uncompiled_give_the_same_bits():
    """The kernels' Python source run by the interpreter (NUMBA_DISABLE_JIT) matches too: what
    numba compiles is what the source says, and coverage sees the kernels' lines."""
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    cmd = [sys.executable, "-m", "tests.market.test_simulator_golden", "--check", *UNCOMPILED]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.count(": same") == len(UNCOMPILED)


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.write_text(json.dumps({n: digests(n) for n in sorted(CONFIGS)}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
elif __name__ == "__main__" and "--check" in sys.argv:
    recorded = json.loads(GOLDEN.read_text())
    failed = False
    for config in sys.argv[sys.argv.index("--check") + 1 :]:
        now = digests(config)
        changed = sorted(k for k in recorded[config].keys() | now.keys()
                         if recorded[config].get(k) != now.get(k))  # fmt: skip
        print(f"{config}: {'differs in ' + str(changed) if changed else 'same'}")
        failed |= bool(changed)
    sys.exit(1 if failed else 0)
