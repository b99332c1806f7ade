"""On-disk cache of computed feature arrays, keyed by a hash of everything they depend on.

Why: features over a long multi-asset history take a while, and every run of a sweep
recomputes the same ones. An entry is one ``.npz`` file (no pickle) holding the arrays plus a
manifest with the key, each array's shape, dtype and sha256. It is written to a temporary file
in the same directory and moved into place (``adan.files.atomic_write``), so readers never see
half an entry; on read every array is verified, and a corrupt, truncated or mismatched entry is
logged, deleted and rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adan.files import atomic_write

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
_MANIFEST = "__manifest__"
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def _feed(h: Any, obj: Any) -> None:
    """Feed ``obj`` to hash ``h`` with a type tag and length prefixes (unambiguous encoding)."""

    def put(tag: bytes, payload: bytes) -> None:
        h.update(tag + len(payload).to_bytes(8, "little") + payload)

    if isinstance(obj, np.ndarray | np.generic):
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise TypeError("content_key cannot hash object arrays; convert them first")
        header = json.dumps([arr.dtype.str, list(arr.shape)]).encode()
        put(b"A", header)
        put(b"a", np.ascontiguousarray(arr).tobytes())
    elif obj is None or isinstance(obj, bool):
        put(b"J", json.dumps(obj).encode())
    elif isinstance(obj, int):
        put(b"I", str(int(obj)).encode())
    elif isinstance(obj, float):
        put(b"F", float(obj).hex().encode())  # exact, and distinguishes 1.0 from 1
    elif isinstance(obj, str):
        put(b"S", obj.encode("utf-8"))
    elif isinstance(obj, bytes | bytearray | memoryview):
        put(b"B", bytes(obj))
    elif isinstance(obj, Path):
        put(b"P", str(obj).encode("utf-8"))
    elif isinstance(obj, Mapping):
        keys = list(obj)
        if not all(isinstance(k, str) for k in keys):
            raise TypeError(f"content_key needs string dict keys, got {keys!r}")
        put(b"D", str(len(keys)).encode())
        for k in sorted(keys):  # canonical: key order does not matter
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, Sequence):  # list, tuple, ListConfig, ...
        put(b"L", str(len(obj)).encode())
        for item in obj:
            _feed(h, item)
    else:
        raise TypeError(f"content_key cannot hash {type(obj).__name__}: {obj!r}")


def content_key(*parts: Any) -> str:
    """Hex sha256 of ``parts``: arrays (dtype, shape, bytes), strings, numbers, dicts, lists.

    Why: a cache key must change whenever anything the cached value depends on changes (a
    single byte of the bars, the feature list, ``FEATURE_CODE_VERSION``) and only then. The
    encoding is canonical (dict key order is ignored; 1, 1.0 and "1" differ) and unambiguous
    (length-prefixed, so ("ab",) and ("a", "b") differ).
    """
    h = hashlib.sha256(b"adan.content_key.v1")
    _feed(h, list(parts))
    return h.hexdigest()


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).view(np.uint8).reshape(-1)).hexdigest()


class CorruptEntryError(ValueError):
    """A cache file that does not match its manifest (or has none)."""


class FeatureCache:
    """Directory of verified ``.npz`` entries, one per key (see the module docstring).

    Safe for several processes sharing the directory: concurrent writers of one key each write
    a complete file and the last ``os.replace`` wins; readers see the old entry, the new one,
    or none.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.directory)!r})"

    def path(self, key: str) -> Path:
        """Where the entry for ``key`` lives (whether or not it exists)."""
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(
                f"cache key {key!r} must be 1-200 characters of [A-Za-z0-9_.-], not starting "
                "with '.', '_' or '-' (use content_key(...))"
            )
        return self.directory / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The verified arrays stored under ``key``, or None if absent or invalid (then deleted)."""
        path = self.path(key)
        try:
            return self._read(path, key)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError, EOFError, OSError, zipfile.BadZipFile) as err:
            # corrupt, truncated, foreign or unreadable: never trust it
            log.warning("feature cache entry %s is invalid (%s); deleting it", path, err)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None

    def store(self, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Write ``arrays`` under ``key`` atomically (temp file + ``os.replace``); return the path."""
        path = self.path(key)
        arrays = _check_arrays(arrays)
        manifest = {
            "format": CACHE_FORMAT_VERSION,
            "key": key,
            "names": list(arrays),  # the caller's order (the dict below is sorted)
            "arrays": {
                name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _digest(a)}
                for name, a in arrays.items()
            },
        }
        blob = np.frombuffer(json.dumps(manifest, sort_keys=True).encode(), dtype=np.uint8)
        return atomic_write(path, lambda f: _write_npz(f, {**arrays, _MANIFEST: blob}))

    def get_or_compute(
        self, key: str, compute: Callable[[], dict[str, np.ndarray]]
    ) -> tuple[dict[str, np.ndarray], bool]:
        """(arrays, hit): the stored arrays for ``key``, else ``compute()``'s, stored for next time.

        Why: one call replaces "if cached: load, else: compute and save" at every use site, and
        the arrays returned on a hit are bit-identical to the computed ones.
        """
        cached = self.load(key)
        if cached is not None:
            return cached, True
        arrays = _check_arrays(compute())
        try:
            self.store(key, arrays)
        except OSError as err:  # a full or read-only disk must not fail the run
            log.warning("could not write feature cache entry %s (%s)", self.path(key), err)
        return arrays, False

    def _read(self, path: Path, key: str) -> dict[str, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as npz:
                names = set(npz.files)
                if _MANIFEST not in names:
                    raise CorruptEntryError("no manifest")
                manifest = json.loads(npz[_MANIFEST].tobytes().decode())
                if manifest.get("format") != CACHE_FORMAT_VERSION:
                    raise CorruptEntryError(f"format {manifest.get('format')!r}")
                if manifest.get("key") != key:
                    raise CorruptEntryError(f"stored for key {manifest.get('key')!r}")
                specs = manifest["arrays"]
                order = manifest["names"]
                if names - {_MANIFEST} != set(specs) or sorted(order) != sorted(specs):
                    raise CorruptEntryError(f"arrays {sorted(names)} != manifest {sorted(specs)}")
                out = {}
                for name in order:
                    spec = specs[name]
                    arr = npz[name]
                    if arr.dtype.str != spec["dtype"] or list(arr.shape) != spec["shape"]:
                        raise CorruptEntryError(f"array {name!r} has wrong dtype or shape")
                    if _digest(arr) != spec["sha256"]:
                        raise CorruptEntryError(f"array {name!r} fails its checksum")
                    out[name] = arr
                return out
        except (zipfile.BadZipFile, EOFError, KeyError, json.JSONDecodeError) as err:
            raise CorruptEntryError(f"{type(err).__name__}: {err}") from err


def _check_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(arrays, Mapping):
        raise TypeError(f"feature cache values must be a dict of arrays, got {type(arrays)}")
    out = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or name.startswith("__") or "/" in name:
            raise ValueError(f"feature cache array name {name!r} is not allowed")
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise TypeError(f"feature cache array {name!r} has object dtype (cannot store safely)")
        out[name] = arr
    return out


def _write_npz(f: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Uncompressed ``.npz`` (what ``np.savez`` writes), without its reserved keyword names."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
