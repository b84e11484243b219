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
from typing import IO, Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.errors import CollectorError, InputError
from collector.seal import _format as fmt
from collector.seal._tar import Member, SnapshotTar
from collector.seal.keys import (
    FingerprintError,
    KeyFileError,
    NoTrustedKeyError,
    fingerprint,
    load_public_key,
)
from collector.windows import parse_window

__all__ = ["TrustedKeys", "VerificationError", "Verified", "verify_chain", "verify_snapshot"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class VerificationError(CollectorError):
    """The snapshot (or chain) is not valid; the message names the first failing part."""

    exit_code = 1


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
                data = Path(path).read_bytes()
            except OSError as exc:
                raise KeyFileError(f"{path}: {exc.strerror or exc}") from None
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
    timestamp: str | None
    timezone: str = "UTC"

    def link(self) -> dict[str, Any]:
        """The ``previous`` object the next snapshot in the chain must carry."""
        return fmt.chain_link(self.window_id, self.seq, self.merkle_root, self.records,
                              self.sums_sha256, self.signature)


class _Snapshot:
    """One open snapshot tar (read strictly, never through tarfile) with a ``fail`` that names it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.tar = SnapshotTar(path)
        except OSError as exc:
            raise VerificationError(f"{path.name}: cannot read it: {exc}") from None
        except ValueError as exc:
            raise VerificationError(
                f"{path.name}: is not a snapshot tar as the collector writes it: {exc}"
            ) from None
        self.members: dict[str, Member] = self.tar.members

    def close(self) -> None:
        self.tar.close()

    def fail(self, what: str, problem: str) -> NoReturn:
        raise VerificationError(f"{self.path.name}: {what}: {problem}")

    def open(self, name: str) -> IO[bytes]:
        return self.tar.open(name)

    def read_small(self, name: str) -> bytes:
        if name not in self.members:
            self.fail(name, "missing")
        if self.members[name].size > fmt.MAX_SMALL_FILE:
            self.fail(name, "is too large")
        with self.open(name) as stream:
            return stream.read()

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.open(name) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()


def _listed(snap: _Snapshot, sums: bytes) -> dict[str, str]:
    try:
        listed = fmt.parse_sums(sums)
    except ValueError as exc:
        snap.fail(fmt.FILE_SUMS, str(exc))
    for name in listed:
        if name in fmt.SIGNATURE_FILES:
            snap.fail(fmt.FILE_SUMS, f"lists {name}, which cannot hash itself")
        if name not in snap.members:
            snap.fail(name, "missing (listed in SHA256SUMS)")
    for name in snap.members:
        if name not in listed and name not in fmt.SIGNATURE_FILES:
            snap.fail(name, "extra file, not listed in SHA256SUMS")
    for name in (fmt.FILE_MANIFEST, fmt.FILE_RECORDS, fmt.FILE_OSCAL, fmt.FILE_README, fmt.FILE_KEY):
        if name not in listed:
            snap.fail(name, "missing")
    return listed


def _authenticate(snap: _Snapshot, sums: bytes, trust: TrustedKeys) -> str:
    """Verify the signature over SHA256SUMS with a trusted key; return that key's fingerprint."""
    signature = snap.read_small(fmt.FILE_SIG)
    if len(signature) != 64:
        snap.fail(fmt.FILE_SIG, f"is {len(signature)} bytes, not a raw 64-byte Ed25519 signature")
    try:
        embedded = load_public_key(snap.read_small(fmt.FILE_KEY), fmt.FILE_KEY)
    except KeyFileError:
        embedded = None
    for fp, key in trust.candidates(embedded):
        try:
            key.verify(signature, sums)
        except InvalidSignature:
            continue
        return fp
    snap.fail(fmt.FILE_SIG, f"SHA256SUMS is not signed by a trusted key (trusted: {trust.describe()})")


def _obj(snap: _Snapshot, value: Any, path: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        snap.fail(fmt.FILE_MANIFEST, f"{path} is missing or has the wrong type")
    return value


def _manifest(snap: _Snapshot, data: bytes, signer: str) -> dict[str, Any]:
    """Parse and check the manifest's form, window, key and chain fields."""
    fail = snap.fail
    try:
        m = fmt.loads(data)
    except ValueError as exc:
        fail(fmt.FILE_MANIFEST, f"is not JSON in the record profile: {exc}")
    if not isinstance(m, dict) or fmt.canonical(m) != data:
        fail(fmt.FILE_MANIFEST, "is not canonical (RFC 8785) JSON")
    if m.get("schema") != fmt.SCHEMA:
        fail(fmt.FILE_MANIFEST, f"schema is {m.get('schema')!r}, expected {fmt.SCHEMA!r}")
    win = _obj(snap, m.get("window"), "window", dict)
    for key in ("id", "period", "timezone", "start", "end"):
        _obj(snap, win.get(key), f"window.{key}", str)
    try:
        window = parse_window(win["id"], win["timezone"])
    except (InputError, ValueError, KeyError) as exc:
        fail(fmt.FILE_MANIFEST, f"window {win['id']!r} in {win['timezone']!r}: {exc}")
    bounds = (window.start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
              window.end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if (win["period"], win["start"], win["end"]) != (window.period, *bounds):
        fail(fmt.FILE_MANIFEST, f"window bounds do not match window {window.id} in {window.zone}")
    seq = _obj(snap, m.get("seq"), "seq", int)
    if (seq == 0) != (m.get("amends") is None) or (seq and m.get("amends") != window.id) or seq < 0:
        fail(fmt.FILE_MANIFEST, "seq and amends disagree")
    records = _obj(snap, m.get("records"), "records", dict)
    if records.get("file") != fmt.FILE_RECORDS:
        fail(fmt.FILE_MANIFEST, f"records.file is not {fmt.FILE_RECORDS}")
    count = _obj(snap, records.get("count"), "records.count", int)
    merkle = _obj(snap, m.get("merkle"), "merkle", dict)
    if merkle.get("alg") != fmt.MERKLE_ALG or merkle.get("tree_size") != count:
        fail(fmt.FILE_MANIFEST, "merkle.alg or merkle.tree_size is wrong")
    if not _HEX64.fullmatch(_obj(snap, merkle.get("root"), "merkle.root", str)):
        fail(fmt.FILE_MANIFEST, "merkle.root is not 64 hex digits")
    controls = _obj(snap, m.get("controls"), "controls", dict)
    for control, n in controls.items():
        _obj(snap, n, f"controls.{control}", int)
        try:
            fmt.control_file(control)
        except ValueError as exc:
            fail(fmt.FILE_MANIFEST, f"controls: {exc}")
    previous = m.get("previous")
    if m.get("genesis") is not (previous is None):
        fail(fmt.FILE_MANIFEST, "genesis must be true exactly when previous is null")
    if previous is not None and (not isinstance(previous, dict)
                                 or set(previous) != set(fmt.CHAINED_FIELDS)):
        fail(fmt.FILE_MANIFEST, f"previous must have exactly {', '.join(fmt.CHAINED_FIELDS)}")
    key = _obj(snap, m.get("key"), "key", dict)
    if key.get("alg") != "ed25519" or key.get("spki_sha256") != signer:
        fail(fmt.FILE_MANIFEST, f"key names {key.get('spki_sha256')}, but SHA256SUMS is signed "
                                f"by {signer}")
    sealed_at = _obj(snap, m.get("sealed_at"), "sealed_at", str)
    if not fmt.TS_PATTERN.fullmatch(sealed_at):
        fail(fmt.FILE_MANIFEST, "sealed_at is not an RFC 3339 UTC timestamp")
    return m


def _where(number: int, rid: Any) -> str:
    shown = f" (record {rid})" if isinstance(rid, str) and _HEX64.fullmatch(rid) else ""
    return f"{fmt.FILE_RECORDS} line {number}{shown}"


def _records(snap: _Snapshot, m: dict[str, Any], listed: dict[str, str]) -> dict[str, str]:
    """Check every record line; return the SHA-256 of each regenerated population file."""
    fail = snap.fail
    start, end = m["window"]["start"], m["window"]["end"]
    decode, canonical, sha256 = fmt.decode_text, fmt.canonical, hashlib.sha256
    ts_ok = fmt.TS_PATTERN.fullmatch
    walk = fmt.RecordWalk()
    row_of, add = walk.row, walk.add
    prev: tuple[str, str] = ("", "")
    number = 0
    with snap.open(fmt.FILE_RECORDS) as stream:
        for number, line in enumerate(iter(lambda: stream.readline(fmt.MAX_RECORD_BYTES + 1), b""), 1):
            if len(line) > fmt.MAX_RECORD_BYTES:
                fail(f"{fmt.FILE_RECORDS} line {number}", f"is longer than {fmt.MAX_RECORD_BYTES:,} bytes")
            body = line[:-1]
            try:
                obj = decode(body.decode("utf-8"))
                same = type(obj) is dict and canonical(obj) == body and line[-1:] == b"\n"
            except Exception as exc:
                fail(f"{fmt.FILE_RECORDS} line {number}", f"is not a record in the JSON record "
                                                          f"profile: {exc}")
            try:
                rid = obj.pop("id")
                del obj["collected_at"], obj["run_id"]
                observed = obj["observed_at"]
                controls = obj["controls"]
                row = row_of(rid, obj)
            except (KeyError, AttributeError, TypeError) as exc:
                fail(f"{fmt.FILE_RECORDS} line {number}", f"is not a record (no field {exc})")
            if not same:
                fail(_where(number, rid), "is not in canonical (RFC 8785) form, one line")
            if sha256(canonical(obj)).hexdigest() != rid:
                fail(_where(number, rid),
                     "id is not the SHA-256 of the record without id, collected_at, run_id")
            if type(observed) is not str or not ts_ok(observed):
                fail(_where(number, rid), "observed_at is not an RFC 3339 UTC timestamp")
            if not start <= observed < end:
                fail(_where(number, rid), f"observed_at {observed} is outside window "
                                          f"{m['window']['id']}")
            key = (observed, rid)
            if key <= prev:
                fail(_where(number, rid), "repeats the previous record" if key == prev
                     else "is out of (observed_at, id) order")
            prev = key
            if type(controls) is not list:
                fail(_where(number, rid), "controls is not a list")
            add(body, row, controls, obj["status"] == "exception")
    if number != m["records"]["count"]:
        fail(fmt.FILE_RECORDS, f"holds {number} records, the manifest says {m['records']['count']}")
    root = walk.tree.root_hex()
    if root != m["merkle"]["root"]:
        fail(fmt.FILE_RECORDS, f"Merkle root {root} is not the manifest's {m['merkle']['root']}")
    if walk.digest.hexdigest() != listed[fmt.FILE_RECORDS]:
        fail(fmt.FILE_RECORDS, "SHA-256 does not match SHA256SUMS")
    counts = {c: p.count for c, p in walk.populations.items()}
    for control in sorted(set(counts) | set(m["controls"])):
        if counts.get(control, 0) != m["controls"].get(control):
            fail(fmt.FILE_MANIFEST, f"controls.{control} is {m['controls'].get(control)}, but "
                                    f"{counts.get(control, 0)} records are filed under it")
    return {c: p.digest.hexdigest() for c, p in walk.populations.items()}


def _populations(snap: _Snapshot, m: dict[str, Any], listed: dict[str, str],
                 regenerated: dict[str, str]) -> None:
    empty = hashlib.sha256(fmt.CsvLine().header()).hexdigest()
    files = {name for name in listed if name.startswith("controls/")}
    expected = {fmt.control_file(c) for c in m["controls"]}
    for name in sorted(files ^ expected):
        snap.fail(name, "extra population file" if name in files else "missing population file")
    for control in sorted(m["controls"]):
        name = fmt.control_file(control)
        if listed[name] != regenerated.get(control, empty):
            snap.fail(name, "does not list exactly the records filed under "
                            f"{control} in {fmt.FILE_RECORDS}")


def verify_snapshot(path: str | Path, trust: TrustedKeys,
                    tsa_roots: Sequence[bytes] = ()) -> Verified:
    """Verify one snapshot completely; VerificationError names the first failing part."""
    snap = _Snapshot(Path(path))
    try:
        sums = snap.read_small(fmt.FILE_SUMS)
        listed = _listed(snap, sums)
        signer = _authenticate(snap, sums, trust)
        for name in sorted(listed):
            if name != fmt.FILE_RECORDS and snap.sha256(name) != listed[name]:
                snap.fail(name, "SHA-256 does not match SHA256SUMS")
        m = _manifest(snap, snap.read_small(fmt.FILE_MANIFEST), signer)
        regenerated = _records(snap, m, listed)
        _populations(snap, m, listed, regenerated)
        signature = snap.read_small(fmt.FILE_SIG)
        stamp = None
        if fmt.FILE_TSR in snap.members:
            from collector.seal.tsa import TimestampError, check_token

            try:
                stamp = check_token(snap.read_small(fmt.FILE_TSR), signature, tsa_roots)
            except TimestampError as exc:
                snap.fail(fmt.FILE_TSR, str(exc))
        return Verified(
            path=snap.path, window_id=m["window"]["id"], seq=m["seq"], records=m["records"]["count"],
            merkle_root=m["merkle"]["root"], sums_sha256=hashlib.sha256(sums).hexdigest(),
            signature=signature.hex(), key=signer, sealed_at=m["sealed_at"],
            previous=m["previous"], controls=dict(m["controls"]), timestamp=stamp,
            timezone=m["window"]["timezone"],
        )
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
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
    """Verify each snapshot, that each one's ``previous`` names the one before it, and that
    together they are in the order the sealer makes (no gap, no window twice)."""
    done: list[Verified] = []
    order = _ChainOrder()
    for path in paths:
        current = verify_snapshot(path, trust, tsa_roots)
        if done:
            before = done[-1]
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
        done.append(current)
        if on_verified is not None:
            on_verified(current)
    return done
