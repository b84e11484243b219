"""Auditor sampling: the N population rows of a criterion ranked first by a hash of the Merkle root."""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
from pathlib import Path
from typing import IO

from collector.errors import InputError
from collector.seal import _format as fmt
from collector.seal._tar import SnapshotTar
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


def sample(path: str | Path, control: str, size: int, seed: str = "") -> list[list[str]]:
    """The header and the ``size`` rows of ``controls/<control>.csv`` with the smallest ranks.

    Rank = hex SHA-256 of ``[<seed>:]<merkle root>:<control>:<record_id>``; rows come out in
    rank order.
    The population file is checked against SHA256SUMS while it is read; run ``collector
    verify`` for the signature and everything else.
    """
    if size < 1:
        raise InputError(f"--size {size}: must be at least 1")
    if seed != seed.strip() or any(c in seed for c in "\n\r\0"):
        raise InputError("--seed: no leading or trailing spaces, line breaks or NULs")
    try:
        name = fmt.control_file(control)
    except ValueError as exc:
        raise InputError(f"--control {control}: {exc}") from None
    where = Path(path).name
    try:
        tar = SnapshotTar(Path(path))
    except OSError as exc:
        raise InputError(f"{where}: cannot read it: {exc}") from None
    except ValueError as exc:
        raise VerificationError(f"{where}: is not a snapshot tar as the collector writes it: {exc}") from None
    with tar:
        members = tar.members
        for required in (fmt.FILE_MANIFEST, fmt.FILE_SUMS):
            if required not in members:
                raise VerificationError(f"{where}: {required}: missing")
            if members[required].size > fmt.MAX_SMALL_FILE:
                raise VerificationError(f"{where}: {required}: is too large")
        try:
            manifest = fmt.loads(tar.read(fmt.FILE_MANIFEST))
            root = manifest["merkle"]["root"]
            if type(root) is not str:
                raise TypeError("merkle.root is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            raise VerificationError(f"{where}: {fmt.FILE_MANIFEST}: not a snapshot manifest: {exc}") from None
        try:
            listed = fmt.parse_sums(tar.read(fmt.FILE_SUMS))
        except ValueError as exc:
            raise VerificationError(f"{where}: {fmt.FILE_SUMS}: {exc}") from None
        if name not in members:
            criteria = manifest.get("controls", {}) if type(manifest) is dict else {}
            have = ", ".join(sorted(criteria)) if type(criteria) is dict else ""
            raise InputError(f"{where}: no population for {control} (criteria: {have or 'none'})")
        hashing = _Hashing(tar.open(name))
        csv.field_size_limit(max(csv.field_size_limit(), fmt.MAX_RECORD_BYTES))  # default 128 KiB
        reader = csv.reader(io.TextIOWrapper(io.BufferedReader(hashing), encoding="utf-8",
                                             newline=""))
        try:
            header = next(reader)
            if tuple(header) != fmt.CSV_HEADER:
                raise VerificationError(f"{where}: {name}: unexpected header")
            rank = fmt.sample_rank
            chosen = heapq.nsmallest(size, reader,
                                     key=lambda row: rank(root, control, row[0], seed))
            for _ in reader:  # read to the end so the whole file is hashed
                pass
        except (csv.Error, UnicodeDecodeError, StopIteration, IndexError) as exc:
            raise VerificationError(f"{where}: {name}: not a population file: {exc}") from None
        if hashing.digest.hexdigest() != listed.get(name):
            raise VerificationError(f"{where}: {name}: SHA-256 does not match SHA256SUMS")
    return [header, *chosen]


