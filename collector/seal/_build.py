"""Building one snapshot's files in a work folder: records and populations as they stream, documents,
controls.json, manifest, OSCAL, README, SHA256SUMS, and the tar."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import IO, Any

import orjson

from collector.errors import CollectorError
from collector.records import EvidenceRecord, full_record, parse_ts
from collector.seal import _format as fmt
from collector.seal._library import Populations, SealedLibrary
from collector.seal._readme import readme_text
from collector.seal._tar import write_tar
from collector.seal._verify_sh import VERIFY_SH
from collector.seal.oscal import OSCAL_VERSION, ControlStats, OscalInput, write_assessment_results

__all__ = ["BlobSource", "Built", "SealError", "copy_blobs", "finish_files", "write_records",
           "write_snapshot"]

_EXC_FIELDS = ("id", "stream", "source_key", "observed_at", "collected_at", "source_url",
               "raw_sha256", "exception_reason", "controls")


class SealError(CollectorError):
    """The store cannot be sealed as asked (inconsistent contents, a concurrent seal, a document
    the blob store cannot produce)."""


BlobSource = Callable[[str], IO[bytes]]
"""Opens a document by its SHA-256 (``BlobStore.open``); raises when it cannot."""


@dataclass
class Built:
    """The files of one snapshot written so far, with what the manifest and OSCAL say of them."""

    count: int
    root: str
    ids: Path
    criteria: dict[str, ControlStats]
    controls: dict[str, ControlStats]
    hashes: dict[str, str]
    files: dict[str, Path]
    exceptions: Path
    blobs: list[str] = field(default_factory=list)
    newest: tuple[str, str] | None = None
    """(collected_at, record id) of the record collected last, None when there is none."""


def write_records(tmp: Path, rows: Iterable[EvidenceRecord], pops: Populations,
                  always: Iterable[str], what: str) -> tuple[Built, set[str]]:
    """Write records.jsonl and every population file as the rows stream; return what was built
    and the SHA-256 of every document a record refers to (schema v2).

    ``always`` names population files written even when no record belongs to them (header only).
    SealError names a record whose ``data.file_sha256`` is malformed, a record whose body does
    not hash to its id or whose stored columns disagree with its body (the store was altered
    past its guards: nothing altered is ever signed), and a record too long for a snapshot
    line (``verify`` would refuse the snapshot).
    """
    for folder in ("controls", "criteria"):
        (tmp / folder).mkdir()
    walk = fmt.RecordWalk(lambda name: (tmp / name).open("wb", buffering=1 << 16))
    ids_path = tmp / "record-ids.bin"
    exc_path = tmp / "exceptions.jsonl"
    canonical, add, row_of, names_of = fmt.canonical, walk.add, walk.row, pops.names
    refs: set[str] = set()
    v2 = pops.schema != fmt.SCHEMA_V1
    newest = ("", "")
    with (tmp / fmt.FILE_RECORDS).open("wb", buffering=1 << 20) as out, \
            exc_path.open("wb") as exc_out, ids_path.open("wb", buffering=1 << 16) as ids:
        for record in rows:
            body = record.body.encode()
            if sha256(body).hexdigest() != record.id:
                raise SealError(f"{what}: record {record.id} does not hash to its id (its body hashes "
                                f"to {sha256(body).hexdigest()}): the stored record was altered")
            obj = full_record(record)
            if obj.get("observed_at") != record.observed_at or obj.get("stream") != record.stream \
                    or obj.get("kind") != record.kind:
                raise SealError(f"{what}: record {record.id}: its stored columns disagree with its body: "
                                "the stored record was altered")
            line = canonical(obj)
            if len(line) >= fmt.MAX_RECORD_BYTES:
                raise SealError(f"{what}: record {record.id} is {len(line) + 1:,} bytes as a snapshot line, "
                                f"more than the {fmt.MAX_RECORD_BYTES:,} verify reads")
            exception = obj["status"] == "exception"
            add(line, row_of(record.id, obj),
                names_of(record.stream, record.kind, obj["source_key"], obj["controls"]),
                exception, record.collected_at)
            out.write(line)
            out.write(b"\n")
            if record.collected_at > newest[0]:
                newest = (record.collected_at, record.id)
            ids.write(bytes.fromhex(record.id))
            if exception:
                exc_out.write(orjson.dumps({k: obj[k] for k in _EXC_FIELDS}) + b"\n")
            data = obj["data"]
            if v2 and type(data) is dict and "file_sha256" in data:  # file_ref's test, inline
                try:
                    refs.add(fmt.checked_ref(data["file_sha256"]))
                except ValueError as exc:
                    raise SealError(f"{what}: record {record.id}: {exc}") from None
    for name in always:
        walk.population(name)
    hashes = {fmt.FILE_RECORDS: walk.digest.hexdigest()}
    files = {fmt.FILE_RECORDS: tmp / fmt.FILE_RECORDS}
    criteria: dict[str, ControlStats] = {}
    controls: dict[str, ControlStats] = {}
    for name, pop in walk.populations.items():
        if pop.out is not None:
            pop.out.close()
        hashes[name] = pop.digest.hexdigest()
        files[name] = tmp / name
        stats = ControlStats(pop.count, pop.exceptions, pop.last_collected)
        if name in pops.criterion_of:
            criteria[pops.criterion_of[name]] = stats
        else:
            controls[pops.control_of[name]] = stats
    built = Built(walk.count, walk.tree.root_hex(), ids_path, criteria, controls, hashes, files,
                  exc_path, newest=newest if newest[0] else None)
    return built, refs


def copy_blobs(tmp: Path, built: Built, refs: set[str], open_blob: BlobSource | None,
               what: str) -> None:
    """Copy every referenced document into ``files/sha256/<hex>``, checking each hashes to its
    name; SealError names the first one the blob store cannot produce."""
    if not refs:
        return
    if open_blob is None:
        first = min(refs)
        raise SealError(f"{what}: a record refers to document sha256/{first}, but no blob store "
                        "is configured ([files] url); a snapshot is never sealed without the "
                        "documents its records name")
    folder = tmp / fmt.FILES_PREFIX
    folder.mkdir(parents=True)
    for ref in sorted(refs):
        name = fmt.blob_file(ref)
        digest = hashlib.sha256()
        try:
            with open_blob(ref) as src, (tmp / name).open("wb") as out:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except Exception as exc:  # BlobNotFound, BlobError, OSError: all mean no document
            raise SealError(f"{what}: document sha256/{ref} cannot be read from the blob "
                            f"store: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                            ) from exc
        if digest.hexdigest() != ref:
            raise SealError(f"{what}: document sha256/{ref} in the blob store hashes to "
                            f"{digest.hexdigest()}")
        built.hashes[name] = ref
        built.files[name] = tmp / name
        built.blobs.append(ref)


def _exceptions(path: Path) -> Callable[[], Iterator[dict[str, Any]]]:
    def read() -> Iterator[dict[str, Any]]:
        with path.open("rb") as src:
            for line in src:
                yield orjson.loads(line)
    return read


class _Tee:
    """Writes through to ``out`` while hashing."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)


