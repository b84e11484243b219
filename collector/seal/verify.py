"""Offline verification of snapshots and of the chain between them.

Imports only the standard library, ``cryptography`` and ``rfc3161-client`` (the latter only
when a snapshot carries a timestamp token), so an auditor's ``collector verify`` never loads
the store, the connectors or their HTTP clients. Every check raises ``VerificationError``
naming the snapshot and the first failing file, or record and line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.readcap import MAX_KEY_FILE, FileRefused, read_capped
from collector.seal import _format as fmt
from collector.seal._checks import (
    Snapshot,
    VerificationError,
    check_contents,
    check_manifest,
    listed_files,
)
from collector.seal.keys import (
    FingerprintError,
    KeyFileError,
    NoTrustedKeyError,
    fingerprint,
    load_public_key,
)
from collector.windows import parse_window

__all__ = ["TrustedKeys", "VerificationError", "Verified", "signed_by", "verify_chain",
           "verify_snapshot"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class TrustedKeys:
    """Keys the auditor trusts: public keys by fingerprint, and bare pinned fingerprints."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    fingerprints: frozenset[str] = frozenset()

    @classmethod
    def load(cls, key_files: Iterable[str | Path] = (), fingerprints: Iterable[str] = ()
             ) -> TrustedKeys:
        """Trust the PEM public keys in ``key_files`` and the hex SPKI SHA-256 ``fingerprints``.

        KeyFileError names a key file that cannot be read or is not an Ed25519 public key,
        FingerprintError a fingerprint that is not 64 hex digits; NoTrustedKeyError when both
        are empty.
        """
        keys: dict[str, Ed25519PublicKey] = {}
        for path in key_files:
            try:
                data = read_capped(Path(path), MAX_KEY_FILE)
            except OSError as exc:
                raise KeyFileError(f"{path}: {exc.strerror or exc}") from None
            except FileRefused as exc:
                raise KeyFileError(f"{path}: {exc}; a PEM public key is under 1 KiB") from None
            key = load_public_key(data, str(path))
            keys[fingerprint(key)] = key
        pins = set()
        for fp in fingerprints:
            clean = fp.strip().lower().replace(":", "")
            if not _HEX64.fullmatch(clean):
                raise FingerprintError(f"{fp}: expected 64 hex digits (SPKI SHA-256)")
            pins.add(clean)
        if not keys and not pins:
            raise NoTrustedKeyError("no trusted key: give a public key or the fingerprint (SPKI "
                                    "SHA-256) the organisation handed over out of band")
        return cls(keys, frozenset(pins))

    def describe(self) -> str:
        """The trusted fingerprints, for error messages."""
        return ", ".join(sorted(set(self.keys) | self.fingerprints))

    def candidates(self, embedded: Ed25519PublicKey | None) -> list[tuple[str, Ed25519PublicKey]]:
        """Trusted keys to try: every --key, plus the embedded key if its fingerprint is pinned."""
        out = list(self.keys.items())
        if embedded is not None:
            fp = fingerprint(embedded)
            if fp in self.fingerprints and fp not in self.keys:
                out.append((fp, embedded))
        return out


@dataclass(frozen=True)
class Verified:
    """What a valid snapshot says about itself."""

    path: Path
    window_id: str
    seq: int
    records: int
    merkle_root: str
    sums_sha256: str
    signature: str
    key: str
    sealed_at: str
    previous: dict[str, Any] | None
    controls: dict[str, int]
    """The manifest's ``controls``: in schema v1 the counts per criterion, in v2 per control of
    the organisation's."""
    timestamp: str | None
    timezone: str = "UTC"
    schema: str = fmt.SCHEMA_V1
    type: str = "window"
    """``window`` (chained) or ``type1`` (point in time, outside the chain)."""
    criteria: dict[str, int] = field(default_factory=dict)
    """Counts per criterion (in schema v1 the same as ``controls``)."""
    files: int = 0
    """Documents in ``files/`` (schema v2)."""
    as_of: str | None = None
    """The day a Type 1 snapshot is sealed as of."""

    def link(self) -> dict[str, Any]:
        """The ``previous`` object the next snapshot in the chain must carry."""
        return fmt.chain_link(self.window_id, self.seq, self.merkle_root, self.records,
                              self.sums_sha256, self.signature)


def signed_by(sums: bytes, signature: bytes, embedded_pem: bytes | None, trust: TrustedKeys) -> str:
    """The fingerprint of the trusted key whose Ed25519 ``signature`` over ``sums`` (SHA256SUMS)
    holds; ValueError naming what is wrong otherwise. ``embedded_pem`` (``keys/seal.pub.pem``)
    counts only when its fingerprint is pinned."""
    if len(signature) != 64:
        raise ValueError(f"is {len(signature)} bytes, not a raw 64-byte Ed25519 signature")
    try:
        embedded = load_public_key(embedded_pem, fmt.FILE_KEY) if embedded_pem is not None else None
    except KeyFileError:
        embedded = None
    for fp, key in trust.candidates(embedded):
        try:
            key.verify(signature, sums)
        except InvalidSignature:
            continue
        return fp
    raise ValueError(f"SHA256SUMS is not signed by a trusted key (trusted: {trust.describe()})")


def _authenticate(snap: Snapshot, sums: bytes, trust: TrustedKeys) -> str:
    """Verify the signature over SHA256SUMS with a trusted key; return that key's fingerprint."""
    signature = snap.read_small(fmt.FILE_SIG)
    embedded = snap.read_small(fmt.FILE_KEY)
    try:
        return signed_by(sums, signature, embedded, trust)
    except ValueError as exc:
        snap.fail(fmt.FILE_SIG, str(exc))


