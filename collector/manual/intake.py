"""The intake folder: a file with a TOML sidecar is stored once, then moved to processed/ or rejected/.

Safe against kill -9 at any instant. A file is stored before it is moved, and storing is
idempotent (the same file of the same type, or the same statement, is stored once), so a pass
killed after the commit stores nothing the next time and only moves. Moving a pair takes two
renames (and a third file for a rejection's reason), so a pass first writes a journal naming
every move, then makes them, then deletes the journal; the next pass finishes any journal it
finds before looking at anything else. A lock file keeps a second process (`collector intake`
beside the daemon) out while a pass runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from collector.attestations import parse_columns
from collector.config import Settings
from collector.errors import InputError
from collector.manual.documents import (
    DocumentFacts,
    add_document,
    import_attestations,
    parse_moment,
    parse_period,
)
from storage import Store
from storage.blobs import BlobStore

__all__ = ["PROCESSED", "REJECTED", "SIDECAR_SUFFIX", "IntakeReport", "intake_pass", "parse_sidecar"]

log = structlog.get_logger("collector.intake")

PROCESSED = "processed"
REJECTED = "rejected"
SIDECAR_SUFFIX = ".toml"
_LOCK = ".intake.lock"
_JOURNAL_PREFIX = ".intake-move-"
_TEMP_PREFIX = ".intake-tmp-"
_DOCUMENT_KEYS = ("type", "control", "controls", "title", "owner", "approved_by", "period", "observed_at")
_IMPORT_KEYS = ("attestations", "columns", "owner")


@dataclass
class IntakeReport:
    """One pass: files stored (new or already stored), rejected (with why), left for later."""

    stored: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    """Files left in place because the store or the blob store failed; the next pass retries."""
    waiting: list[str] = field(default_factory=list)
    attestations: int = 0
    busy: bool = False
    """Another process held the folder; this pass did nothing."""


@dataclass(frozen=True, slots=True)
class _Sidecar:
    """A parsed sidecar: a document's facts, or an attestation import (type and columns)."""

    facts: DocumentFacts | None = None
    import_type: str | None = None
    columns: str | None = None
    owner: str | None = None


