"""The checks of a snapshot's contents (v1 to v3, windows and Type 1), each failing with the file or record.

Standard library only (with ``_format``, ``_library`` and ``_tar``), like the rest of verification.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

from collector.errors import CollectorError, InputError
from collector.seal import _format as fmt
from collector.seal._library import Populations, SealedLibrary
from collector.seal._tar import Member, SnapshotTar
from collector.seal._verify_sh import VERIFY_SH
from collector.windows import parse_window

__all__ = ["Contents", "Snapshot", "VerificationError", "check_contents", "check_manifest",
           "listed_files"]

HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_FIXED = (fmt.FILE_MANIFEST, fmt.FILE_RECORDS, fmt.FILE_OSCAL, fmt.FILE_README, fmt.FILE_KEY)
_DAY = re.compile(r"\d{4}-\d\d-\d\d")


class VerificationError(CollectorError):
    """The snapshot (or chain) is not valid; the message names the first failing part."""

    exit_code = 1


class Snapshot:
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

    def read_small(self, name: str, limit: int = fmt.MAX_SMALL_FILE) -> bytes:
        if name not in self.members:
            self.fail(name, "missing")
        if self.members[name].size > limit:
            self.fail(name, "is too large")
        with self.open(name) as stream:
            return stream.read()

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.open(name) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()


def listed_files(snap: Snapshot, sums: bytes) -> dict[str, str]:
    """SHA256SUMS parsed, every listed file present and nothing unlisted in the tar."""
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
    for name in _FIXED:
        if name not in listed:
            snap.fail(name, "missing")
    return listed


def _obj(snap: Snapshot, value: Any, path: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        snap.fail(fmt.FILE_MANIFEST, f"{path} is missing or has the wrong type")
    return value


def _counts(snap: Snapshot, m: dict[str, Any], key: str, name_of: Any) -> dict[str, int]:
    """A manifest map of counts, each key a valid population id."""
    counts: dict[str, int] = _obj(snap, m.get(key), key, dict)
    for ident, n in counts.items():
        if _obj(snap, n, f"{key}.{ident}", int) < 0:
            snap.fail(fmt.FILE_MANIFEST, f"{key}.{ident} is negative")
        try:
            name_of(ident)
        except ValueError as exc:
            snap.fail(fmt.FILE_MANIFEST, f"{key}: {exc}")
    return counts


def _window(snap: Snapshot, m: dict[str, Any]) -> None:
    fail = snap.fail
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
    previous = m.get("previous")
    if m.get("genesis") is not (previous is None):
        fail(fmt.FILE_MANIFEST, "genesis must be true exactly when previous is null")
    if previous is not None and (not isinstance(previous, dict)
                                 or set(previous) != set(fmt.CHAINED_FIELDS)):
        fail(fmt.FILE_MANIFEST, f"previous must have exactly {', '.join(fmt.CHAINED_FIELDS)}")


def _as_of(snap: Snapshot, m: dict[str, Any]) -> None:
    """A Type 1 manifest: the day, its time zone and the end of that day; the streams it reads."""
    from datetime import UTC, date, datetime, time, timedelta
    from zoneinfo import ZoneInfo

    as_of = _obj(snap, m.get("as_of"), "as_of", dict)
    for key in ("date", "timezone", "end"):
        _obj(snap, as_of.get(key), f"as_of.{key}", str)
    try:
        if not _DAY.fullmatch(as_of["date"]):
            raise ValueError("not YYYY-MM-DD")
        day = date.fromisoformat(as_of["date"])
        end = datetime.combine(day + timedelta(days=1), time(), ZoneInfo(as_of["timezone"]))
    except (ValueError, KeyError, OSError) as exc:
        snap.fail(fmt.FILE_MANIFEST, f"as_of {as_of['date']!r} in {as_of['timezone']!r}: {exc}")
    if as_of["end"] != end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"):
        snap.fail(fmt.FILE_MANIFEST, f"as_of.end is not the end of {as_of['date']} in "
                                     f"{as_of['timezone']}")
    for key in ("state_streams", "document_streams"):
        streams = _obj(snap, m.get(key), key, list)
        if any(type(s) is not str for s in streams) or streams != sorted(set(streams)):
            snap.fail(fmt.FILE_MANIFEST, f"{key} is not a sorted list of distinct stream ids")
    for key in ("window", "seq", "amends", "previous", "genesis"):
        if key in m:
            snap.fail(fmt.FILE_MANIFEST, f"a Type 1 snapshot has no {key}: it is outside the chain")


def check_manifest(snap: Snapshot, data: bytes, signer: str) -> dict[str, Any]:
    """Parse and check the manifest's form, what it covers (window or Type 1), key and counts."""
    fail = snap.fail
    try:
        m = fmt.loads(data)
    except ValueError as exc:
        fail(fmt.FILE_MANIFEST, f"is not JSON in the record profile: {exc}")
    if not isinstance(m, dict) or fmt.canonical(m) != data:
        fail(fmt.FILE_MANIFEST, "is not canonical (RFC 8785) JSON")
    schema = m.get("schema")
    if schema not in fmt.SCHEMAS:
        fail(fmt.FILE_MANIFEST, f"schema is {schema!r}, expected one of "
                                f"{', '.join(map(repr, fmt.SCHEMAS))}")
    kind = "window" if schema == fmt.SCHEMA_V1 else m.get("type")
    if kind == "window":
        _window(snap, m)
    elif kind == "type1":
        _as_of(snap, m)
    else:
        fail(fmt.FILE_MANIFEST, f"type is {kind!r}, expected 'window' or 'type1'")
    records = _obj(snap, m.get("records"), "records", dict)
    if records.get("file") != fmt.FILE_RECORDS:
        fail(fmt.FILE_MANIFEST, f"records.file is not {fmt.FILE_RECORDS}")
    count = _obj(snap, records.get("count"), "records.count", int)
    merkle = _obj(snap, m.get("merkle"), "merkle", dict)
    if merkle.get("alg") != fmt.MERKLE_ALG or merkle.get("tree_size") != count:
        fail(fmt.FILE_MANIFEST, "merkle.alg or merkle.tree_size is wrong")
    if not HEX64.fullmatch(_obj(snap, merkle.get("root"), "merkle.root", str)):
        fail(fmt.FILE_MANIFEST, "merkle.root is not 64 hex digits")
    if schema == fmt.SCHEMA_V1:
        _counts(snap, m, "controls", lambda c: fmt.criterion_file(c, fmt.SCHEMA_V1))
    else:
        _counts(snap, m, "criteria", fmt.criterion_file)
        _counts(snap, m, "controls", fmt.control_file)
        library = _obj(snap, m.get("library"), "library", dict)
        if library.get("file") != fmt.FILE_LIBRARY or not HEX64.fullmatch(
                _obj(snap, library.get("sha256"), "library.sha256", str)):
            fail(fmt.FILE_MANIFEST, f"library must name {fmt.FILE_LIBRARY} and its SHA-256")
        files = _obj(snap, m.get("files"), "files", dict)
        _obj(snap, files.get("count"), "files.count", int)
    key = _obj(snap, m.get("key"), "key", dict)
    if key.get("alg") != "ed25519" or key.get("spki_sha256") != signer:
        fail(fmt.FILE_MANIFEST, f"key names {key.get('spki_sha256')}, but SHA256SUMS is signed "
                                f"by {signer}")
    sealed_at = _obj(snap, m.get("sealed_at"), "sealed_at", str)
    if not fmt.TS_PATTERN.fullmatch(sealed_at):
        fail(fmt.FILE_MANIFEST, "sealed_at is not an RFC 3339 UTC timestamp")
    return m


