"""A deterministic ustar writer: fixed owner, mode and mtime, members in the order given."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path
from typing import IO

__all__ = ["write_tar"]

_BLOCK = 512
_RECORD = 20 * _BLOCK


def _header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")


def write_tar(out: IO[bytes], members: list[tuple[str, Path | bytes]], mtime: int) -> None:
    """Write ``members`` (name, file path or bytes) as an uncompressed tar, byte-reproducibly."""
    written = 0
    for name, content in members:
        if isinstance(content, bytes):
            size = len(content)
            out.write(_header(name, size, mtime))
            out.write(content)
        else:
            size = content.stat().st_size
            out.write(_header(name, size, mtime))
            with content.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        pad = -size % _BLOCK
        out.write(b"\0" * pad)
        written += _BLOCK + size + pad
    end = 2 * _BLOCK
    written += end
    out.write(b"\0" * (end + (-written % _RECORD)))
