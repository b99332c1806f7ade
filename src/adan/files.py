"""Write a run's files so that a crash, a kill or a full disk never leaves half a file under its
final name.

Every writer goes through :func:`atomic_write`: the bytes go to a temporary file in the same
directory, are flushed and fsynced, and the file is renamed over the final name (a rename
within one file system is atomic), then the directory is fsynced so the rename itself survives
a power cut. A reader therefore sees either the previous complete file or the new complete
file. When the disk fills up, the temporary file is removed and :class:`DiskFullError` says
where, and that the previous file is intact.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from adan.errors import DiskFullError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 -> what open() would have given
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # torch.save reports a full disk as a RuntimeError raised while handling the OSError
        if is_disk_full(err) and first_disk_full(err) is None:
            raise disk_full(path) from err
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf8"))


def atomic_copy(source: str | Path, target: str | Path) -> Path:
    """Copy ``source`` to ``target`` with the same guarantee as :func:`atomic_write`."""
    with open(source, "rb") as src:
        return atomic_write(target, lambda f: shutil.copyfileobj(src, f, 1 << 20))


def disk_full(path: str | Path) -> DiskFullError:
    """The error for a write to ``path`` that ran out of space."""
    path = Path(path)
    free = _free_bytes(path.parent)
    return DiskFullError(
        f"disk full: no space left on the device holding {path.parent} "
        f"({free} bytes free) while writing {path.name}. {path} was not written; the previous "
        f"{path.name}, if there was one, is intact. Free some space, or put the run elsewhere "
        "(hydra.run.dir=... or paths.log_dir=...), then resume from the last checkpoint."
    )


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err``, or an error it was raised from or while handling, is a full disk."""
    return any(isinstance(e, OSError) and e.errno in NO_SPACE for e in _chain(err))


def first_disk_full(err: BaseException) -> DiskFullError | None:
    """The first :class:`DiskFullError` in ``err``'s chain, if any."""
    return next((e for e in _chain(err) if isinstance(e, DiskFullError)), None)


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _free_bytes(directory: Path) -> int | str:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return "?"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)
