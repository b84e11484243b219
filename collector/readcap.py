"""Bounded reads of the small files users name (config, keys, CA certificates): a cap per kind of file."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MAX_CA_FILE",
    "MAX_CONFIG_FILE",
    "MAX_KEY_FILE",
    "FileRefused",
    "read_capped",
    "read_private",
]

MAX_CONFIG_FILE = 1 << 20
"""A config file (or a control library) is a few KiB; 1 MiB is far past any real one."""
MAX_KEY_FILE = 64 << 10
"""A PEM key is under 1 KiB."""
MAX_CA_FILE = 1 << 20
"""A PEM CA bundle: a few certificates of about 2 KiB each."""


class FileRefused(ValueError):
    """A file is larger than the cap for its kind (or endless, like ``/dev/zero``), or a secret
    is not a private regular file; the message says what to do."""


def read_capped(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``; FileRefused past it, OSError when it cannot be read.

    Reads ``limit + 1`` bytes at most, whatever the file is (``/dev/zero`` too), so memory
    stays bounded; a named pipe is refused rather than waited on.
    """
    with _open_no_wait(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"is larger than {limit:,} bytes")
    return data


def _open_no_wait(path: Path) -> BinaryIO:
    """``path`` opened for reading without waiting for a writer: a named pipe (FIFO) is refused,
    since opening one blocks until something writes to it, and reading it may never end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise FileRefused("is a named pipe, not a file")
        os.set_blocking(fd, True)  # a character device such as /dev/zero reads as usual, capped
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_private(path: Path, limit: int) -> bytes:
    """``read_capped`` for a secret: it must be a regular file that others cannot read or write
    and its group cannot write; FileRefused naming the fix (``chmod 600 <path>``) otherwise.

    Group read (0640, 0440) is allowed: it is how a container reads a secret mounted from the
    host (the key's group granted with ``--group-add``), an explicit grant to one named group,
    not to everyone on the machine."""
    with _open_no_wait(path) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("is not a regular file")
        if info.st_mode & 0o037:
            raise FileRefused(
                f"is accessible to others or writable by its group (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); "
                f"run `chmod 600 {path}`")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"is larger than {limit:,} bytes")
    return data
