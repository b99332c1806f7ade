"""The checkpoint file: written atomically, read without running anything it contains, and
the market data a trained agent expects rebuilt from it alone.

A checkpoint is Lightning's dict plus the resolved run config (``adan_config``), the data
contract (``adan_data``: feature names, assets, the scalers fitted on the training split; see
``adan.checkpoint_format``) and the agent's own state (``adan_state``: env, RNGs, counters).
It holds only tensors, NumPy arrays and plain Python values, so it is read with
``torch.load(weights_only=True)`` and an allowlist of the NumPy types that rebuild arrays:
a file that would call anything else while loading (a planted payload) is refused before any
of it runs. Every reader (``eval.py``, resume through ``train.py ckpt_path=``, Lightning
through :class:`SafeCheckpointIO`) goes through :func:`read_checkpoint`, and every writer
through :func:`adan.files.atomic_write`.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import OmegaConf

from adan.checkpoint_format import CONFIG_KEY, DATA_KEY
from adan.config.deprecations import migrated
from adan.data.bars import MarketData
from adan.envs.spaces import spaces_of
from adan.errors import CheckpointError
from adan.files import atomic_write
from adan.market.spec import MarketSpec

# What torch.load may call besides torch's own tensor rebuilders: NumPy's array and dtype
# reconstruction (no code of the file's choosing can run through these).
_MULTIARRAY = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # NumPy 2 / 1
_REBUILDERS = [_MULTIARRAY._reconstruct, _MULTIARRAY.scalar]
SAFE_GLOBALS = [
    np.ndarray,
    np.dtype,
    *_REBUILDERS,
    *{type(np.dtype(c)) for c in "?bhilqBHILQefdgFDGSUVOMm"},
    # the same functions under the other NumPy's module name (a checkpoint from NumPy 1 or 2)
    *[(f, f"numpy.core.multiarray.{f.__name__}") for f in _REBUILDERS],
    *[(f, f"numpy._core.multiarray.{f.__name__}") for f in _REBUILDERS],
]
_SAFE_NAMES = {
    g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}" for g in SAFE_GLOBALS
}


def read_checkpoint(path: str | Path, require_adan: bool = True) -> dict[str, Any]:
    """The checkpoint at ``path`` as a dict of CPU tensors and plain values.

    Refuses, with :class:`CheckpointError` naming the file and the problem, an empty, truncated
    or garbage file, one that is not a PyTorch checkpoint, one that would run code while
    loading (nothing of it is executed), and (``require_adan``) one not written by ADAN's
    train task."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(
            f"{path} is empty (0 bytes): its write never completed. Use another checkpoint of "
            "the run (last.ckpt, best-*.ckpt)"
        )
    with open(path, "rb") as f:
        head = f.read(8)
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK"):
            what = f"is truncated or corrupt ({size} bytes; its zip directory is missing)"
        elif head.startswith(b"\x80"):
            what = "is a bare pickle, not a PyTorch checkpoint; it was not loaded"
        else:
            what = f"is not a PyTorch checkpoint (it starts with {head!r})"
        raise CheckpointError(f"{path} {what}")
    try:
        unsafe = sorted(
            set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) - _SAFE_NAMES
        )
    except (RuntimeError, ValueError, pickle.UnpicklingError, EOFError, KeyError) as err:
        raise CheckpointError(f"{path} is truncated or corrupt: {_first_line(err)}") from None
    if unsafe:
        raise CheckpointError(
            f"{path} was refused without loading it: it would call {', '.join(unsafe)} while "
            "loading, and an ADAN checkpoint holds only tensors, arrays and plain values. It was "
            "not written by ADAN, or it was altered; do not open it with "
            "torch.load(weights_only=False) unless you trust where it came from"
        )
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path} was refused: {_first_line(err)}") from None
    except (RuntimeError, EOFError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path} is truncated or corrupt: {_first_line(err)}") from None
    if require_adan and not (isinstance(ckpt, dict) and CONFIG_KEY in ckpt):
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path} was not written by ADAN's train task (no '{CONFIG_KEY}'; it holds {keys}), "
            "so the data and model it was trained with are unknown"
        )
    return ckpt


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """An ADAN checkpoint (see :func:`read_checkpoint`), its saved config with deprecated keys
    moved to their new homes (``adan.config.deprecations``), as a config written today."""
    ckpt = read_checkpoint(path)
    if isinstance(ckpt.get(CONFIG_KEY), dict):
        ckpt[CONFIG_KEY] = migrated(ckpt[CONFIG_KEY])
    return ckpt


def gym_task(ckpt: dict[str, Any]) -> str:
    """``"was trained on the gym task CartPole-v1"`` for a checkpoint without market data."""
    env_id = (ckpt.get(CONFIG_KEY) or {}).get("env", {}).get("env_id", "?")
    return f"was trained on the gym task {env_id}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with ADAN's guarantees: atomic writes (a temporary file,
    fsynced, renamed over the final name; a full disk leaves the previous file intact and
    raises ``DiskFullError``) and safe reads (:func:`read_checkpoint`, whatever
    ``weights_only`` Lightning asks for; ``require_adan=False`` also reads checkpoints of plain
    Lightning modules)."""

    def __init__(self, require_adan: bool = True) -> None:
        self.require_adan = require_adan

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        atomic_write(path, lambda f: torch.save(checkpoint, f))

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return read_checkpoint(path, self.require_adan)


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
        raise ValueError(f"the checkpoint {gym_task(ckpt)}, not on market data")
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


def policy_from_checkpoint(ckpt: dict[str, Any], spec: MarketSpec) -> torch.nn.Module:
    """The checkpoint's actor-critic, rebuilt from its model config for ``spec``'s spaces, in
    eval mode, with the trained weights."""
    cfg = OmegaConf.create(ckpt[CONFIG_KEY])
    if spec.window != int(cfg.env.window):
        raise ValueError(
            f"the checkpoint was trained with env.window={cfg.env.window}, the spec has "
            f"window={spec.window}: its network reads windows of the training length"
        )
    policy = instantiate(cfg.model)(*spaces_of(spec))
    state = {
        k[len("policy.") :].replace("_orig_mod.", ""): v
        for k, v in ckpt["state_dict"].items()
        if k.startswith("policy.")
    }
    policy.load_state_dict(state)
    return policy.eval()
