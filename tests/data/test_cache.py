import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from adan.data import cache as cache_mod
from adan.data.cache import FeatureCache, content_key
from adan.data.features import FEATURE_CODE_VERSION


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "features": rng.normal(size=(50, 3, 4)),
        "warmup": np.array(7),
        "timestamps": np.arange(50).astype("datetime64[h]").astype("datetime64[ns]"),
        "mask": rng.random((50, 3)) < 0.5,
        "file": np.arange(3, dtype=np.int32),  # a name np.savez would reject
    }


class Counter:
    def __init__(self, seed: int = 0) -> None:
        self.calls, self.seed = 0, seed

    def __call__(self) -> dict[str, np.ndarray]:
        self.calls += 1
        return arrays(self.seed)


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k], b[k])


def test_miss_then_hit_returns_identical_arrays(tmp_path):
    c = FeatureCache(tmp_path / "sub")  # created on first write
    compute = Counter()
    first, hit = c.get_or_compute("k1", compute)
    assert not hit and compute.calls == 1
    second, hit = c.get_or_compute("k1", compute)
    assert hit and compute.calls == 1
    assert_same(first, arrays())
    assert_same(second, arrays())
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["k1.npz"]  # no temp files left


def key_parts(bars: np.ndarray, names: list[str], version: int = FEATURE_CODE_VERSION) -> str:
    ts = np.arange(len(bars)).astype("datetime64[ns]")
    return content_key(bars, ts, {"features": names, "n_jobs": 1}, version)


def test_content_key_changes_with_every_part():
    bars = np.random.default_rng(0).normal(size=(20, 2))
    base = key_parts(bars, ["rsi_14", "log_return"])
    assert base == key_parts(bars.copy(), ["rsi_14", "log_return"])  # deterministic
    assert len(base) == 64 and int(base, 16) >= 0
    flipped = bars.copy()
    flipped.reshape(-1).view(np.uint8)[37] ^= 1  # one bit of one array byte
    assert key_parts(flipped, ["rsi_14", "log_return"]) != base
    assert key_parts(bars, ["rsi_14"]) != base
    assert key_parts(bars, ["log_return", "rsi_14"]) != base  # order of features matters
    assert key_parts(bars, ["rsi_14", "log_return"], FEATURE_CODE_VERSION + 1) != base
    assert content_key(bars.astype(np.float32)) != content_key(bars)  # dtype
    assert content_key(bars.reshape(2, 20, 1)) != content_key(bars)  # shape
    assert content_key("ab") != content_key("a", "b")  # unambiguous
    assert content_key(1) != content_key(1.0) != content_key("1")
    assert content_key({"a": 1, "b": [2, 3]}) == content_key({"b": [2, 3], "a": 1})
    assert content_key(np.asfortranarray(bars)) == content_key(bars)  # layout does not matter
    with pytest.raises(TypeError, match="cannot hash"):
        content_key(object())


def test_changed_key_misses(tmp_path):
    c = FeatureCache(tmp_path)
    bars = np.ones((10, 2))
    compute = Counter()
    c.get_or_compute(key_parts(bars, ["rsi_14"]), compute)
    c.get_or_compute(key_parts(bars, ["rsi_14"], FEATURE_CODE_VERSION + 1), compute)
    c.get_or_compute(key_parts(bars, ["rsi_7"]), compute)
    bars[3, 1] = 2.0
    c.get_or_compute(key_parts(bars, ["rsi_14"]), compute)
    assert compute.calls == 4 and len(list(tmp_path.glob("*.npz"))) == 4


def corrupt_truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def corrupt_flip_data_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x40  # inside the first array's payload
    path.write_bytes(bytes(data))


def corrupt_flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-30] ^= 0x01  # the zip directory
    path.write_bytes(bytes(data))


def corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"not a zip file")


def corrupt_empty(path: Path) -> None:
    path.write_bytes(b"")


def corrupt_other_key(path: Path) -> None:  # a valid entry, but stored for another key
    FeatureCache(path.parent).store("other", arrays())
    os.replace(path.parent / "other.npz", path)


def corrupt_plain_npz(path: Path) -> None:  # valid npz without a manifest
    np.savez(path, **{k: v for k, v in arrays().items() if k != "file"})


def corrupt_checksum_mismatch(path: Path, monkeypatch=None) -> None:
    """Rewrite the entry with the same manifest but one changed value (a consistent zip)."""
    with np.load(path, allow_pickle=False) as npz:
        content = {k: npz[k] for k in npz.files}
    content["features"] = content["features"].copy()
    content["features"][0, 0, 0] += 1.0
    with open(path, "wb") as f:
        cache_mod._write_npz(f, content)


@pytest.mark.parametrize(
    "corrupt",
    [
        corrupt_truncate,
        corrupt_flip_data_byte,
        corrupt_flip_last_byte,
        corrupt_garbage,
        corrupt_empty,
        corrupt_other_key,
        corrupt_plain_npz,
        corrupt_checksum_mismatch,
    ],
)
def test_corrupt_entry_is_detected_deleted_and_rebuilt(tmp_path, caplog, corrupt):
    c = FeatureCache(tmp_path)
    compute = Counter()
    c.get_or_compute("k", compute)
    corrupt(c.path("k"))
    with caplog.at_level(logging.WARNING, logger="adan.data.cache"):
        again, hit = c.get_or_compute("k", compute)
    assert not hit and compute.calls == 2
    assert "invalid" in caplog.text and "k.npz" in caplog.text
    assert_same(again, arrays())
    assert_same(c.get_or_compute("k", compute)[0], arrays())  # the rebuilt entry is trusted
    assert compute.calls == 2


def test_failed_write_leaves_nothing_visible(tmp_path, monkeypatch):
    c = FeatureCache(tmp_path)

    def explode(f, content):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod, "_write_npz", explode)
    with pytest.raises(OSError, match="disk full"):
        c.store("k", arrays())
    assert list(tmp_path.iterdir()) == []  # neither the entry nor the temp file
    out, hit = c.get_or_compute("k", Counter())  # get_or_compute survives a failed write
    assert not hit and list(tmp_path.iterdir()) == []
    assert_same(out, arrays())


def test_concurrent_writers_and_readers_never_see_a_partial_entry(tmp_path):
    c = FeatureCache(tmp_path)
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(seed: int) -> None:
        try:
            for _ in range(15):
                c.store("shared", arrays(seed))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    def reader() -> None:
        try:
            reads = 0
            while not stop.is_set() or reads == 0:
                got = c.load("shared")  # the entry exists throughout: never None, never partial
                assert got is not None
                seed = next(
                    s for s in range(4) if np.array_equal(got["features"], arrays(s)["features"])
                )
                assert_same(got, arrays(seed))
                reads += 1
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(s,)) for s in range(4)]
    c.store("shared", arrays(0))
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    assert [p.name for p in tmp_path.iterdir()] == ["shared.npz"]
    assert c.load("shared") is not None


def test_bad_keys_and_values(tmp_path):
    c = FeatureCache(tmp_path)
    for key in ["", "../x", "a/b", ".hidden", "x" * 201, None]:
        with pytest.raises(ValueError, match="cache key"):
            c.path(key)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="__manifest__"):
        c.store("k", {"__manifest__": np.zeros(2)})
    with pytest.raises(TypeError, match="object dtype"):
        c.store("k", {"x": np.array([{}, 1], dtype=object)})
    with pytest.raises(TypeError, match="dict of arrays"):
        c.get_or_compute("k", lambda: [np.zeros(2)])  # type: ignore[arg-type, return-value]
    assert c.load("missing") is None
