"""Per-env random streams drawn for the whole batch at once (counter-based SplitMix64).

One ``np.random.Generator`` per env would need a Python loop over the envs that reset. Here
env i owns the SplitMix64 stream keyed by its seed: draw n of env i is ``mix(key_i + n * g)``,
so a draw for any subset of envs is a handful of array operations, the state is two uint64
arrays (checkpointed exactly) and env i seeded with ``s`` gives the same numbers whether it
lives alone or inside a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_KEY_SALT = np.uint64(0x5851F42D4C957F2D)
_MASK64 = (1 << 64) - 1

SeedLike = int | Sequence[int | None] | np.ndarray | None


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser, applied elementwise to uint64 values (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _entropy() -> int:
    return int(np.random.SeedSequence().entropy) & _MASK64


class BatchRNG:
    """N independent, reproducible random streams; env i seeded with ``s`` draws the same
    numbers as a lone env seeded with ``s``."""

    def __init__(self, num_envs: int, seed: SeedLike = None) -> None:
        self.num_envs = num_envs
        self.key = np.zeros(num_envs, dtype=np.uint64)
        self.counter = np.zeros(num_envs, dtype=np.uint64)
        self.seed(np.arange(num_envs), seed)

    def seed(self, idx: np.ndarray, seed: SeedLike) -> None:
        """Re-key envs ``idx``: an int ``s`` gives env i the seed ``s + i`` (as gymnasium's
        vector envs do); a sequence gives one seed per env in ``idx``; None draws entropy."""
        idx = np.asarray(idx, dtype=np.int64)
        if seed is None or isinstance(seed, int | np.integer):
            base = _entropy() if seed is None else int(seed) & _MASK64
            with np.errstate(over="ignore"):
                seeds = idx.astype(np.uint64) + np.uint64(base)
        else:
            values = list(seed)
            if len(values) != len(idx):
                raise ValueError(f"got {len(values)} seeds for {len(idx)} envs")
            seeds = np.array(
                [(_entropy() if s is None else int(s)) & _MASK64 for s in values], dtype=np.uint64
            )
        self.key[idx] = splitmix64(seeds ^ _KEY_SALT)
        self.counter[idx] = 0

    def bits(self, idx: np.ndarray) -> np.ndarray:
        """Next 64 random bits of each env in ``idx`` (uint64 [len(idx)])."""
        self.counter[idx] += np.uint64(1)
        with np.errstate(over="ignore"):
            return splitmix64(self.key[idx] + self.counter[idx] * _GOLDEN)

    def integers(self, idx: np.ndarray, low: int, high: int) -> np.ndarray:
        """One integer in [low, high) per env in ``idx`` (int64; modulo bias < 2**-40)."""
        if high <= low:
            raise ValueError(f"empty range [{low}, {high})")
        return (self.bits(idx) % np.uint64(high - low)).astype(np.int64) + low

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"key": self.key.copy(), "counter": self.counter.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.key = np.asarray(state["key"], dtype=np.uint64).copy()
        self.counter = np.asarray(state["counter"], dtype=np.uint64).copy()
