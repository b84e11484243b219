"""Locks between processes: PostgreSQL advisory locks for replicas' jobs, SQLite's one-daemon file lock."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import OperationalError

from storage.engine import normalise_url
from storage.errors import StoreError

__all__ = ["DaemonFileLock", "DaemonRunning", "JobLocks", "lock_key"]


def lock_key(name: str) -> int:
    """The advisory lock key of job ``name``: a signed 64-bit integer, the same on every replica
    and every release (the first 8 bytes of the name's BLAKE2b digest)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class JobLocks:
    """Session-level PostgreSQL advisory locks, one connection of their own per held lock.

    ``hold(name)`` tries ``pg_try_advisory_lock`` on a connection taken from a pool kept apart
    from the store's (so the store's transactions never run on a connection holding a lock),
    in autocommit (so no transaction stays open for the job's length), and unlocks after the
    job. A process that dies closes its connections, and PostgreSQL releases their locks.
    """

    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 15) -> None:
        self.engine = create_engine(
            normalise_url(url), pool_size=pool_size, max_overflow=max_overflow,
            pool_pre_ping=True, connect_args={"connect_timeout": 10},
        )
        if self.engine.dialect.name != "postgresql":
            self.engine.dispose()
            raise ValueError(f"advisory locks need PostgreSQL, not {self.engine.dialect.name}")

    @contextmanager
    def hold(self, name: str, wait: float = 0.0) -> Iterator[bool]:
        """Yield True while this process holds the lock of ``name``; False when another session
        held it throughout ``wait`` seconds (0: answer at once). Raises what connecting raises.

        Waiting is done by PostgreSQL (``pg_advisory_lock`` under a ``lock_timeout``), so a
        waiter gets the lock the moment the holder unlocks or its session ends.
        """
        key = lock_key(name)
        with self.engine.connect() as pooled:
            conn = pooled.execution_options(isolation_level="AUTOCOMMIT")
            if wait <= 0:
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            else:
                got = self._wait_for(conn, key, wait)
            try:
                yield got
            finally:
                if got:
                    try:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    except Exception:
                        # The session is gone or broken: closing it releases whatever it held,
                        # and it never goes back to the pool still holding the lock.
                        conn.invalidate()

    @staticmethod
    def _wait_for(conn: Connection, key: int, wait: float) -> bool:
        conn.execute(text("SELECT set_config('lock_timeout', :ms, false)"),
                     {"ms": f"{max(1, int(wait * 1000))}ms"})
        try:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            return True
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            return False
        finally:
            conn.execute(text("SELECT set_config('lock_timeout', '0', false)"))

    def close(self) -> None:
        """Close the pool's connections (releasing any lock they hold)."""
        self.engine.dispose()


class DaemonRunning(StoreError):
    """Another daemon holds the SQLite store's daemon lock."""


class DaemonFileLock:
    """An exclusive ``flock`` on ``<database>.daemon.lock``, held from ``acquire`` to ``release``
    (or the process's end: the OS drops it with the file descriptor, even after SIGKILL)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".daemon.lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise DaemonRunning naming the database and the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the daemon's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DaemonRunning(
                f"another collector daemon (pid {holder}) runs on {self.database}: "
                f"one daemon per SQLite file (lock {self.path}); use PostgreSQL for replicas"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Drop the lock (the file stays: removing it could let two daemons lock two files)."""
        if self._file is not None:
            self._file.close()
            self._file = None