@dataclass
class Contents:
    """What the records re-derive: each population's SHA-256 and count, and the documents named."""

    digests: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    refs: set[str] = field(default_factory=set)


def _where(number: int, rid: Any) -> str:
    shown = f" (record {rid})" if isinstance(rid, str) and HEX64.fullmatch(rid) else ""
    return f"{fmt.FILE_RECORDS} line {number}{shown}"


def _library(snap: Snapshot, m: dict[str, Any], listed: dict[str, str]) -> SealedLibrary:
    if fmt.FILE_LIBRARY not in listed:
        snap.fail(fmt.FILE_LIBRARY, "missing")
    if listed[fmt.FILE_LIBRARY] != m["library"]["sha256"]:
        snap.fail(fmt.FILE_LIBRARY, "SHA-256 is not the one manifest.json names")
    try:
        return SealedLibrary.from_json(snap.read_small(fmt.FILE_LIBRARY))
    except ValueError as exc:
        snap.fail(fmt.FILE_LIBRARY, str(exc))


def _records(snap: Snapshot, m: dict[str, Any], listed: dict[str, str], pops: Populations,
             type1: bool) -> Contents:
    """Check every record line; return the re-derived populations and documents."""
    fail = snap.fail
    if type1:
        start, end = "", m["as_of"]["end"]
        allowed = frozenset(m["state_streams"]) | frozenset(m["document_streams"])
        where_to = f"not before as_of.end {end}"
    else:
        start, end = m["window"]["start"], m["window"]["end"]
        allowed = frozenset()
        where_to = f"outside window {m['window']['id']}"
    seen: set[bytes] = set()
    decode, canonical, sha256 = fmt.decode_text, fmt.canonical, hashlib.sha256
    ts_ok = fmt.TS_PATTERN.fullmatch
    walk = fmt.RecordWalk()
    row_of, add, names_of = walk.row, walk.add, pops.names
    v2 = pops.schema != fmt.SCHEMA_V1
    # Schema v3 holds that nothing was sealed before it was collected (earlier sealers could
    # stamp sealed_at from a clock fixed before collection: v1 and v2 are not held to it).
    sealed_at = m["sealed_at"] if m["schema"] == fmt.SCHEMA_V3 else None
    refs: set[str] = set()
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
                collected = obj.pop("collected_at")
                del obj["run_id"]
                observed = obj["observed_at"]
                controls = obj["controls"]
                row = row_of(rid, obj)
                stream_id, kind, source_key = obj["stream"], obj["kind"], obj["source_key"]
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
                fail(_where(number, rid), f"observed_at {observed} is {where_to}")
            if sealed_at is not None and not (type(collected) is str and ts_ok(collected)
                                              and collected <= sealed_at):
                fail(_where(number, rid), f"collected_at {collected} is not an RFC 3339 UTC "
                                          f"timestamp at or before sealed_at {sealed_at}")
            key = (observed, rid)
            if key <= prev:
                fail(_where(number, rid), "repeats the previous record" if key == prev
                     else "is out of (observed_at, id) order")
            prev = key
            if type(controls) is not list:
                fail(_where(number, rid), "controls is not a list")
            if type(stream_id) is not str or type(kind) is not str or type(source_key) is not str:
                fail(_where(number, rid), "stream, kind or source_key is not a string")
            if type1:
                if stream_id not in allowed:
                    fail(_where(number, rid), f"stream {stream_id} is neither a state stream nor "
                                              "a document stream of this Type 1 snapshot")
                pair = sha256(f"{stream_id}\n{source_key}".encode()).digest()[:16]
                if pair in seen:
                    fail(_where(number, rid), f"a second record of {stream_id} {source_key}: a "
                                              "Type 1 snapshot holds only the newest")
                seen.add(pair)
            data = obj["data"]
            try:
                names = names_of(stream_id, kind, source_key, controls)
                if v2 and type(data) is dict and "file_sha256" in data:  # file_ref's test, inline
                    refs.add(fmt.checked_ref(data["file_sha256"]))
            except (ValueError, TypeError) as exc:
                fail(_where(number, rid), f"controls or data: {exc}")
            add(body, row, names, obj["status"] == "exception")
    if number != m["records"]["count"]:
        fail(fmt.FILE_RECORDS, f"holds {number} records, the manifest says {m['records']['count']}")
    root = walk.tree.root_hex()
    if root != m["merkle"]["root"]:
        fail(fmt.FILE_RECORDS, f"Merkle root {root} is not the manifest's {m['merkle']['root']}")
    if walk.digest.hexdigest() != listed[fmt.FILE_RECORDS]:
        fail(fmt.FILE_RECORDS, "SHA-256 does not match SHA256SUMS")
    return Contents({n: p.digest.hexdigest() for n, p in walk.populations.items()},
                    {n: p.count for n, p in walk.populations.items()}, refs)


