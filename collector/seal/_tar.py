"""A deterministic ustar writer (fixed owner, mode and mtime, members in the order given), and
the strict reader that accepts nothing else."""

from __future__ import annotations

import io
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["MAX_MEMBERS", "Member", "SnapshotTar", "scan_tar", "write_tar"]

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


# -- reading: only what write_tar writes --------------------------------------------------

MAX_MEMBERS = 100_000
"""A snapshot holds a handful of files, one population per criterion (61 today) and per control
of the library, and one file per document its records refer to; the member table costs about
200 bytes a member, so this bound keeps a crafted tar's to about 20 MB."""

_ZERO = bytes(_BLOCK)
_NAME = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


@dataclass(frozen=True, slots=True)
class Member:
    """A regular file inside the tar: where its bytes start and how many there are."""

    name: str
    offset: int
    size: int


def _octal(field: bytes, what: str) -> int:
    text = field.rstrip(b"\0 ")
    if not text or not all(48 <= c <= 55 for c in text):  # "0".."7" only: no base-256, no sign
        raise ValueError(f"{what} is not a plain octal number")
    return int(text, 8)


def _member(block: bytes, at: int) -> tuple[str, int]:
    """Name and size from a ustar header block, refusing anything write_tar never writes."""
    if _octal(block[148:156], f"header at byte {at}: checksum") != (
        sum(block[:148]) + 8 * 32 + sum(block[156:])
    ):
        raise ValueError(f"header at byte {at}: checksum does not match")
    if block[257:263] != b"ustar\0" or block[263:265] != b"00":
        raise ValueError(f"header at byte {at}: not a POSIX ustar header")
    name_field, prefix_field = block[0:100].rstrip(b"\0"), block[345:500].rstrip(b"\0")
    try:
        name = name_field.decode("utf-8")
        prefix = prefix_field.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"header at byte {at}: the member name is not UTF-8") from None
    full = f"{prefix}/{name}" if prefix else name
    if not _NAME.fullmatch(full) or ".." in full.split("/"):
        raise ValueError(f"header at byte {at}: member name {full!r} is not one a snapshot has")
    if block[156:157] != b"0":
        raise ValueError(f"{full}: is not a regular file (type {block[156:157]!r})")
    return full, _octal(block[124:136], f"{full}: size")


def scan_tar(path: Path) -> dict[str, Member]:
    """The members of a snapshot tar, read strictly; ValueError naming the first problem.

    Only the plain ustar that ``write_tar`` produces is accepted: regular files with octal
    sizes, unique safe names, zero padding, and nothing but zeros after the end marker. So
    nothing can hide after a header another reader would skip or stop at, and no header
    reaches tarfile's parser (sparse, pax, GNU and base-256 fields are refused here).
    """
    total = path.stat().st_size
    members: dict[str, Member] = {}
    with path.open("rb") as src:
        at = 0
        while True:
            block = src.read(_BLOCK)
            if len(block) < _BLOCK:
                raise ValueError("ends without the end-of-archive marker")
            if block == _ZERO:
                while chunk := src.read(1 << 20):
                    if chunk.count(0) != len(chunk):
                        raise ValueError("holds data after the end-of-archive marker")
                return members
            name, size = _member(block, at)
            if name in members:
                raise ValueError(f"{name}: appears twice in the archive")
            if len(members) >= MAX_MEMBERS:
                raise ValueError(f"holds more than {MAX_MEMBERS} members")
            start = at + _BLOCK
            pad = -size % _BLOCK
            if start + size + pad > total:
                raise ValueError(f"{name}: runs past the end of the file")
            members[name] = Member(name, start, size)
            src.seek(start + size)
            if src.read(pad) != bytes(pad):
                raise ValueError(f"{name}: its padding is not zeros")
            at = start + size + pad


class _Slice(io.RawIOBase):
    """A member's bytes, read with pread so several can be open on one descriptor."""

    def __init__(self, fd: int, member: Member) -> None:
        self._fd, self._pos, self._end = fd, member.offset, member.offset + member.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._end - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._pos)
        if not data:
            raise OSError("the snapshot file shrank while it was read")
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class SnapshotTar:
    """A snapshot tar opened for reading through ``scan_tar``; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.members = scan_tar(path)
        self._fd = os.open(path, os.O_RDONLY)

    def open(self, name: str) -> io.BufferedReader:
        """A buffered stream of one member's bytes."""
        return io.BufferedReader(_Slice(self._fd, self.members[name]), 1 << 16)

    def read(self, name: str) -> bytes:
        """One member's bytes, whole."""
        with self.open(name) as stream:
            return stream.read()

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> SnapshotTar:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
