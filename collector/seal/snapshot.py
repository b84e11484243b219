"""Sealing windows into deterministic, signed, chained snapshots read from the store, and Type 1
(point in time) snapshots outside the chain.

Which records a snapshot holds is decided once, when it is first sealed, and stored:
``snapshot_record_ids`` lists the sealed record ids (32 bytes each, in file order). Re-sealing
streams the window from the store again and keeps exactly the listed records (a merge walk:
both are in ``(observed_at, id)`` order), reusing the stored ``sealed_at``, manifest, signature,
timestamp token and (schema v2) ``controls.json``, so the tar comes out byte-identical however
the organisation's library has changed since; records stored later for that window are left for
``--amend``. A time cut-off (``collected_at <= sealed_at``) would not do: a batch is stamped when
fetched but committed later, so a record can appear after the seal with an earlier
``collected_at``. Snapshots sealed in schema v1 or v2 re-seal in their own schema; every new one
is v3.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from collector import __version__
from collector.config import MANUAL_STREAMS, Settings
from collector.errors import InputError
from collector.filemodes import DELIVERABLE, DELIVERABLE_DIR, make_dirs, set_mode
from collector.records import EvidenceRecord, format_ts, parse_ts
from collector.seal import _format as fmt
from collector.seal._build import (
    BlobSource,
    Built,
    SealError,
    copy_blobs,
    finish_files,
    write_records,
    write_snapshot,
)
from collector.seal._library import Populations, SealedControl, SealedLibrary, SealedSelector
from collector.seal.keys import SealingKey, public_pem
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
    stream_latest,
    stream_window,
)

if TYPE_CHECKING:
    from collector.controls import ControlLibrary, Scope
    from storage.blobs import BlobStore

__all__ = ["TYPE1_DOCUMENTS", "SealError", "SealOptions", "Sealed", "Sealer", "Timestamper",
           "sealed_library", "sealer_from_settings", "snapshot_name"]

Timestamper = Callable[[bytes], bytes]
"""Given the signature bytes, returns an RFC 3161 TimeStampResp (DER)."""

TYPE1_DOCUMENTS = MANUAL_STREAMS[0]
"""The stream whose records are the documents a Type 1 snapshot holds (``manual.documents``)."""

_ID_BYTES = 32
_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def snapshot_name(window_id: str, seq: int) -> str:
    """``<window>.tar`` for the sealed snapshot, ``<window>.amend-<n>.tar`` for amendments."""
    return f"{window_id}.tar" if seq == 0 else f"{window_id}.amend-{seq}.tar"


@dataclass(frozen=True)
class SealOptions:
    """Window calendar, grace, where tars go, the control library and scope to seal with
    (default: none of the organisation's controls, ``in_scope`` criteria), and where the
    documents records refer to are (``files_url``, a blob store; None: no documents expected)."""

    period: str
    zone: str
    out_dir: Path
    grace: timedelta = timedelta(days=1)
    in_scope: tuple[str, ...] = ()
    library: SealedLibrary | None = None
    files_url: str | None = None
    start: str = ""
    """``[windows] start``: the chain's first window is the one containing this day; "" = the
    window of the oldest stored record."""

    def sealed_library(self) -> SealedLibrary:
        """The library a new snapshot carries in ``controls.json``."""
        return self.library if self.library is not None else SealedLibrary.empty(self.in_scope)


@dataclass(frozen=True)
class Sealed:
    """One snapshot written by a seal: new, or reproduced from the store."""

    window_id: str
    seq: int
    path: Path
    records: int
    merkle_root: str
    reproduced: bool


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
                 version: str = __version__, blobs: BlobStore | None = None) -> None:
        self.store = store
        self.options = options
        self.key = key
        self.timestamper = timestamper
        self.clock = clock
        self.version = version
        self.blobs = blobs
        """Where documents come from (default: opened from ``options.files_url`` on first need)."""

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

    def first_window(self) -> Window | None:
        """The window ``[windows] start`` names (the observation period's first), or None."""
        o = self.options
        if not o.start:
            return None
        day = datetime.combine(date.fromisoformat(o.start), time(), ZoneInfo(o.zone))
        return window_containing(day, o.period, o.zone)

    def seal(self, window_id: str | None = None) -> list[Sealed]:
        """Seal the window (and every earlier unsealed one first); re-write it if already sealed.

        The chain begins (genesis) with the window of ``[windows] start`` when configured, else
        with the window of the oldest stored record: never with empty windows before either.
        """
        target = self.window(window_id)
        rows = snapshot_rows(self.store)
        sealed = {r.window_id for r in rows if r.seq == 0}
        o = self.options
        first = self.first_window()
        if first is not None and not rows and target.start < first.start:
            raise InputError(f"window {target.id} is before [windows] start {o.start} (the "
                             f"observation period begins with {first.id})")
        start = target.start
        if first is not None:
            start = min(start, first.start)
        else:
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
                       clock=lambda: now, version=self.version, blobs=self.blobs)
        if as_of.due_window().id in {row.window_id for row in snapshot_rows(self.store)}:
            return []
        return [done for done in as_of.seal() if not done.reproduced]

    def reproduce(self, window_id: str) -> list[Sealed]:
        """Write the window's stored snapshots (sealed and amendments) again, byte-identical."""
        return [self._reproduce(row) for row in snapshot_rows(self.store)
                if row.window_id == window_id]

    def seal_as_of(self, day: str, state_streams: Collection[str]) -> Sealed:
        """Seal a Type 1 snapshot ``type1-<day>.tar``: the library, for each of ``state_streams``
        and each source key the newest read observed before the end of ``day`` (in the windows'
        time zone), and the newest record of each document (``manual.documents``) then.

        Signed like a window, but outside the chain: no link to any snapshot, nothing stored,
        the chain unchanged. InputError for a malformed day or one that has not ended.
        """
        o = self.options
        try:
            if not _DATE.fullmatch(day):
                raise ValueError
            parsed = date.fromisoformat(day)
        except ValueError:
            raise InputError(f"--as-of {day}: expected a date like 2026-11-15") from None
        end = datetime.combine(parsed + timedelta(days=1), time(), ZoneInfo(o.zone)).astimezone(UTC)
        if end > self.clock():
            raise InputError(f"--as-of {day}: the day has not ended (it ends {format_ts(end)} "
                             f"in {o.zone}); a Type 1 snapshot is sealed as of a past day")
        cutoff = format_ts(end)
        streams = sorted(set(state_streams) - {TYPE1_DOCUMENTS})
        name = f"type1-{day}.tar"
        sealed_at = format_ts(self.clock())
        lib = o.sealed_library()
        head = {"schema": fmt.SCHEMA, "type": "type1",
                "as_of": {"date": day, "timezone": o.zone, "end": cutoff},
                "state_streams": streams, "document_streams": [TYPE1_DOCUMENTS]}
        rows = stream_latest(self.store, [*streams, TYPE1_DOCUMENTS], cutoff)
        done = self._build(name, rows, lib, head, sealed_at, None)
        assert done is not None  # only an empty amendment is skipped
        return done

    # -- building -------------------------------------------------------------------------

    def _records(self, window: Window, start: str, end: str, seq: int, blobs: list[bytes | bytearray]
                 ) -> Iterator[EvidenceRecord]:
        rows = stream_window(self.store, start, end)
        return _without(rows, blobs, f"{window.id}") if seq else rows

    def _open_blob(self) -> BlobSource | None:
        """How documents are read: the blob store, opened on first need (a seal whose records
        name no document never opens it)."""
        if self.blobs is None and self.options.files_url:
            from storage.blobs import BlobError, open_blob_store

            try:
                self.blobs = open_blob_store(self.options.files_url)
            except BlobError as exc:
                raise SealError(f"cannot open the blob store for the documents: {exc}") from exc
        return self.blobs.open if self.blobs is not None else None

    def _seal_new(self, window: Window, seq: int, blobs: list[bytes | bytearray]) -> Sealed | None:
        chain = snapshot_rows(self.store)
        last = chain[-1] if chain else None
        now = self.clock()
        if last is not None:
            now = max(now, parse_ts(last.sealed_at) + timedelta(microseconds=1))
        start, end = format_ts(window.start), format_ts(window.end)
        head = {"schema": fmt.SCHEMA, "type": "window",
                "window": {"id": window.id, "period": window.period, "timezone": window.zone,
                           "start": start, "end": end},
                "amends": window.id if seq else None, "seq": seq,
                "previous": _link(last), "genesis": last is None}
        rows = self._records(window, start, end, seq, blobs)
        return self._build(snapshot_name(window.id, seq), rows, self.options.sealed_library(),
                           head, format_ts(now), (window, seq, start, end))

    def _build(self, name: str, rows: Iterable[EvidenceRecord], lib: SealedLibrary,
               head: dict[str, Any], sealed_at: str,
               chained: tuple[Window, int, str, str] | None) -> Sealed | None:
        """Write one new snapshot (current schema): a window's (``chained``: stored, and None for an empty
        amendment) or a Type 1's (not stored)."""
        o = self.options
        make_dirs(o.out_dir, DELIVERABLE_DIR)
        tmp = Path(tempfile.mkdtemp(prefix=".seal-", dir=o.out_dir))
        try:
            library_json = lib.to_json()
            pops, always = _v2_layout(lib, lib.criteria)
            built, refs = write_records(tmp, rows, pops, always, name)
            if chained is not None and chained[1] and built.count == 0:
                return None
            if built.newest is not None and built.newest[0] > sealed_at:
                # A clock is wrong (fixed, or a replica's behind the collector's): stamping a
                # snapshot before its evidence was collected would be a false claim. Refused,
                # not clamped: the next seal, once this clock has passed it, succeeds.
                raise SealError(f"{name}: record {built.newest[1]} was collected at "
                                f"{built.newest[0]}, after this sealer's clock ({sealed_at}); "
                                "nothing is sealed before it was collected (check the clocks)")
            copy_blobs(tmp, built, refs, self._open_blob() if refs else None, name)
            manifest_obj = {
                **head,
                "records": {"file": fmt.FILE_RECORDS, "count": built.count},
                **_counts(built),
                "library": {"file": fmt.FILE_LIBRARY,
                            "sha256": hashlib.sha256(library_json).hexdigest()},
                "merkle": {"alg": fmt.MERKLE_ALG, "tree_size": built.count, "root": built.root},
                "key": {"alg": "ed25519", "spki_sha256": self.key.fingerprint},
                "sealed_at": sealed_at,
                "collector": {"version": self.version},
            }
            manifest = fmt.canonical(manifest_obj)
            pub = public_pem(self.key.public)
            sums = finish_files(tmp, built, manifest, manifest_obj, pub, name, lib, library_json)
            signature = self.key.sign(sums)
            token = self.timestamper(signature) if self.timestamper else None
            part = tmp / "snapshot.tar"
            write_snapshot(part, built, sums, signature, token, sealed_at)
            if chained is not None:
                window, seq, start, end = chained
                row = SnapshotRow(
                    window_id=window.id, seq=seq, file_name=name, window_start=start,
                    window_end=end, sealed_at=sealed_at, record_count=built.count,
                    merkle_root=built.root, sums_sha256=hashlib.sha256(sums).hexdigest(),
                    signature=signature.hex(), key_spki_sha256=self.key.fingerprint,
                    manifest=manifest.decode(),
                )
                try:
                    insert_snapshot(self.store, row, SnapshotContents(pub.decode(), token,
                                                                      library_json), built.ids)
                except Exception as exc:
                    raise SealError(f"{name}: cannot store the snapshot row (was it sealed by "
                                    "another process at the same time?): "
                                    f"{str(exc).splitlines()[0]}") from exc
            path = o.out_dir / name
            set_mode(part, DELIVERABLE)
            os.replace(part, path)
            window_id = chained[0].id if chained is not None else name.removesuffix(".tar")
            return Sealed(window_id, chained[1] if chained is not None else 0, path, built.count,
                          built.root, reproduced=False)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _reproduce(self, row: SnapshotRow) -> Sealed:
        o = self.options
        contents = snapshot_contents(self.store, row.window_id, row.seq)
        stored = orjson.loads(row.manifest)
        what = row.file_name
        lib: SealedLibrary | None = None
        if stored.get("schema") == fmt.SCHEMA_V1:
            pops = Populations(fmt.SCHEMA_V1, None)
            always = [pops.criterion(c) for c in stored["controls"]]
        else:
            if contents.library is None:
                raise SealError(f"{what}: the store lost the control library it was sealed with")
            lib = SealedLibrary.from_json(contents.library)
            pops, always = _v2_layout(lib, stored["criteria"])
        make_dirs(o.out_dir, DELIVERABLE_DIR)
        tmp = Path(tempfile.mkdtemp(prefix=".seal-", dir=o.out_dir))
        try:
            rows = _only(stream_window(self.store, row.window_start, row.window_end),
                         snapshot_ids(self.store, row.window_id, row.seq), what)
            built, refs = write_records(tmp, rows, pops, always, what)
            if built.root != row.merkle_root or built.count != row.record_count:
                raise SealError(f"{what}: the store no longer gives the sealed Merkle root")
            copy_blobs(tmp, built, refs, self._open_blob() if refs else None, what)
            sums = finish_files(tmp, built, row.manifest.encode(), stored,
                                contents.public_key.encode(), what, lib, contents.library)
            if hashlib.sha256(sums).hexdigest() != row.sums_sha256:
                raise SealError(f"{what}: re-sealing does not reproduce the stored SHA256SUMS "
                                "(was it sealed by another collector version?)")
            part = tmp / "snapshot.tar"
            write_snapshot(part, built, sums, bytes.fromhex(row.signature),
                           contents.timestamp_token, row.sealed_at)
            path = o.out_dir / row.file_name
            set_mode(part, DELIVERABLE)
            os.replace(part, path)
            return Sealed(row.window_id, row.seq, path, built.count, built.root, reproduced=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _v2_layout(lib: SealedLibrary, criteria: Iterable[str]) -> tuple[Populations, list[str]]:
    """Schema v2 populations, and the files always written: every criterion of ``criteria``
    and every control of the library (header only when no record belongs to it)."""
    pops = Populations(fmt.SCHEMA_V2, lib)
    return pops, [*(pops.criterion(c) for c in criteria), *(pops.control(c.id) for c in lib.controls)]


def _counts(built: Built) -> dict[str, Any]:
    """The manifest's counts: per criterion, per control, and of documents."""
    return {"criteria": {c: s.count for c, s in sorted(built.criteria.items())},
            "controls": {c: s.count for c, s in sorted(built.controls.items())},
            "files": {"count": len(built.blobs)}}


def sealed_library(library: ControlLibrary, scope: Scope, source: str) -> SealedLibrary:
    """The library and scope as a snapshot carries them; ``source`` names the library file."""
    controls = tuple(
        SealedControl(c.id, c.title, c.statement, c.owner, tuple(c.criteria), c.every.text,
                      tuple(SealedSelector(**sel.as_dict()) for sel in c.evidence))
        for c in library.controls)
    return SealedLibrary(source, controls, tuple(scope.categories), tuple(scope.criteria),
                         tuple((e.criterion, e.reason) for e in scope.excluded),
                         tuple(MANUAL_STREAMS))


def sealer_from_settings(settings: Settings, store: Store, out_dir: Path | None = None) -> Sealer:
    """A sealer configured by ``[windows]``, ``[signing]``, ``[scope]``, the control library and
    the blob store of ``[files]``; snapshots go to ``out_dir``, else ``[seal] out_dir``.

    For the daemon and ``collector demo``: ``sealer_from_settings(settings, store).seal()``
    seals every ended window whose grace has passed. Raises ``ConfigError`` naming
    ``signing.key_file`` when the key cannot be loaded.
    """
    from collector.controls import STARTER_FILE
    from collector.errors import ConfigError
    from collector.seal.keys import KeyFileError, load_sealing_key
    from collector.seal.tsa import http_timestamper

    try:
        key = load_sealing_key(settings.resolve(settings.signing.key_file))
    except KeyFileError as exc:
        raise ConfigError(str(settings.path), "signing.key_file", str(exc)) from None
    source = Path(settings.controls_library).name if settings.controls_library else STARTER_FILE
    options = SealOptions(period=settings.windows.period, zone=settings.windows.timezone,
                          out_dir=out_dir or settings.resolve(settings.seal.out_dir),
                          grace=settings.windows.seal_grace, in_scope=tuple(settings.scope.criteria),
                          library=sealed_library(settings.library, settings.scope, source),
                          files_url=settings.files_url, start=settings.windows.start)
    stamper = http_timestamper(settings.signing.tsa_url) if settings.signing.tsa_url else None
    return Sealer(store, options, key, timestamper=stamper)
