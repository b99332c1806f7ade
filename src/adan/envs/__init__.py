"""Gymnasium environments: the trading Env and VectorEnv (thin views of the one batched market
core), and plain gymnasium tasks for the same PPO."""

from adan.envs.gym_tasks import make_gym_vec_env
from adan.envs.trading_env import TradingEnv
from adan.envs.validation import ObservationValidator
from adan.envs.vec_trading_env import VecTradingEnv

__all__ = ["ObservationValidator", "TradingEnv", "VecTradingEnv", "make_gym_vec_env"]
