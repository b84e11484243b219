"""Helpers for the snapshot tests: real records in a real store, a key, a sealer with a fixed clock."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.records import EvidenceRecord, build_record, format_ts, parsed_body
from collector.seal import _format as fmt
from collector.seal._library import SealedLibrary
from collector.seal._tar import write_tar
from collector.seal.keys import SealingKey, create_key, public_key_path
from collector.seal.snapshot import Sealer, SealOptions, Timestamper
from storage import Store

_seq = itertools.count()


def utc(text: str) -> datetime:
    """An aware UTC datetime from ``2026-10-05T10:00:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def record(observed: str, *, controls: tuple[str, ...] = ("CC6.1", "CC7.2"),
           exception: str | None = None, key: str | None = None,
           collected: str | None = None, stream: str = "synthetic.events",
           kind: str = "access_log", data: dict[str, object] | None = None) -> EvidenceRecord:
    """A real evidence record observed at ``observed`` (built by the production code); ``data``
    adds to its payload."""
    n = next(_seq)
    source_key = key or f"evt-{n:06d}"
    return build_record(
        stream=stream, source_key=source_key, kind=kind,
        observed_at=format_ts(utc(observed)),
        collected_at=format_ts(utc(collected or observed) + timedelta(minutes=5)),
        actor=f"user{n % 7}@example.com", source_url=f"https://synthetic.invalid/events/{source_key}",
        raw_sha256="ab" * 32,
        data={"event": "user.session.start", "n": n, "note": "caf\u00e9, \"q\"", **(data or {})},
        exception_reason=exception, controls=controls, run_id="run-0001",
    )


def add(store: Store, records: Iterable[EvidenceRecord]) -> None:
    """Store records and their filings in one transaction, as the pipeline does."""
    rows, filings = list(records), []
    for r in rows:
        filings.extend((c, r.observed_at, r.id, r.stream, r.status) for c in parsed_body(r)["controls"])
    with store.engine.begin() as conn:
        store.insert_records(conn, rows, filings)


@dataclass
class Clock:
    """A settable clock for the sealer."""

    now: datetime = field(default_factory=lambda: utc("2026-11-20T12:00:00"))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    """A store, a key, an output directory and a clock, wired into sealers on demand."""

    store: Store
    key: SealingKey
    out: Path
    clock: Clock

    @property
    def pub(self) -> Path:
        """The public key file an auditor would be handed."""
        return public_key_path(self.key.path)

    def sealer(self, *, period: str = "month", timestamper: Timestamper | None = None,
               in_scope: tuple[str, ...] = (), library: SealedLibrary | None = None,
               files_url: str | None = None) -> Sealer:
        """A sealer over this environment's store."""
        options = SealOptions(period=period, zone="UTC", out_dir=self.out, in_scope=in_scope,
                              library=library, files_url=files_url)
        return Sealer(self.store, options, self.key, timestamper=timestamper, clock=self.clock)




# -- tampering: a snapshot as a dict of members, edited and re-packed --------------------------

Members = dict[str, bytes]


def extract(path: Path) -> Members:
    """Every member of a tar, by name."""
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def pack(members: Members, path: Path) -> Path:
    """Write members as a tar (sorted, like the sealer)."""
    with path.open("wb") as out:
        write_tar(out, [(n, members[n]) for n in sorted(members)], 0)
    return path


def resum(members: Members) -> None:
    """Recompute SHA256SUMS after an edit, as someone covering their tracks would."""
    members[fmt.FILE_SUMS] = fmt.sums_text({
        n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n not in fmt.SIGNATURE_FILES})


def resign(members: Members, key: SealingKey) -> None:
    """Recompute SHA256SUMS and sign it with ``key``: the operator rewriting a snapshot."""
    resum(members)
    members[fmt.FILE_SIG] = key.sign(members[fmt.FILE_SUMS])


def lines(members: Members) -> list[bytes]:
    """The record lines of ``records.jsonl``, newlines kept."""
    return members["records.jsonl"].splitlines(keepends=True)


# -- the organisation's control library, as the config would load it -------------------------

TAILORED = '''
[[controls]]
id = "ACME-IAM-7"
title = "MFA on every account"
statement = "Every account signs in with MFA; gaps are fixed within 7 days."
owner = "iam-lead@acme.example"
criteria = ["CC6.1"]
every = "1d"
evidence = [{stream = "synthetic.users"}, {stream = "synthetic.events", kind = "change_ticket"}]

[[controls]]
id = "ACME-DOC-1"
title = "MFA policy reviewed yearly"
statement = "The MFA policy is reviewed and approved every year."
owner = "security-lead@acme.example"
criteria = ["CC6.1", "CC5.3"]
every = "1y"
evidence = [{document = "mfa-policy", every = "1y"}]

[[controls]]
id = "ACME-IDLE"
title = "Okta sign-ins are reviewed"
statement = "Okta sign-ins are reviewed weekly."
owner = "security-lead@acme.example"
criteria = ["CC7.2"]
every = "7d"
evidence = [{stream = "okta.system_log"}]
'''


def library(text: str = TAILORED, categories: tuple[str, ...] = ("security",),
            exclude: tuple[dict[str, str], ...] = ()) -> SealedLibrary:
    """A library (TOML ``text``) and scope validated by the production code, as a snapshot seals them."""
    from collector.catalog import Catalog
    from collector.controls import ControlLibrary, resolve_scope
    from collector.seal.snapshot import sealed_library

    catalog = Catalog.builtin()
    lib = ControlLibrary.from_toml(text, "controls.toml", catalog, None)
    return sealed_library(lib, resolve_scope(catalog, categories, exclude), "controls.toml")


@contextlib.contextmanager
def upgraded_store(fixtures: Path, tmp_path: Path) -> Iterator[tuple[Sealer, Path]]:
    """The store of an older version's fixture folder, copied and opened by this version (so
    migrated), with a new sealing key: its Sealer (monthly, clock at 2026-12-05) and public key."""
    shutil.copy(fixtures / "evidence.db", tmp_path / "evidence.db")
    store = Store.open(f"sqlite:///{tmp_path / 'evidence.db'}")
    key = create_key(tmp_path / "keys" / "seal.pem")
    options = SealOptions(period="month", zone="UTC", out_dir=tmp_path / "out", library=library())
    try:
        yield Sealer(store, options, key, clock=Clock(utc("2026-12-05T00:00:00"))), public_key_path(key.path)
    finally:
        store.close()
