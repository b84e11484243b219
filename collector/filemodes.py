"""File modes by design, not by umask: secrets and the store 0600 in 0700, deliverables 0644 in 0755."""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["DELIVERABLE", "DELIVERABLE_DIR", "PRIVATE", "PRIVATE_DIR", "make_dirs", "set_mode"]

PRIVATE = 0o600
"""The sealing key and the SQLite store: the owner only."""
PRIVATE_DIR = 0o700
DELIVERABLE = 0o644
"""Snapshots, digests and the public key: handed to others, never writable by them."""
DELIVERABLE_DIR = 0o755


def make_dirs(path: Path, mode: int) -> None:
    """Create ``path`` and any missing parents with exactly ``mode`` whatever the umask; folders
    that exist already (a mounted volume, one the operator made) are left as they are."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode)
        except FileExistsError:  # made by a concurrent process meanwhile: not ours to change
            continue
        os.chmod(folder, mode)
    if not path.is_dir():  # as mkdir(exist_ok=True) says of a file where the folder belongs
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))


def set_mode(path: Path, mode: int) -> None:
    """Give the file ``path`` exactly ``mode`` (the umask narrowed or widened what it was created with)."""
    os.chmod(path, mode)
