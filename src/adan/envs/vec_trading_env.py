"""Vector trading environment: N accounts in one `MarketSimulator`, gymnasium 1.x VectorEnv."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from adan.envs.rewarded import RewardedMarket
from adan.envs.schema import TradingEnvSchema
from adan.envs.spaces import action_space, observation_space
from adan.envs.validation import ObservationValidator
from adan.market.simulator import MarketSimulator
from adan.market.spec import MarketSpec
from adan.rewards.base import RewardFunction


class VecTradingEnv(VectorEnv):
    """``num_envs`` accounts trading ``spec`` (a `MarketSpec`: the data, the trading rules, the
    window), stepped together by array operations (no per-env Python loop).

    Spaces: ``single_observation_space`` is Dict(market: float32 [window, A, F],
    market_<rule>: float32 [W_rule, A, F_rule] per higher timeframe of ``data.timeframes``,
    portfolio: float32 [A + 2]); ``single_action_space`` Box [-1, 1]^A or MultiDiscrete; the
    batched spaces add a leading [num_envs] axis. Observations are fresh arrays every call.

    Autoreset (``metadata["autoreset_mode"]``, gymnasium 1.x semantics):

    - ``NextStep`` (default): the step that ends an episode returns its last observation; the
      next ``step`` resets that env, ignores its action and returns the first observation of
      the new episode with reward 0 and terminated = truncated = False.
    - ``SameStep``: a finished env is reset within the step; the returned observation is the
      new episode's first one, the last one is in ``info["final_obs"]`` (object array, one
      obs dict per finished env, else None) and its info in ``info["final_info"]``.
    - ``Disabled``: reset finished envs yourself with ``reset(options={"reset_mask": m})``.

    Seeding: ``reset(seed=s)`` gives env i the seed ``s + i`` (a list gives one per env), so
    env i equals ``TradingEnv(...).reset(seed=s + i)``. Info holds per-step arrays (fee,
    spread, slippage, turnover, equity, drawdown, reward_components) and, for envs whose
    episode ended, ``episode`` {r, l, t} and ``trading`` metrics; do not add gymnasium's
    RecordEpisodeStatistics on top (it refuses an existing ``episode`` key).

    Checks: the first observation is checked when the env is built (`ObservationValidator`:
    shape, dtype, finite, range); with ``validate_every_step=True`` (``env.validate_every_step``)
    every returned observation is. Counts in ``observation_checks``.
    """

    def __init__(
        self,
        spec: MarketSpec,
        reward: RewardFunction,
        num_envs: int = TradingEnvSchema.num_envs,
        episode_length: int = TradingEnvSchema.episode_length,
        seed: int | None = None,
        autoreset_mode: str | AutoresetMode = TradingEnvSchema.autoreset_mode,
        validate_every_step: bool = TradingEnvSchema.validate_every_step,
    ) -> None:
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {"autoreset_mode": self.autoreset_mode, "render_modes": []}
        self.simulator = MarketSimulator(spec, num_envs, episode_length, seed)
        self.market = RewardedMarket(self.simulator, reward)  # the reward is the env's
        self.num_envs = int(num_envs)
        self.single_observation_space = observation_space(self.simulator.observation_shapes)
        self.single_action_space = action_space(spec.trading, spec.data.num_assets)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self.validate_every_step = bool(validate_every_step)
        self.validator = ObservationValidator(self.single_observation_space)
        self.validator.check(self.simulator.observe(), batched=True)

    @property
    def profile_names(self) -> tuple[str, ...]:
        """The trading profiles, in the order of the ``profile`` index episodes report."""
        return tuple(self.simulator.profile_names)

    def trading_stats(self) -> dict[str, float]:
        """The trading desk's running statistics for logging (``dbe/``, ``risk/``,
        ``execution/`` keys; empty when no such stage is configured)."""
        return self.simulator.desk_stats()

    @property
    def observation_checks(self) -> dict[str, dict[str, int]]:
        """{key: {checked, nonfinite, out_of_range, bad_shape, bad_dtype}} counts so far."""
        return self.validator.counts

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset all envs, or those in ``options["reset_mask"]`` (bool [num_envs])."""
        if isinstance(seed, int | np.integer):
            super().reset(seed=int(seed))
        mask = None if options is None else options.get("reset_mask")
        if mask is None:
            obs = self.market.reset(seed=seed)
            self._autoreset[:] = False
            if self.validate_every_step:
                self.validator.check(obs, batched=True)
            return obs, {}
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ValueError(
                f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), "
                f"got {mask.dtype} {mask.shape}"
            )
        if seed is not None and not isinstance(seed, int | np.integer):
            if len(seed) != self.num_envs:
                raise ValueError(f"got {len(seed)} seeds for {self.num_envs} envs")
            seed = [s for s, m in zip(seed, mask, strict=True) if m]
        obs = self.market.reset(mask, seed=seed)
        self._autoreset[mask] = False
        if self.validate_every_step:
            self.validator.check(obs, batched=True)
        return obs, {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        sim = self.market
        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            out = sim.step(actions, self._autoreset)
            self._autoreset = out[2] | out[3]
            if self.validate_every_step:
                self.validator.check(out[0], batched=True)
            return out
        obs, reward, terminated, truncated, info = sim.step(actions)
        if self.validate_every_step:
            self.validator.check(obs, batched=True)
        if self.autoreset_mode is AutoresetMode.SAME_STEP:
            done = terminated | truncated
            if done.any():
                self._add_final(obs, info, done)
                sim.reset(done, out=obs)
                if self.validate_every_step:  # the new episodes' first observations
                    self.validator.check(obs, batched=True)
        return obs, reward, terminated, truncated, info

    @staticmethod
    def _add_final(obs: dict[str, np.ndarray], info: dict[str, Any], done: np.ndarray) -> None:
        """gymnasium's SameStep extras: the finished envs' last obs and info."""
        final_obs = np.full(len(done), None, dtype=object)
        for i in np.flatnonzero(done):
            final_obs[i] = {key: value[i].copy() for key, value in obs.items()}
        final_info = {}
        for key, value in info.items():
            if key.startswith("_"):
                continue
            final_info[key] = value
            final_info["_" + key] = done
        info["final_obs"], info["_final_obs"] = final_obs, done
        info["final_info"], info["_final_info"] = final_info, done

    def get_state(self) -> dict[str, Any]:
        return {"simulator": self.market.get_state(), "autoreset": self._autoreset.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.market.set_state(state["simulator"])
        self._autoreset = np.asarray(state["autoreset"], dtype=bool).copy()
