"""A throwaway PostgreSQL server on loopback, for the tests' session fixture and bench/replicas.py."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PostgresUnavailable", "pg_bin", "running_postgres"]


class PostgresUnavailable(RuntimeError):
    """The server could not be started (the message says why)."""


def pg_bin() -> Path | None:
    """The folder of the newest installed ``initdb`` and ``postgres``; None when there is none."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(found)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextmanager
def running_postgres(root: Path, settings: tuple[str, ...] = ()) -> Iterator[int]:
    """Initialise a cluster in ``root/data`` (trust, user ``postgres``), start it on 127.0.0.1
    with durability off plus ``settings`` (``name=value``), and yield its port once it accepts
    connections; stopped when the block ends. PostgresUnavailable when the binaries are missing
    or the server does not accept connections within 30 s."""
    bindir = pg_bin()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL binaries (initdb) not found")
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                                 "postgres", "--no-sync"]), check=True, capture_output=True)
    options = [arg for setting in ("fsync=off", "synchronous_commit=off", *settings)
               for arg in ("-c", setting)]
    proc = subprocess.Popen(
        _as_postgres([str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                      "-k", str(root), *options]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable("PostgreSQL did not start within 30 s") from None
                time.sleep(0.1)
        time.sleep(0.3)  # accepting connections comes a moment before accepting logins
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
