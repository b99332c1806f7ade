"""ADAN: reinforcement-learning trading agents.

Importing the package registers ``adan/Trading-v0`` with gymnasium (entry points by name, so
nothing heavy loads until an env is made; see `adan.envs.registration`).
"""

import gymnasium as _gym

if "adan/Trading-v0" not in _gym.registry:
    _gym.register(
        id="adan/Trading-v0",
        entry_point="adan.envs.registration:make_trading_env",
        vector_entry_point="adan.envs.registration:make_trading_vec_env",
    )