def _populations(snap: Snapshot, m: dict[str, Any], listed: dict[str, str], pops: Populations,
                 library: SealedLibrary | None, found: Contents) -> None:
    """Every population file re-derived: the expected set, the manifest's counts, the bytes."""
    if library is None:
        expected = {pops.criterion(c): ("controls", c) for c in m["controls"]}
    else:
        for criterion in library.criteria:
            if criterion not in m["criteria"]:
                snap.fail(fmt.FILE_MANIFEST, f"criteria has no count for {criterion}, which "
                                             f"{fmt.FILE_LIBRARY} puts in scope")
        ids = [c.id for c in library.controls]
        if sorted(m["controls"]) != sorted(ids):
            snap.fail(fmt.FILE_MANIFEST, f"controls does not count exactly the controls of "
                                         f"{fmt.FILE_LIBRARY}")
        expected = {pops.criterion(c): ("criteria", c) for c in m["criteria"]}
        expected.update({pops.control(c): ("controls", c) for c in ids})
    for name in sorted(set(expected) | set(found.counts)):
        if name not in expected:
            key, ident = (("criteria", pops.criterion_of[name]) if name in pops.criterion_of
                          else ("controls", pops.control_of[name]))
        else:
            key, ident = expected[name]
        n = found.counts.get(name, 0)
        if n != m[key].get(ident):
            how = ("records are filed under it" if name in pops.criterion_of
                   else "records match its selectors")
            snap.fail(fmt.FILE_MANIFEST, f"{key}.{ident} is {m[key].get(ident)}, but {n} {how}")
    prefixes = ("controls/",) if library is None else ("controls/", "criteria/")
    files = {name for name in listed if name.startswith(prefixes)}
    for name in sorted(files ^ set(expected)):
        snap.fail(name, "extra population file" if name in files else "missing population file")
    empty = hashlib.sha256(fmt.CsvLine().header()).hexdigest()
    for name in sorted(expected):
        if listed[name] != found.digests.get(name, empty):
            key, ident = expected[name]
            what = (f"the records filed under {ident}" if name in pops.criterion_of
                    else f"the records the selectors of control {ident} match")
            snap.fail(name, f"does not list exactly {what} in {fmt.FILE_RECORDS}")