def verify_snapshot(path: str | Path, trust: TrustedKeys,
                    tsa_roots: Sequence[bytes] = ()) -> Verified:
    """Verify one snapshot completely (schema v1 or v2, a window's or a Type 1); VerificationError
    names the first failing part."""
    snap = Snapshot(Path(path))
    try:
        sums = snap.read_small(fmt.FILE_SUMS, fmt.MAX_SUMS_FILE)
        listed = listed_files(snap, sums)
        signer = _authenticate(snap, sums, trust)
        for name in sorted(listed):
            if name != fmt.FILE_RECORDS and snap.sha256(name) != listed[name]:
                snap.fail(name, "SHA-256 does not match SHA256SUMS")
        m = check_manifest(snap, snap.read_small(fmt.FILE_MANIFEST), signer)
        check_contents(snap, m, listed)
        signature = snap.read_small(fmt.FILE_SIG)
        stamp = None
        if fmt.FILE_TSR in snap.members:
            from collector.seal.tsa import TimestampError, check_token

            try:
                stamp = check_token(snap.read_small(fmt.FILE_TSR), signature, tsa_roots)
            except TimestampError as exc:
                snap.fail(fmt.FILE_TSR, str(exc))
        v1 = m["schema"] == fmt.SCHEMA_V1
        type1 = not v1 and m["type"] == "type1"
        where = m["as_of"] if type1 else m["window"]
        return Verified(
            path=snap.path, window_id=f"type1-{where['date']}" if type1 else where["id"],
            seq=0 if type1 else m["seq"], records=m["records"]["count"],
            merkle_root=m["merkle"]["root"], sums_sha256=hashlib.sha256(sums).hexdigest(),
            signature=signature.hex(), key=signer, sealed_at=m["sealed_at"],
            previous=None if type1 else m["previous"], controls=dict(m["controls"]),
            timestamp=stamp, timezone=where["timezone"], schema=m["schema"],
            type="type1" if type1 else "window",
            criteria=dict(m["controls"] if v1 else m["criteria"]),
            files=0 if v1 else m["files"]["count"], as_of=where["date"] if type1 else None,
        )
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as exc:
        # A crafted but signed snapshot reaching a check in a shape it never expected: still
        # a rejection naming the file, never a traceback.
        raise VerificationError(f"{snap.path.name}: is not a snapshot the collector writes "
                                f"({type(exc).__name__}: {exc})") from None
    finally:
        snap.close()


class _ChainOrder:
    """What the sealer guarantees about the order of a chain, checked across the snapshots given.

    Windows are sealed in order with no gap and once (sequence 0); amendment n of a window
    follows amendment n-1; sealing times never go back. A chain given from its middle may
    start with amendments of windows sealed before its first window.
    """

    def __init__(self) -> None:
        self.last_window: Verified | None = None
        self.first_start: Any = None
        self.seqs: dict[str, int] = {}
        self.sealed_at = ""

    def add(self, v: Verified) -> None:
        where = f"{v.path.name}: {fmt.FILE_MANIFEST}"
        window = parse_window(v.window_id, v.timezone)
        if v.sealed_at < self.sealed_at:
            raise VerificationError(f"{where}: sealed_at {v.sealed_at} is before the snapshot it follows")
        if v.seq == 0:
            if v.window_id in self.seqs:
                raise VerificationError(f"{where}: window {v.window_id} is sealed a second time")
            if self.last_window is not None:
                expected = parse_window(self.last_window.window_id, self.last_window.timezone).next()
                if expected.id != v.window_id:
                    raise VerificationError(
                        f"{where}: window {v.window_id} follows {self.last_window.window_id}, "
                        f"but {expected.id} comes between them: the chain has a gap")
            else:
                self.first_start = window.start
            self.last_window = v
        elif v.window_id in self.seqs:
            if v.seq != self.seqs[v.window_id] + 1:
                raise VerificationError(f"{where}: amendment {v.seq} of {v.window_id} follows "
                                        f"number {self.seqs[v.window_id]}")
        elif self.first_start is not None and window.start >= self.first_start:
            raise VerificationError(f"{where}: amendment {v.seq} of {v.window_id}, a window this "
                                    "chain never sealed")
        self.seqs[v.window_id] = v.seq
        self.sealed_at = v.sealed_at


def verify_chain(paths: Sequence[str | Path], trust: TrustedKeys, tsa_roots: Sequence[bytes] = (),
                 on_verified: Callable[[Verified], None] | None = None) -> list[Verified]:
    """Verify each snapshot, that each window snapshot's ``previous`` names the window snapshot
    before it, and that together they are in the order the sealer makes (no gap, no window
    twice). Type 1 snapshots are verified on their own wherever they are given: they stand
    outside the chain. Returns every snapshot verified, in the order given."""
    done: list[Verified] = []
    chain: list[Verified] = []
    order = _ChainOrder()
    for path in paths:
        current = verify_snapshot(path, trust, tsa_roots)
        if current.type == "window":
            if chain:
                before = chain[-1]
                where = f"{current.path.name}: {fmt.FILE_MANIFEST}"
                if current.previous is None:
                    raise VerificationError(f"{where}: is a genesis snapshot but follows "
                                            f"{before.path.name}")
                expected = before.link()
                for key in fmt.CHAINED_FIELDS:
                    if current.previous.get(key) != expected[key]:
                        raise VerificationError(
                            f"{where}: previous.{key} is {current.previous.get(key)!r}, but "
                            f"{before.path.name} has {expected[key]!r}: the chain is broken")
            order.add(current)  # after the links: a link names a missing snapshot more precisely
            chain.append(current)
        done.append(current)
        if on_verified is not None:
            on_verified(current)
    return done
