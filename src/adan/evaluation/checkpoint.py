"""Rebuild, from a checkpoint alone, the market data a trained agent expects.

A checkpoint carries the resolved run config (``adan_config``) and the data contract
(``adan_data``: feature names, assets, the scalers fitted on the training split); see
``adan.callbacks.run_spec``. Evaluation and live use go through here, so they normalise exactly
as training did instead of refitting on the data they are judged on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from adan.callbacks.run_spec import CONFIG_KEY, DATA_KEY
from adan.data.bars import MarketData


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint as a dict (CPU tensors), refusing one saved without a run spec."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if CONFIG_KEY not in ckpt:
        raise ValueError(
            f"{path} has no '{CONFIG_KEY}': it was not written by ADAN's train task, so the "
            "data pipeline it was trained with is unknown"
        )
    return ckpt


def market_from_checkpoint(
    path: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None
) -> dict[str, MarketData]:
    """{"train", "val", "test"} built by the checkpoint's data config and fitted scalers.

    ``path`` is a checkpoint file or one already loaded by ``load_checkpoint``. ``overrides``
    patch the data config (e.g. ``{"test_path": [...]}`` for another period); the cleaning
    report is not rewritten unless ``report_path`` is given.
    """
    ckpt = path if isinstance(path, dict) else load_checkpoint(path)
    if ckpt[DATA_KEY] is None:
        raise ValueError(f"{path} was trained on a gym task, not on market data")
    data = OmegaConf.create(ckpt[CONFIG_KEY]["data"])
    if "report_path" in data:
        data.report_path = None
    data = OmegaConf.merge(data, OmegaConf.create(overrides or {}))
    return instantiate(data).build(fitted=ckpt[DATA_KEY])


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (its ``checkpoints/last.ckpt``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        last = p / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise FileNotFoundError(f"{p} is a directory without checkpoints/last.ckpt")
        return last
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {p}; give a .ckpt file or a run directory")
    return p


def policy_from_checkpoint(ckpt: dict[str, Any], data: MarketData, trading: Any) -> torch.nn.Module:
    """The checkpoint's actor-critic, rebuilt from its model config for ``data``'s spaces, in
    eval mode, with the trained weights."""
    cfg = OmegaConf.create(ckpt[CONFIG_KEY])
    # one short episode: the env is only built here for its spaces
    env = instantiate(cfg.env, num_envs=1, episode_length=1)(
        data=data, trading=trading, reward=instantiate(cfg.reward), seed=0
    )
    policy = instantiate(cfg.model)(env.single_observation_space, env.single_action_space)
    state = {
        k[len("policy.") :].replace("_orig_mod.", ""): v
        for k, v in ckpt["state_dict"].items()
        if k.startswith("policy.")
    }
    policy.load_state_dict(state)
    return policy.eval()
