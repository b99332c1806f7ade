"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary directory, ``pg_ctl``
on a free port of 127.0.0.1, one database, stopped and removed afterwards.

PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user
(the Debian package's), in a directory that user owns."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server(database: str = "optuna") -> Iterator[str]:
    """Yield a ``postgresql://`` URL of a fresh server's ``database`` (trust authentication;
    the URL carries a password anyway, as a user's would)."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="adan-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run(cmd, check=True, capture_output=True, text=True, user=user, cwd=root)

    run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    run(
        pg_ctl,
        "-D",
        str(data),
        "-l",
        str(root / "server.log"),
        "-w",
        "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
        "start",
    )
    try:
        psql = _bin("psql")
        run(
            psql,
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            f"CREATE DATABASE {database}",
        )
        yield f"postgresql://postgres:not-a-secret@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(
            [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            user=user,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)
