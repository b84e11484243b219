"""Sealing windows into deterministic, signed, chained snapshots read from the store.

Which records a snapshot holds is decided once, when it is first sealed, and stored:
``snapshot_record_ids`` lists the sealed record ids (32 bytes each, in file order). Re-sealing
streams the window from the store again and keeps exactly the listed records (a merge walk:
both are in ``(observed_at, id)`` order), reusing the stored ``sealed_at``, manifest, signature
and timestamp token, so the tar comes out byte-identical; records stored later for that window
are left for ``--amend``. A time cut-off (``collected_at <= sealed_at``) would not do: a batch is
stamped when fetched but committed later, so a record can appear after the seal with an
earlier ``collected_at``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from collector import __version__
from collector.config import Settings
from collector.errors import CollectorError, InputError
from collector.records import EvidenceRecord, format_ts, full_record, parse_ts
from collector.seal import _format as fmt
from collector.seal._readme import readme_text
from collector.seal._tar import write_tar
from collector.seal.keys import SealingKey, public_pem
from collector.seal.oscal import OSCAL_VERSION, ControlStats, OscalInput, write_assessment_results
from collector.windows import Window, parse_window, window_containing, windows_between
from storage import Store
from storage.snapshots import (
    SnapshotContents,
    SnapshotRow,
    earliest_observed,
    insert_snapshot,
    snapshot_contents,
    snapshot_ids,
    snapshot_rows,
    stream_window,
)

__all__ = ["SealError", "SealOptions", "Sealed", "Sealer", "Timestamper", "sealer_from_settings",
           "snapshot_name"]

Timestamper = Callable[[bytes], bytes]
"""Given the signature bytes, returns an RFC 3161 TimeStampResp (DER)."""

_ID_BYTES = 32
_EXC_FIELDS = ("id", "stream", "source_key", "observed_at", "collected_at", "source_url",
               "raw_sha256", "exception_reason", "controls")


class SealError(CollectorError):
    """The store cannot be sealed as asked (inconsistent contents, a concurrent seal)."""


def snapshot_name(window_id: str, seq: int) -> str:
    """``<window>.tar`` for the sealed snapshot, ``<window>.amend-<n>.tar`` for amendments."""
    return f"{window_id}.tar" if seq == 0 else f"{window_id}.amend-{seq}.tar"


@dataclass(frozen=True)
class SealOptions:
    """Window calendar, grace, where tars go, and criteria that always get a population file."""

    period: str
    zone: str
    out_dir: Path
    grace: timedelta = timedelta(days=1)
    in_scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sealed:
    """One snapshot written by a seal: new, or reproduced from the store."""

    window_id: str
    seq: int
    path: Path
    records: int
    merkle_root: str
    reproduced: bool


@dataclass
class _Records:
    count: int
    root: str
    ids: Path
    controls: dict[str, ControlStats]
    hashes: dict[str, str]
    files: dict[str, Path]
    exceptions: Path
    extra: dict[str, Any] = field(default_factory=dict)


def _link(row: SnapshotRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return fmt.chain_link(row.window_id, row.seq, row.merkle_root, row.record_count,
                          row.sums_sha256, row.signature)


def _only(rows: Iterable[EvidenceRecord], blob: bytes | bytearray, what: str
          ) -> Iterator[EvidenceRecord]:
    """The rows whose ids ``blob`` lists, in order; SealError if a listed id is not found."""
    pos = 0
    for row in rows:
        if blob[pos:pos + _ID_BYTES].hex() == row.id:
            pos += _ID_BYTES
            yield row
    if pos != len(blob):
        raise SealError(f"{what}: record {blob[pos:pos + _ID_BYTES].hex()} is no longer in the store")


def _without(rows: Iterable[EvidenceRecord], blobs: list[bytes | bytearray], what: str
             ) -> Iterator[EvidenceRecord]:
    """The rows no blob lists (each blob is a subsequence of the rows, in the same order)."""
    pos = [0] * len(blobs)
    for row in rows:
        for i, blob in enumerate(blobs):
            if blob[pos[i]:pos[i] + _ID_BYTES].hex() == row.id:
                pos[i] += _ID_BYTES
                break
        else:
            yield row
    for i, blob in enumerate(blobs):
        if pos[i] != len(blob):
            raise SealError(f"{what}: sealed record {blob[pos[i]:pos[i] + _ID_BYTES].hex()} "
                            "is no longer in the store")


class Sealer:
    """Seals the store's windows in order into ``out_dir``; one instance per command or job."""

    def __init__(self, store: Store, options: SealOptions, key: SealingKey, *,
                 timestamper: Timestamper | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 version: str = __version__) -> None:
        self.store = store
        self.options = options
        self.key = key
        self.timestamper = timestamper
        self.clock = clock
        self.version = version

    # -- which windows --------------------------------------------------------------------

    def due_window(self) -> Window:
        """The last window whose end plus the grace period has passed."""
        o = self.options
        return window_containing(self.clock() - o.grace, o.period, o.zone).previous()

    def window(self, window_id: str | None) -> Window:
        """The window to seal: ``window_id`` (which must have ended) or the due one."""
        o = self.options
        if window_id is None:
            return self.due_window()
        window = parse_window(window_id, o.zone)
        if window.period != o.period:
            raise InputError(f"window {window_id} is a {window.period}, but [windows].period is "
                             f"{o.period!r}; name a {o.period} such as "
                             f"{window_containing(window.start, o.period, o.zone).id}")
        if window.end > self.clock():
            raise InputError(f"window {window_id} has not ended (it ends {format_ts(window.end)}); "
                             "only ended windows can be sealed")
        return window

    def seal(self, window_id: str | None = None) -> list[Sealed]:
        """Seal the window (and every earlier unsealed one first); re-write it if already sealed."""
        target = self.window(window_id)
        rows = snapshot_rows(self.store)
        sealed = {r.window_id for r in rows if r.seq == 0}
        o = self.options
        start = target.start
        earliest = earliest_observed(self.store)
        if earliest is not None:
            start = min(start, window_containing(parse_ts(earliest), o.period, o.zone).start)
        for row in rows:
            start = min(start, parse_ts(row.window_start))
        out: list[Sealed] = []
        for window in windows_between(start, target.start, o.period, o.zone):
            if window.id == target.id and window.id in sealed:
                out.extend(self.reproduce(window.id))
            elif window.id not in sealed:
                done = self._seal_new(window, 0, [])
                if done is not None:  # always, for seq 0
                    out.append(done)
        return out

    def amend(self, window_id: str) -> Sealed | None:
        """Seal the window's records stored since its last snapshot; None when there are none."""
        window = self.window(window_id)
        earlier = [r for r in snapshot_rows(self.store) if r.window_id == window.id]
        if not earlier:
            raise InputError(f"window {window.id} is not sealed yet: seal it before amending it")
        blobs: list[bytes | bytearray] = [snapshot_ids(self.store, r.window_id, r.seq)
                                          for r in earlier]
        return self._seal_new(window, max(r.seq for r in earlier) + 1, blobs)

    def seal_due(self, now: datetime) -> list[Sealed]:
        """As of ``now``: seal every ended window past its grace that is not sealed yet, oldest
        first, stamped ``now``; [] when the due window is sealed already (nothing is re-written).

        For the daemon's hourly job; this sealer's own clock is left alone.
        """
        as_of = Sealer(self.store, self.options, self.key, timestamper=self.timestamper,
                       clock=lambda: now, version=self.version)
        if as_of.due_window().id in {row.window_id for row in snapshot_rows(self.store)}:
            return []
        return [done for done in as_of.seal() if not done.reproduced]

    def reproduce(self, window_id: str) -> list[Sealed]:
        """Write the window's stored snapshots (sealed and amendments) again, byte-identical."""
        return [self._reproduce(row) for row in snapshot_rows(self.store)
                if row.window_id == window_id]

    # -- building -------------------------------------------------------------------------

    def _records(self, window: Window, start: str, end: str, seq: int, blobs: list[bytes | bytearray]
                 ) -> Iterator[EvidenceRecord]:
        rows = stream_window(self.store, start, end)
        return _without(rows, blobs, f"{window.id}") if seq else rows

    def _seal_new(self, window: Window, seq: int, blobs: list[bytes | bytearray]) -> Sealed | None:
        o = self.options
        chain = snapshot_rows(self.store)
        last = chain[-1] if chain else None
        now = self.clock()
        if last is not None:
            now = max(now, parse_ts(last.sealed_at) + timedelta(microseconds=1))
        sealed_at = format_ts(now)
        start, end = format_ts(window.start), format_ts(window.end)
        o.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".seal-", dir=o.out_dir))
        try:
            recs = _write_records(tmp, self._records(window, start, end, seq, blobs),
                                  o.in_scope if seq == 0 else ())
            if seq and recs.count == 0:
                return None
            manifest_obj = {
                "schema": fmt.SCHEMA,
                "window": {"id": window.id, "period": window.period, "timezone": window.zone,
                           "start": start, "end": end},
                "amends": window.id if seq else None,
                "seq": seq,
                "records": {"file": fmt.FILE_RECORDS, "count": recs.count},
                "controls": {c: s.count for c, s in sorted(recs.controls.items())},
                "merkle": {"alg": fmt.MERKLE_ALG, "tree_size": recs.count, "root": recs.root},
                "previous": _link(last),
                "genesis": last is None,
                "key": {"alg": "ed25519", "spki_sha256": self.key.fingerprint},
                "sealed_at": sealed_at,
                "collector": {"version": self.version},
            }
            manifest = fmt.canonical(manifest_obj)
            pub = public_pem(self.key.public)
            sums = _finish_files(tmp, recs, manifest, manifest_obj, pub)
            signature = self.key.sign(sums)
            token = self.timestamper(signature) if self.timestamper else None
            name = snapshot_name(window.id, seq)
            row = SnapshotRow(
                window_id=window.id, seq=seq, file_name=name, window_start=start, window_end=end,
                sealed_at=sealed_at, record_count=recs.count, merkle_root=recs.root,
                sums_sha256=hashlib.sha256(sums).hexdigest(), signature=signature.hex(),
                key_spki_sha256=self.key.fingerprint, manifest=manifest.decode(),
            )
            part = tmp / "snapshot.tar"
            _write_snapshot(part, recs, sums, signature, token, sealed_at)
            try:
                insert_snapshot(self.store, row, SnapshotContents(pub.decode(), token), recs.ids)
            except Exception as exc:
                raise SealError(f"{name}: cannot store the snapshot row (was it sealed by another "
                                f"process at the same time?): {str(exc).splitlines()[0]}") from exc
            path = o.out_dir / name
            os.replace(part, path)
            return Sealed(window.id, seq, path, recs.count, recs.root, reproduced=False)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _reproduce(self, row: SnapshotRow) -> Sealed:
        o = self.options
        contents = snapshot_contents(self.store, row.window_id, row.seq)
        stored = orjson.loads(row.manifest)
        what = row.file_name
        o.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".seal-", dir=o.out_dir))
        try:
            rows = _only(stream_window(self.store, row.window_start, row.window_end),
                         snapshot_ids(self.store, row.window_id, row.seq), what)
            recs = _write_records(tmp, rows, tuple(stored["controls"]))
            if recs.root != row.merkle_root or recs.count != row.record_count:
                raise SealError(f"{what}: the store no longer gives the sealed Merkle root")
            sums = _finish_files(tmp, recs, row.manifest.encode(), stored,
                                 contents.public_key.encode())
            if hashlib.sha256(sums).hexdigest() != row.sums_sha256:
                raise SealError(f"{what}: re-sealing does not reproduce the stored SHA256SUMS "
                                "(was it sealed by another collector version?)")
            part = tmp / "snapshot.tar"
            _write_snapshot(part, recs, sums, bytes.fromhex(row.signature),
                            contents.timestamp_token, row.sealed_at)
            path = o.out_dir / row.file_name
            os.replace(part, path)
            return Sealed(row.window_id, row.seq, path, recs.count, recs.root, reproduced=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _write_records(tmp: Path, rows: Iterable[EvidenceRecord], always: Iterable[str]) -> _Records:
    """Write records.jsonl and the population files; return counts, root, ids and hashes."""
    (tmp / "controls").mkdir()
    walk = fmt.RecordWalk(lambda control: (tmp / fmt.control_file(control)).open(
        "wb", buffering=1 << 16))
    for control in always:
        walk.population(control)
    ids_path = tmp / "record-ids.bin"
    exc_path = tmp / "exceptions.jsonl"
    canonical, add, row_of = fmt.canonical, walk.add, walk.row
    with (tmp / fmt.FILE_RECORDS).open("wb", buffering=1 << 20) as out, \
            exc_path.open("wb") as exc_out, ids_path.open("wb", buffering=1 << 16) as ids:
        for record in rows:
            obj = full_record(record)
            line = canonical(obj)
            exception = obj["status"] == "exception"
            add(line, row_of(record.id, obj), obj["controls"], exception, record.collected_at)
            out.write(line)
            out.write(b"\n")
            ids.write(bytes.fromhex(record.id))
            if exception:
                exc_out.write(orjson.dumps({k: obj[k] for k in _EXC_FIELDS}) + b"\n")
    hashes = {fmt.FILE_RECORDS: walk.digest.hexdigest()}
    files = {fmt.FILE_RECORDS: tmp / fmt.FILE_RECORDS}
    stats = {}
    for control, pop in walk.populations.items():
        if pop.out is not None:
            pop.out.close()
        name = fmt.control_file(control)
        hashes[name] = pop.digest.hexdigest()
        files[name] = tmp / name
        stats[control] = ControlStats(pop.count, pop.exceptions, pop.last_collected)
    return _Records(walk.count, walk.tree.root_hex(), ids_path, stats, hashes, files, exc_path)


def _exceptions(path: Path) -> Callable[[], Iterator[dict[str, Any]]]:
    def read() -> Iterator[dict[str, Any]]:
        with path.open("rb") as src:
            for line in src:
                yield orjson.loads(line)
    return read


def _finish_files(tmp: Path, recs: _Records, manifest: bytes, manifest_obj: dict[str, Any],
                  pub: bytes) -> bytes:
    """Write the manifest, OSCAL, README and key beside the records; return SHA256SUMS."""
    window = manifest_obj["window"]
    seq = manifest_obj["seq"]
    recs.hashes[fmt.FILE_MANIFEST] = hashlib.sha256(manifest).hexdigest()
    recs.files[fmt.FILE_MANIFEST] = tmp / fmt.FILE_MANIFEST
    recs.files[fmt.FILE_MANIFEST].write_bytes(manifest)
    oscal_path = tmp / fmt.FILE_OSCAL
    oscal_path.parent.mkdir()
    src = OscalInput(
        window_id=window["id"], window_start=window["start"], window_end=window["end"], seq=seq,
        sealed_at=manifest_obj["sealed_at"], merkle_root=recs.root, tree_size=recs.count,
        collector_version=manifest_obj["collector"]["version"], controls=recs.controls,
        file_hashes=dict(recs.hashes), exceptions=_exceptions(recs.exceptions),
    )
    digest = hashlib.sha256()

    class _Tee:
        def __init__(self, out: IO[bytes]) -> None:
            self.out = out

        def write(self, data: bytes) -> int:
            digest.update(data)
            return self.out.write(data)

    with oscal_path.open("wb", buffering=1 << 20) as out:
        write_assessment_results(_Tee(out), src)  # type: ignore[arg-type]
    recs.hashes[fmt.FILE_OSCAL] = digest.hexdigest()
    recs.files[fmt.FILE_OSCAL] = oscal_path
    readme = readme_text(
        name=snapshot_name(window["id"], seq), window=window["id"], start=window["start"],
        end=window["end"], seq=seq, count=recs.count, root=recs.root,
        sealed_at=manifest_obj["sealed_at"], fingerprint=manifest_obj["key"]["spki_sha256"],
        oscal_version=OSCAL_VERSION,
    )
    for name, data in ((fmt.FILE_README, readme), (fmt.FILE_KEY, pub)):
        path = tmp / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        recs.hashes[name] = hashlib.sha256(data).hexdigest()
        recs.files[name] = path
    return fmt.sums_text(recs.hashes)


def _write_snapshot(path: Path, recs: _Records, sums: bytes, signature: bytes,
                    token: bytes | None, sealed_at: str) -> None:
    members: dict[str, Path | bytes] = dict(recs.files)
    members[fmt.FILE_SUMS] = sums
    members[fmt.FILE_SIG] = signature
    if token is not None:
        members[fmt.FILE_TSR] = token
    mtime = int(parse_ts(sealed_at).timestamp())
    with path.open("wb", buffering=1 << 20) as out:
        write_tar(out, [(name, members[name]) for name in sorted(members)], mtime)


def sealer_from_settings(settings: Settings, store: Store, out_dir: Path | None = None) -> Sealer:
    """A sealer configured by ``[windows]``, ``[signing]`` and ``[scope]``.

    For the daemon and ``collector demo``: ``sealer_from_settings(settings, store).seal()``
    seals every ended window whose grace has passed. Raises ``ConfigError`` naming
    ``signing.key_file`` when the key cannot be loaded.
    """
    from collector.errors import ConfigError
    from collector.seal.keys import KeyFileError, load_sealing_key
    from collector.seal.tsa import http_timestamper

    try:
        key = load_sealing_key(settings.resolve(settings.signing.key_file))
    except KeyFileError as exc:
        raise ConfigError(str(settings.path), "signing.key_file", str(exc)) from None
    options = SealOptions(period=settings.windows.period, zone=settings.windows.timezone,
                          out_dir=out_dir or settings.resolve("data/snapshots"),
                          grace=settings.windows.seal_grace, in_scope=tuple(settings.scope.criteria))
    stamper = http_timestamper(settings.signing.tsa_url) if settings.signing.tsa_url else None
    return Sealer(store, options, key, timestamper=stamper)
