"""Single trading environment: a gymnasium.Env over a one-env `MarketSimulator`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from adan.envs.rewarded import RewardedMarket
from adan.envs.schema import TradingEnvSchema
from adan.envs.spaces import action_space, observation_space
from adan.envs.validation import ObservationValidator
from adan.market.simulator import MarketSimulator
from adan.market.spec import MarketSpec
from adan.rewards.base import RewardFunction


def _scalars(info: dict[str, Any]) -> dict[str, Any]:
    """Env 0 of a vector-format info, as plain Python scalars (masks dropped): per env [N] -> a
    scalar, per env and asset [N, A] -> a list over assets (``row.tolist()`` gives either)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key[0] == "_":
            continue
        out[key] = _scalars(value) if type(value) is dict else value[0].tolist()
    return out


class TradingEnv(gym.Env):
    """One account trading ``spec`` (a `MarketSpec`); see `MarketSimulator` for timing, actions
    and spaces.

    Observation: dict ``market`` float32 [window, A, F], ``market_<rule>`` per higher timeframe
    of ``data.timeframes`` and ``portfolio`` float32 [A + 2].
    Action: Box [-1, 1]^A (continuous) or MultiDiscrete (discrete), see `adan.envs.spaces`.
    ``reset(seed=s)`` reproduces env i of a `VecTradingEnv` reset with seed ``s - i``.
    Info per step: fee, spread, slippage, turnover, equity, drawdown, reward_components; at
    the end of an episode also ``trading`` (episode metrics). Add gymnasium's
    RecordEpisodeStatistics wrapper for ``episode``.

    The first observation is checked when the env is built (`ObservationValidator`); with
    ``validate_every_step=True`` every observation is; counts in ``observation_checks``.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        spec: MarketSpec,
        reward: RewardFunction,
        episode_length: int = TradingEnvSchema.episode_length,
        seed: int | None = None,
        validate_every_step: bool = TradingEnvSchema.validate_every_step,
    ) -> None:
        self.simulator = MarketSimulator(spec, 1, episode_length, seed)
        self.market = RewardedMarket(self.simulator, reward)  # the reward is the env's
        self.observation_space = observation_space(self.simulator.observation_shapes)
        self.action_space = action_space(spec.trading, spec.data.num_assets)
        self._needs_reset = True
        self.validate_every_step = bool(validate_every_step)
        self.validator = ObservationValidator(self.observation_space)
        self.validator.check(self.simulator.observe(), batched=True)

    @property
    def observation_checks(self) -> dict[str, dict[str, int]]:
        """{key: {checked, nonfinite, out_of_range, bad_shape, bad_dtype}} counts so far."""
        return self.validator.counts

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        obs = self.market.reset(seed=None if seed is None else [seed])
        self._needs_reset = False
        if self.validate_every_step:
            self.validator.check(obs, batched=True)
        return {key: value[0] for key, value in obs.items()}, {}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("TradingEnv.step called before reset() or after the episode ended")
        obs, reward, terminated, truncated, info = self.market.step(np.asarray(action)[None])
        if self.validate_every_step:
            self.validator.check(obs, batched=True)
        done_t, done_tr = bool(terminated[0]), bool(truncated[0])
        self._needs_reset = done_t or done_tr
        info.pop("episode", None)
        info.pop("_episode", None)
        single_obs = {key: value[0] for key, value in obs.items()}
        return single_obs, float(reward[0]), done_t, done_tr, _scalars(info)

    def get_state(self) -> dict[str, Any]:
        return {"simulator": self.market.get_state(), "needs_reset": self._needs_reset}

    def set_state(self, state: dict[str, Any]) -> None:
        self.market.set_state(state["simulator"])
        self._needs_reset = bool(state["needs_reset"])