def finish_files(tmp: Path, built: Built, manifest: bytes, manifest_obj: dict[str, Any],
                 pub: bytes, name: str, library: SealedLibrary | None,
                 library_json: bytes | None) -> bytes:
    """Write controls.json (schema v2 and later), the manifest, OSCAL, README, key and (schema v3)
    verify.sh beside the records; return SHA256SUMS."""
    schema = manifest_obj["schema"]
    type1 = manifest_obj.get("type") == "type1"
    if library_json is not None:
        built.hashes[fmt.FILE_LIBRARY] = hashlib.sha256(library_json).hexdigest()
        built.files[fmt.FILE_LIBRARY] = tmp / fmt.FILE_LIBRARY
        built.files[fmt.FILE_LIBRARY].write_bytes(library_json)
    built.hashes[fmt.FILE_MANIFEST] = hashlib.sha256(manifest).hexdigest()
    built.files[fmt.FILE_MANIFEST] = tmp / fmt.FILE_MANIFEST
    built.files[fmt.FILE_MANIFEST].write_bytes(manifest)
    oscal_path = tmp / fmt.FILE_OSCAL
    oscal_path.parent.mkdir()
    label: str | None = None
    description: str | None = None
    if type1:
        as_of = manifest_obj["as_of"]
        start = end = as_of["end"]
        window_id, seq = f"type1-{as_of['date']}", 0
        label = f"Type 1 as of {as_of['date']}"
        description = (f"The control library, the newest read of every state stream and the "
                       f"documents in force, observed before {end}; sealed at "
                       f"{manifest_obj['sealed_at']}; Merkle root {built.root}.")
    else:
        window = manifest_obj["window"]
        start, end, window_id, seq = window["start"], window["end"], window["id"], manifest_obj["seq"]
    src = OscalInput(
        window_id=window_id, window_start=start, window_end=end, seq=seq,
        sealed_at=manifest_obj["sealed_at"], merkle_root=built.root, tree_size=built.count,
        collector_version=manifest_obj["collector"]["version"], controls=built.criteria,
        file_hashes=dict(built.hashes), exceptions=_exceptions(built.exceptions),
        criteria_dir="controls" if schema == fmt.SCHEMA_V1 else "criteria", library=library,
        org_controls=built.controls, label=label, description=description,
    )
    with oscal_path.open("wb", buffering=1 << 20) as out:
        tee = _Tee(out)
        write_assessment_results(tee, src)  # type: ignore[arg-type]
    built.hashes[fmt.FILE_OSCAL] = tee.digest.hexdigest()
    built.files[fmt.FILE_OSCAL] = oscal_path
    readme = readme_text(
        name=name, window=window_id, start=start, end=end, seq=seq, count=built.count,
        root=built.root, sealed_at=manifest_obj["sealed_at"],
        fingerprint=manifest_obj["key"]["spki_sha256"], oscal_version=OSCAL_VERSION,
        schema=schema, as_of=manifest_obj["as_of"]["date"] if type1 else None,
    )
    members = [(fmt.FILE_README, readme), (fmt.FILE_KEY, pub)]
    if schema not in (fmt.SCHEMA_V1, fmt.SCHEMA_V2):
        members.append((fmt.FILE_VERIFY_SH, VERIFY_SH))
    for member, data in members:
        path = tmp / member
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        built.hashes[member] = hashlib.sha256(data).hexdigest()
        built.files[member] = path
    return fmt.sums_text(built.hashes)


def write_snapshot(path: Path, built: Built, sums: bytes, signature: bytes,
                   token: bytes | None, sealed_at: str) -> None:
    """The tar: every file, SHA256SUMS and its signature (and token), sorted, stamped ``sealed_at``."""
    members: dict[str, Path | bytes] = dict(built.files)
    members[fmt.FILE_SUMS] = sums
    members[fmt.FILE_SIG] = signature
    if token is not None:
        members[fmt.FILE_TSR] = token
    mtime = int(parse_ts(sealed_at).timestamp())
    with path.open("wb", buffering=1 << 20) as out:
        write_tar(out, [(name, members[name]) for name in sorted(members)], mtime)
