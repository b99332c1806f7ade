"""The ADAN checkpoint format: the one module that names what a checkpoint holds.

A checkpoint is Lightning's dict (``state_dict``, optimizer states, loops, callbacks) plus:

- ``adan_config`` (``CONFIG_KEY``): the run's resolved config as plain containers, written by
  ``adan.callbacks.run_spec.RunSpec``; resuming and evaluating read the run from it;
- ``adan_data`` (``DATA_KEY``): the data contract (``data_contract``): assets, feature names,
  the scalers fitted on the training split and the periods trained and selected on; None for
  a gym task;
- ``adan_state`` (``STATE_KEY``): the agent's own state, written by the PPO module (env state,
  last observation, RNGs, counters), so a resumed run continues bit-exactly.

Writers and readers import these names from here; ``adan.evaluation.checkpoint`` reads files
safely (no code runs) and rebuilds the market and the policy from them.
"""

from __future__ import annotations

from typing import Any

CONFIG_KEY = "adan_config"
DATA_KEY = "adan_data"
STATE_KEY = "adan_state"


def data_contract(splits: dict[str, Any]) -> dict[str, Any]:
    """What a trained agent expects of its data: assets, feature names, the scalers fitted on
    its training split, and the periods it trained and was selected on (evaluation flags a
    period that overlaps them)."""
    meta = splits["train"].meta
    keep = ("feature_names", "scaler", "timeframes", "features_version")
    periods = {
        name: [str(d.timestamps[0]), str(d.timestamps[-1])]
        for name, d in splits.items()
        if name in ("train", "val") and len(d)
    }
    return {
        "assets": list(splits["train"].assets),
        **{k: meta[k] for k in keep if k in meta},
        "periods": periods,
    }
