"""Locks between processes: PostgreSQL advisory locks for replicas' jobs, SQLite's one-daemon file lock."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine, text

from storage.engine import lock_key, normalise_url
from storage.errors import StoreError

__all__ = ["DaemonFileLock", "DaemonRunning", "JobLocks", "lock_key"]


class JobLocks:
    """Session-level PostgreSQL advisory locks, one connection of their own per held lock.

    ``hold(name)`` tries ``pg_try_advisory_lock`` on a connection taken from a pool kept apart
    from the store's (so the store's transactions never run on a connection holding a lock),
    in autocommit (so no transaction stays open for the job's length), and unlocks after the
    job. A process that dies closes its connections, and PostgreSQL releases their locks.
    """

    RETRY = 0.2
    """Seconds between a waiter's tries."""

    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 10) -> None:
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
        held it at every try during ``wait`` seconds (0: one try). Raises what connecting raises.

        A waiter tries again every ``RETRY`` seconds and holds no connection in between, so
        replicas waiting at the same instant do not drain the pool or the server's connections.
        """
        key = lock_key(name)
        deadline = time.monotonic() + wait
        while True:
            with self.engine.connect() as pooled:
                conn = pooled.execution_options(isolation_level="AUTOCOMMIT")
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                        {"k": key}).scalar())
                if got:
                    try:
                        yield True
                    finally:
                        try:
                            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        except Exception:
                            # The session is gone or broken: closing it releases whatever it
                            # held, and it never goes back to the pool still holding the lock.
                            conn.invalidate()
                    return
            if time.monotonic() + self.RETRY > deadline:
                yield False
                return
            time.sleep(self.RETRY)

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
