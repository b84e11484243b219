"""Auditor sampling: the N population rows of a criterion ranked first by a hash of the Merkle root."""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import tarfile
from pathlib import Path
from typing import IO

from collector.errors import InputError
from collector.seal import _format as fmt
from collector.seal.verify import VerificationError

__all__ = ["sample"]


class _Hashing(io.RawIOBase):
    """Reads through to ``src`` while hashing what was read."""

    def __init__(self, src: IO[bytes]) -> None:
        self.src = src
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.src.read(len(buffer))
        buffer[:len(data)] = data
        self.digest.update(data)
        return len(data)


def sample(path: str | Path, control: str, size: int) -> list[list[str]]:
    """The header and the ``size`` rows of ``controls/<control>.csv`` with the smallest ranks.

    Rank = hex SHA-256 of ``<merkle root>:<control>:<record_id>``; rows come out in rank order.
    The population file is checked against SHA256SUMS while it is read; run ``collector
    verify`` for the signature and everything else.
    """
    if size < 1:
        raise InputError(f"--size {size}: must be at least 1")
    try:
        name = fmt.control_file(control)
    except ValueError as exc:
        raise InputError(f"--control {control}: {exc}") from None
    where = Path(path).name
    try:
        tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed below
    except (OSError, tarfile.TarError) as exc:
        raise InputError(f"{where}: cannot read it as an uncompressed tar: {exc}") from None
    with tar:
        members = {m.name: m for m in tar.getmembers() if m.isreg()}
        for required in (fmt.FILE_MANIFEST, fmt.FILE_SUMS):
            if required not in members:
                raise VerificationError(f"{where}: {required}: missing")
        manifest = fmt.loads(_read(tar, members[fmt.FILE_MANIFEST]))
        listed = fmt.parse_sums(_read(tar, members[fmt.FILE_SUMS]))
        if name not in members:
            have = ", ".join(sorted(manifest.get("controls", {}))) or "none"
            raise InputError(f"{where}: no population for {control} (criteria: {have})")
        root = manifest["merkle"]["root"]
        raw = tar.extractfile(members[name])
        assert raw is not None
        hashing = _Hashing(raw)
        reader = csv.reader(io.TextIOWrapper(io.BufferedReader(hashing), encoding="utf-8",
                                             newline=""))
        header = next(reader)
        if tuple(header) != fmt.CSV_HEADER:
            raise VerificationError(f"{where}: {name}: unexpected header")
        rank = fmt.sample_rank
        chosen = heapq.nsmallest(size, reader, key=lambda row: rank(root, control, row[0]))
        for _ in reader:  # read to the end so the whole file is hashed
            pass
        if hashing.digest.hexdigest() != listed.get(name):
            raise VerificationError(f"{where}: {name}: SHA-256 does not match SHA256SUMS")
    return [header, *chosen]


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    stream = tar.extractfile(member)
    assert stream is not None
    with stream:
        return stream.read()
