"""Auditor sampling: the N rows of a population ranked first by a hash of the Merkle root and a seed."""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
from pathlib import Path
from typing import IO, Any

from collector.errors import InputError
from collector.seal import _format as fmt
from collector.seal._tar import SnapshotTar
from collector.seal.verify import TrustedKeys, VerificationError, signed_by

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


def _population_file(schema: Any, ident: str, by: str) -> str:
    """The population file to sample: v2 ``criteria/<ID>.csv`` or ``controls/<ID>.csv``; v1
    ``controls/<criterion>.csv`` for both flags (v1 populations are per criterion)."""
    try:
        if schema == fmt.SCHEMA_V1:
            return fmt.criterion_file(ident, fmt.SCHEMA_V1)
        return fmt.criterion_file(ident) if by == "criterion" else fmt.control_file(ident)
    except ValueError as exc:
        raise InputError(f"--{by} {ident}: {exc}") from None


def _authenticate(tar: SnapshotTar, where: str, sums: bytes, trust: TrustedKeys) -> None:
    """SHA256SUMS is signed by a trusted key; VerificationError naming the signature otherwise."""
    for name in (fmt.FILE_SIG, fmt.FILE_KEY):
        if name not in tar.members:
            raise VerificationError(f"{where}: {name}: missing")
        if tar.members[name].size > fmt.MAX_SMALL_FILE:
            raise VerificationError(f"{where}: {name}: is too large")
    try:
        signed_by(sums, tar.read(fmt.FILE_SIG), tar.read(fmt.FILE_KEY), trust)
    except ValueError as exc:
        raise VerificationError(f"{where}: {fmt.FILE_SIG}: {exc}") from None


def sample(path: str | Path, control: str, size: int, seed: str = "", *,
           by: str = "criterion", trust: TrustedKeys | None = None) -> list[list[str]]:
    """The header and the ``size`` rows of a population with the smallest ranks.

    ``by="criterion"`` samples criterion ``control`` (``criteria/<ID>.csv``), ``by="control"``
    the organisation's control ``control`` (``controls/<ID>.csv``); in a schema v1 snapshot both
    sample the criterion's ``controls/<ID>.csv``. Rank = hex SHA-256 of
    ``[<seed>:]<merkle root>:<ID>:<record_id>``; rows come out in rank order. The manifest (whose
    Merkle root seeds the rank) and the population file are checked against SHA256SUMS, and with
    ``trust`` SHA256SUMS against its signature by a trusted key (VerificationError otherwise); run
    ``collector verify`` for everything else.
    """
    if by not in ("criterion", "control"):
        raise ValueError(f"by must be 'criterion' or 'control', not {by!r}")
    if size < 1:
        raise InputError(f"--size {size}: must be at least 1")
    if seed != seed.strip() or any(c in seed for c in "\n\r\0"):
        raise InputError("--seed: no leading or trailing spaces, line breaks or NULs")
    where = Path(path).name
    try:
        tar = SnapshotTar(Path(path))
    except OSError as exc:
        raise InputError(f"{where}: cannot read it: {exc}") from None
    except ValueError as exc:
        raise VerificationError(f"{where}: is not a snapshot tar as the collector writes it: {exc}") from None
    with tar:
        members = tar.members
        for required, limit in ((fmt.FILE_MANIFEST, fmt.MAX_SMALL_FILE),
                                (fmt.FILE_SUMS, fmt.MAX_SUMS_FILE)):
            if required not in members:
                raise VerificationError(f"{where}: {required}: missing")
            if members[required].size > limit:
                raise VerificationError(f"{where}: {required}: is too large")
        sums = tar.read(fmt.FILE_SUMS)
        if trust is not None:
            _authenticate(tar, where, sums, trust)
        try:
            listed = fmt.parse_sums(sums)
        except ValueError as exc:
            raise VerificationError(f"{where}: {fmt.FILE_SUMS}: {exc}") from None
        data = tar.read(fmt.FILE_MANIFEST)
        if hashlib.sha256(data).hexdigest() != listed.get(fmt.FILE_MANIFEST):
            raise VerificationError(f"{where}: {fmt.FILE_MANIFEST}: SHA-256 does not match SHA256SUMS")
        try:
            manifest = fmt.loads(data)
            root = manifest["merkle"]["root"]
            if type(root) is not str:
                raise TypeError("merkle.root is not a string")
            schema = manifest.get("schema")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise VerificationError(f"{where}: {fmt.FILE_MANIFEST}: not a snapshot manifest: {exc}") from None
        name = _population_file(schema, control, by)
        if name not in members:
            key = "controls" if schema == fmt.SCHEMA_V1 or by == "control" else "criteria"
            known = manifest.get(key, {})
            have = ", ".join(sorted(known)) if type(known) is dict else ""
            label = "criteria" if key == "criteria" or schema == fmt.SCHEMA_V1 else "controls"
            raise InputError(f"{where}: no population for {control} ({label}: {have or 'none'})")
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