def _string(doc: dict[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: {key} must be a string")
    return value


def parse_sidecar(path: Path) -> _Sidecar:
    """A sidecar's document facts or import settings; `InputError` naming the file and the key."""
    where = path.name
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per level: refused like any invalid sidecar
        raise InputError(f"{where}: not valid TOML: arrays or tables nested too deeply") from None
    if "attestations" in doc:
        unknown = sorted(set(doc) - set(_IMPORT_KEYS))
        if unknown:
            raise InputError(f"{where}: unknown key {unknown[0]!r} for an attestation import "
                             f"(known keys: {', '.join(_IMPORT_KEYS)})")
        kind, columns = _string(doc, "attestations", where), _string(doc, "columns", where)
        if not kind or not columns:
            raise InputError(f"{where}: an attestation import needs attestations = \"policy_ack\" "
                             "and columns = \"person=Email,item=Policy,at=Signed\"")
        return _Sidecar(import_type=kind, columns=columns, owner=_string(doc, "owner", where))
    unknown = sorted(set(doc) - set(_DOCUMENT_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(_DOCUMENT_KEYS)}, "
                         "or attestations and columns for an HR export)")
    kind = _string(doc, "type", where)
    if not kind:
        raise InputError(f"{where}: required key 'type' is missing (e.g. type = \"restore-test\")")
    controls = doc.get("controls", [])
    single = _string(doc, "control", where)
    if not isinstance(controls, list) or not all(isinstance(c, str) for c in controls):
        raise InputError(f"{where}: controls must be an array of control ids")
    if single:
        controls = [single, *controls]
    if not controls:
        raise InputError(f"{where}: required key 'control' is missing (the control it is evidence of)")
    period_text, observed_text = _string(doc, "period", where), _string(doc, "observed_at", where)
    if period_text and observed_text:
        raise InputError(f"{where}: give period or observed_at, not both")
    facts = DocumentFacts(
        kind, tuple(dict.fromkeys(controls)), _string(doc, "title", where), _string(doc, "owner", where),
        _string(doc, "approved_by", where),
        parse_period(period_text, f"{where}: period") if period_text else None,
        parse_moment(observed_text, f"{where}: observed_at")[1] if observed_text else None)
    return _Sidecar(facts=facts)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[bool]:
    """Hold the folder's lock for the pass; yields False when another process holds it."""
    fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _free_name(folder: Path, name: str) -> str:
    """``name``, else ``stem (n).ext``: a name whose file, sidecar and ``.error`` are all free in
    ``folder`` (a file of the same name processed earlier keeps its place)."""
    stem, ext = os.path.splitext(name)
    n, candidate = 1, name
    while any((folder / f"{candidate}{s}").exists() for s in ("", SIDECAR_SUFFIX, ".error")):
        n += 1
        candidate = f"{stem} ({n}){ext}"
    return candidate


def _move(folder: Path, name: str, dest: Path, reason: str | None) -> None:
    """Move ``name`` and its sidecar to ``dest`` (with ``<name>.error`` holding ``reason``) through
    a journal, so a kill at any point is finished by the next pass."""
    target = _free_name(dest, name)
    moves = [[name, str(dest / target)], [name + SIDECAR_SUFFIX, str(dest / (target + SIDECAR_SUFFIX))]]
    # Named by a hash: a file name near 255 bytes leaves no room for a prefix.
    journal = folder / f"{_JOURNAL_PREFIX}{hashlib.sha256(name.encode()).hexdigest()[:16]}.json"
    entry: dict[str, Any] = {"moves": moves}
    if reason is not None:
        entry["error"] = [str(dest / (target + ".error")), reason + "\n"]
    _write_atomic(journal, json.dumps(entry))
    _finish(folder, journal)


def _finish(folder: Path, journal: Path) -> None:
    """Make the moves a journal names (those not made yet), then delete it."""
    try:
        entry = json.loads(journal.read_text("utf-8"))
    except (OSError, ValueError):
        journal.unlink(missing_ok=True)  # never fully written: its moves were never started
        return
    if "error" in entry:
        path, text = entry["error"]
        _write_atomic(Path(path), text)
    for source, target in entry["moves"]:
        src, dst = folder / source, Path(target)
        if src.exists() and not dst.exists():
            os.rename(src, dst)
    for folder_moved in {Path(t).parent for _, t in entry["moves"]} | {folder}:
        _fsync_dir(folder_moved)
    journal.unlink()
    _fsync_dir(folder)


def _settled(path: Path, now: float, settle: float) -> bool:
    try:
        return now - path.stat().st_mtime >= settle
    except FileNotFoundError:
        return False


def intake_pass(settings: Settings, store: Store, blobs: BlobStore, *,
                now: datetime | None = None) -> IntakeReport:
    """Process every settled file with a sidecar in ``[intake] folder``, in name order.

    A file without its sidecar (or a sidecar without its file) waits: put the file first and the
    sidecar last. A file or sidecar changed within ``[intake] settle`` waits for the next pass.
    """
    folder = settings.resolve(settings.intake.folder)
    report = IntakeReport()
    if not folder.is_dir():
        raise InputError(f"intake folder {folder} does not exist ([intake] folder)")
    processed, rejected = folder / PROCESSED, folder / REJECTED
    processed.mkdir(exist_ok=True)
    rejected.mkdir(exist_ok=True)
    with _locked(folder) as held:
        if not held:
            report.busy = True
            return report
        for journal in sorted(folder.glob(f"{_JOURNAL_PREFIX}*.json")):
            _finish(folder, journal)
        # Half-written journals and reasons of a killed pass: under the lock, nobody writes them now.
        for place in (folder, rejected):
            for tmp in place.glob(f"{_TEMP_PREFIX}*"):
                tmp.unlink(missing_ok=True)
        names = {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
        clock = time.time()
        settle = settings.intake.settle.total_seconds()
        for name in sorted(names):
            sidecar = name + SIDECAR_SUFFIX
            if sidecar not in names:
                if not (name.endswith(SIDECAR_SUFFIX) and name[: -len(SIDECAR_SUFFIX)] in names):
                    report.waiting.append(name)
                continue
            if not (_settled(folder / name, clock, settle) and _settled(folder / sidecar, clock, settle)):
                report.waiting.append(name)
                continue
            _one(settings, store, blobs, folder, name, report, now)
    if report.stored or report.rejected or report.failed:
        log.info("intake_pass", folder=str(folder), stored=len(report.stored), already=len(report.already),
                 rejected=len(report.rejected), failed=len(report.failed), waiting=len(report.waiting))
    return report


def _one(settings: Settings, store: Store, blobs: BlobStore, folder: Path, name: str,
         report: IntakeReport, now: datetime | None) -> None:
    path = folder / name
    try:
        sidecar = parse_sidecar(folder / (name + SIDECAR_SUFFIX))
        if sidecar.facts is not None:
            added = add_document(settings, store, blobs, path, sidecar.facts, now=now)
            (report.stored if added.new else report.already).append(name)
        else:
            assert sidecar.import_type is not None and sidecar.columns is not None
            imported = import_attestations(settings, store, blobs, path, doc_type=sidecar.import_type,
                                           columns=parse_columns(sidecar.columns), owner=sidecar.owner,
                                           now=now)
            report.attestations += imported.new
            (report.stored if imported.document.new or imported.new else report.already).append(name)
    except InputError as exc:
        reason = str(exc)
        report.rejected[name] = reason
        log.warning("intake_rejected", file=name, reason=reason[:300])
        _move(folder, name, folder / REJECTED, reason)
        return
    except Exception as exc:  # the store or the blob store failed: left in place, the next pass retries
        report.failed[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
        log.error("intake_failed", file=name, error_class=type(exc).__name__, error=str(exc)[:300])
        return
    _move(folder, name, folder / PROCESSED, None)
