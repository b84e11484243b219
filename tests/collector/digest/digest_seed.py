"""A seeded store with exactly known evidence for week 2026-W48 (and around it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from collector.catalog import Catalog
from collector.collect import PlannedStream
from collector.digest import DigestScope
from collector.records import EvidenceRecord, build_record, format_ts, parsed_body
from collector.windows import parse_window
from storage import Store

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
IN_SCOPE = ("CC6.1", "CC7.2", "CC8.1", "A1.2")
HOUR = timedelta(hours=1)
EVENT_STREAMS = frozenset({"synthetic.events", "github.pull_requests", "aws.backup_jobs",
                           "okta.system_log"})
"""The seeded streams whose mode is "events" (as their connectors declare)."""


def at(day: int, hour: int = 12, month: int = 11) -> datetime:
    """A moment in 2026 (November by default)."""
    return datetime(2026, month, day, hour, tzinfo=UTC)


def record(stream: str, key: str, kind: str, observed: datetime, controls: tuple[str, ...],
           reason: str | None = None, actor: str | None = "ann@example.com") -> EvidenceRecord:
    """One record, as the pipeline would build it."""
    return build_record(
        stream=stream, source_key=key, kind=kind, observed_at=format_ts(observed),
        collected_at=format_ts(observed + timedelta(minutes=5)), actor=actor,
        source_url=f"https://source.invalid/{stream}/{key}", raw_sha256="0" * 64,
        data={"key": key, "at": format_ts(observed)}, exception_reason=reason, controls=controls,
        run_id="seed-run",
    )


def event(key: str, observed: datetime, reason: str | None = None) -> EvidenceRecord:
    """A synthetic sign-in (access_log, filed under CC6.1 and CC7.2)."""
    return record("synthetic.events", key, "access_log", observed, ("CC6.1", "CC7.2"), reason,
                  actor="bob@example.com" if reason else "ann@example.com")


def user_read(key: str, observed: datetime, reason: str | None = None) -> EvidenceRecord:
    """A synthetic user MFA state read (mfa_status, filed under CC6.1)."""
    return record("synthetic.users", key, "mfa_status", observed, ("CC6.1",), reason,
                  actor=f"{key}@example.com")


def seed_records() -> list[EvidenceRecord]:
    """The seeded evidence; the figures the tests expect are derived by hand in the comments."""
    out: list[EvidenceRecord] = []
    # Before the window (October) and after the week (W49): counted nowhere.
    out += [event(f"oct-{n}", at(30, 10 + n, month=10)) for n in range(2)]
    out.append(event("w49", at(30, 9)))
    # Earlier in the window (W45): 4 events.
    out += [event(f"w45-{n}", at(2, 8 + n)) for n in range(4)]
    # Previous week (W47): one ok event, a user exception (continues), a failed backup (resolves).
    out.append(event("w47-ok", at(18)))
    out.append(user_read("u00001", at(20), "active user has no MFA factor"))
    out.append(record("aws.backup_jobs", "job-1", "backup_result", at(19), ("A1.2",),
                      "backup job FAILED", actor=None))
    # W48 (Mon 23 .. Sun 29): events 3, 2, 0, 1 + 1 exception on Thu; CC8.1 code changes on Fri.
    out += [event(f"mon-{n}", at(23, 9 + n)) for n in range(3)]
    out += [event(f"tue-{n}", at(24, 9 + n)) for n in range(2)]
    out.append(event("thu-0", at(26, 9)))
    out.append(event("evt-x", at(26, 15), "successful sign-in without MFA"))
    out += [record("github.pull_requests", f"acme/api#{n}", "code_change", at(27, 10 + n), ("CC8.1",))
            for n in range(2)]
    # Users read daily: u00001 without MFA every day (one grouped line), u00002 fine.
    for day in range(23, 30):
        out.append(user_read("u00001", at(day, 6), "active user has no MFA factor"))
        out.append(user_read("u00002", at(day, 6)))
    return out


def insert(store: Store, records: list[EvidenceRecord]) -> None:
    """Store records and their filings the way the pipeline does."""
    filings = [(c, r.observed_at, r.id, r.stream, r.status)
               for r in records for c in parsed_body(r)["controls"]]
    with store.engine.begin() as conn:
        store.insert_records(conn, records, filings)


def add_run(store: Store, stream: str, started: datetime, status: str,
            error_class: str | None = None, error: str | None = None) -> None:
    """A finished run row of ``stream``."""
    run_id = str(uuid.uuid4())
    store.start_run(run_id, stream, format_ts(started), None)
    with store.engine.begin() as conn:
        store.update_run(conn, run_id, status=status, ended_at=format_ts(started + timedelta(minutes=1)),
                         error_class=error_class, error=error)


def seed_runs(store: Store) -> None:
    """Runs: events ok 30 min ago; users failing; pull requests ok but 3 h ago (interval 1 h);
    backup jobs stopped by shutdown after a recent ok run (not failing); okta never ran."""
    add_run(store, "synthetic.events", NOW - 30 * timedelta(minutes=1), "ok")
    add_run(store, "synthetic.users", NOW - 3 * HOUR, "ok")
    add_run(store, "synthetic.users", NOW - HOUR, "failed", "AuthError", "okta: token rejected")
    add_run(store, "github.pull_requests", NOW - 3 * HOUR, "ok")
    add_run(store, "aws.backup_jobs", NOW - 2 * HOUR, "ok")
    add_run(store, "aws.backup_jobs", NOW - HOUR, "partial", "Shutdown", "collection stopped by shutdown")


def seeded_scope() -> DigestScope:
    """The digest scope over W48 with the seeded streams (intervals as a config would set them)."""
    streams = (
        PlannedStream("synthetic", "events", frozenset({"access_log"}), HOUR),
        PlannedStream("synthetic", "users", frozenset({"mfa_status"}), HOUR),
        PlannedStream("github", "pull_requests", frozenset({"code_change"}), HOUR),
        PlannedStream("aws", "backup_jobs", frozenset({"backup_result"}), 2 * HOUR),
        PlannedStream("okta", "system_log", frozenset({"access_log"}), 15 * timedelta(minutes=1)),
    )
    return DigestScope(parse_window("2026-W48", "UTC"), "month", IN_SCOPE, streams, Catalog.builtin(),
                       event_streams=EVENT_STREAMS)