def _documents(snap: Snapshot, m: dict[str, Any], listed: dict[str, str], refs: set[str]) -> None:
    """files/: each named by its own SHA-256, one for every document a record names, no other."""
    present = set()
    for name in sorted(listed):
        if name.startswith("files/"):
            ref = name.removeprefix(fmt.FILES_PREFIX)
            if not name.startswith(fmt.FILES_PREFIX) or not HEX64.fullmatch(ref):
                snap.fail(name, "extra file: documents are files/sha256/<hex>")
            if listed[name] != ref:
                snap.fail(name, f"SHA-256 is {listed[name]}, not the name it is filed under")
            if ref not in refs:
                snap.fail(name, "extra document: no record refers to it")
            present.add(ref)
    for ref in sorted(refs - present):
        snap.fail(fmt.blob_file(ref), "missing: a record refers to this document")
    if m["files"]["count"] != len(present):
        snap.fail(fmt.FILE_MANIFEST, f"files.count is {m['files']['count']}, but the snapshot "
                                     f"holds {len(present)} documents")


def _verify_sh(snap: Snapshot, listed: dict[str, str]) -> None:
    """A v3 snapshot's verify.sh is exactly the script the collector writes: an auditor may run
    it, so a sealer must not be able to ship one that approves anything."""
    if fmt.FILE_VERIFY_SH not in listed:
        snap.fail(fmt.FILE_VERIFY_SH, "missing: a v3 snapshot carries it")
    if listed[fmt.FILE_VERIFY_SH] != hashlib.sha256(VERIFY_SH).hexdigest():
        snap.fail(fmt.FILE_VERIFY_SH, "is not the script the collector writes (compare it with "
                                      "the collector's source before running it)")


def check_contents(snap: Snapshot, m: dict[str, Any], listed: dict[str, str]) -> None:
    """Everything after the signature and the manifest: the library (v2), every record, every
    population, the documents, and that no listed file is one a snapshot does not have."""
    v2 = m["schema"] != fmt.SCHEMA_V1  # v3 is v2's layout plus verify.sh
    library = _library(snap, m, listed) if v2 else None
    pops = Populations(m["schema"], library)
    found = _records(snap, m, listed, pops, v2 and m["type"] == "type1")
    _populations(snap, m, listed, pops, library, found)
    if v2:
        _documents(snap, m, listed, found.refs)
    known = {*_FIXED, *(fmt.FILE_LIBRARY,) * v2}
    if m["schema"] == fmt.SCHEMA_V3:
        _verify_sh(snap, listed)
        known.add(fmt.FILE_VERIFY_SH)
    for name in sorted(listed):
        if name not in known and not name.startswith(("controls/", "criteria/", "files/")
                                                     if v2 else ("controls/",)):
            snap.fail(name, "extra file: not one a snapshot holds")
