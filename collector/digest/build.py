"""Computes the weekly digest (the DESIGN "Weekly digest" JSON contract) from the store."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from collector.catalog import Catalog
from collector.collect import PlannedStream, plan_streams
from collector.config import Settings
from collector.controls import (
    STARTER_FILE,
    ControlLibrary,
    ControlState,
    CriterionState,
    Exclusion,
    Scope,
    evaluate_controls,
    evaluate_coverage,
    evaluate_criteria,
    owner_actions,
    type1_gaps,
)
from collector.digest.evidence import Period, control_entry, read_evidence
from collector.digest.manual import (
    attestation_counts,
    documents_due,
    documents_received,
    people_coverage,
)
from collector.digest.people import identities_section
from collector.digest.text import clean_tree
from collector.durations import format_duration
from collector.records import format_ts, parse_ts
from collector.windows import Window, parse_window, window_containing, windows_between
from storage import Store
from storage.digest_queries import (
    ExceptionRow,
    criterion_day_counts,
    criterion_range_counts,
    delivery_failures,
    exception_records,
    last_evidence,
    stream_runs,
)

__all__ = ["DELIVERY_LOOKBACK", "DigestScope", "build_digest", "default_week", "event_streams",
           "scope_from_settings"]

DELIVERY_LOOKBACK = timedelta(days=35)
"""How far back failed deliveries of earlier digests are reported."""

# Criteria and controls needing attention first: design gaps, operating gaps, exceptions.
_RANK = {"no_control": 0, "no_evidence": 1, "exceptions": 2, "covered": 3}
_CONTROL_RANK = {"exceptions": 0, "no_evidence": 1, "stale": 2, "due": 3, "operating": 4}
_GroupKey = tuple[str, str, str]


@dataclass(frozen=True)
class DigestScope:
    """Everything a digest needs besides the store: the week, windows, scope, streams and the
    organisation's control library (the starter unless given), with the exclusions from scope."""

    week: Window
    period: str
    in_scope: tuple[str, ...]
    streams: tuple[PlannedStream, ...]
    catalog: Catalog
    library: ControlLibrary = field(default_factory=ControlLibrary.starter)
    excluded: tuple[Exclusion, ...] = ()
    event_streams: frozenset[str] = frozenset()
    """Streams whose records are events (``Stream.mode == "events"``): their exceptions group by
    actor; every other stream's (state reads, documents) by source key."""

    @property
    def zone(self) -> str:
        """The time zone the week is reckoned in."""
        return self.week.zone


def default_week(zone: str, now: datetime) -> Window:
    """The last complete ISO week in ``zone`` before ``now``."""
    return window_containing(now, "week", zone).previous()


_WEEK_ID = re.compile(r"\d{4}-W\d{2}")


def scope_from_settings(settings: Settings, week_id: str | None, now: datetime) -> DigestScope:
    """The digest scope for ``week_id`` (or the last complete week) under ``settings``."""
    from collector.errors import InputError

    zone = settings.windows.timezone
    if week_id is not None and not _WEEK_ID.fullmatch(week_id):
        # checked before parsing: "2026-48" would otherwise be read as a (bad) month
        raise InputError(f"--week {week_id}: expected an ISO week like 2026-W48")
    week = parse_window(week_id, zone) if week_id else default_week(zone, now)
    if week.start > now:
        raise InputError(f"--week {week_id}: that week has not begun (it starts "
                         f"{week.start.date().isoformat()}); the last complete week is "
                         f"{default_week(zone, now).id}")
    catalog = Catalog.builtin()
    streams = plan_streams(settings)
    return DigestScope(week, settings.windows.period, settings.scope.criteria,
                       tuple(streams), catalog, settings.library, settings.scope.excluded,
                       event_streams(settings))


def event_streams(settings: Settings) -> frozenset[str]:
    """The ids of every event stream (``Stream.mode == "events"``) of the built-in connectors and
    of those the config names, enabled or not: records stored earlier group the same way."""
    from connectors.sdk.registry import BUILTIN

    out: set[str] = set()
    for name in sorted({*BUILTIN, *settings.connectors}):
        connector = settings.registry.load(name)
        out.update(f"{name}.{s.name}" for s in connector.stream_types if s.mode == "events")
    return frozenset(out)


def _day_bounds(week: Window) -> tuple[list[str], list[str]]:
    """The 8 local-midnight edges of the week's days (as stored timestamps) and the 7 day labels."""
    tz = ZoneInfo(week.zone)
    first = week.start.astimezone(tz).date()
    days = [first + timedelta(days=i) for i in range(8)]
    edges = [format_ts(datetime.combine(d, time(), tz).astimezone(UTC)) for d in days]
    return edges, [d.isoformat() for d in days[:7]]


def _coverage(scope: DigestScope, criteria: dict[str, CriterionState],
              counts: dict[str, int]) -> dict[str, Any]:
    """``coverage``: designed and operating criteria of those in scope (``ratio`` = operating /
    in_scope), the exclusions, and ``covered``: criteria in scope with evidence filed this week."""
    in_scope = Scope((), scope.in_scope, scope.excluded)
    out = evaluate_coverage(in_scope, [criteria[c] for c in scope.in_scope]).as_dict()
    out["covered"] = sum(1 for c in scope.in_scope if counts.get(c, 0) > 0)
    return out


def _criterion_states(criteria: Sequence[str], states: Sequence[ControlState]) -> dict[str, CriterionState]:
    return {c.id: c for c in evaluate_criteria(Scope((), tuple(criteria), ()), states)}


def _group_exceptions(rows: Iterable[ExceptionRow], scope: DigestScope) -> dict[_GroupKey, dict[str, Any]]:
    """Group exception records by who or what and why; rows come in (observed_at, id) order, so
    the last one seen is the latest and names the group's record.

    A state stream's by (stream, source_key, reason): a user read without MFA every hour is one
    line. An event stream's (``scope.event_streams``) by (stream, actor, reason), the events'
    source keys kept as its occurrences: one person signing in without MFA all week, or week
    after week, is one line that neither appears "new" nor "resolves" when the next event has a
    new id. Each line counts its records per criterion they are filed under, so the listing under
    a criterion adds up to that criterion's exception count.
    """
    order = {c: i for i, c in enumerate(scope.catalog.criteria)}
    in_scope = set(scope.in_scope)
    groups: dict[_GroupKey, dict[str, Any]] = {}
    for row in rows:
        body = orjson.loads(row.body)
        reason = body.get("exception_reason") or "exception"
        controls = sorted(body.get("controls", []), key=lambda c: order.get(c, len(order)))
        by_actor = row.stream in scope.event_streams
        key = (row.stream, f"actor:{row.actor or ''}" if by_actor else f"key:{row.source_key}", reason)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"first_seen": row.observed_at, "occurrences": 0,
                                   "grouped_by": "actor" if by_actor else "source_key",
                                   "source_keys": [], "by_criterion": {}}
        primary = next((c for c in controls if c in in_scope), controls[0] if controls else "")
        kind = str(body.get("kind", ""))
        matched = scope.library.for_record(row.stream, kind)
        if kind in ("document", "attestation"):  # a person missing an acknowledgement, say
            doc_type = str((body.get("data") or {}).get("type", ""))
            matched = tuple(dict.fromkeys((*matched, *scope.library.for_document(doc_type))))
        criteria = list(dict.fromkeys((*group.get("criteria", ()), *controls)))
        criteria.sort(key=lambda c: order.get(c, len(order)))
        group.update(
            record_id=row.record_id, control=primary, criteria=criteria,
            controls=list(dict.fromkeys((*group.get("controls", ()), *(c.id for c in matched)))),
            stream=row.stream, source_key=row.source_key, reason=reason, actor=row.actor,
            source_url=body.get("source_url"), last_seen=row.observed_at,
        )
        group["occurrences"] += 1
        if row.source_key not in group["source_keys"]:
            group["source_keys"].append(row.source_key)
        for c in controls:
            group["by_criterion"][c] = group["by_criterion"].get(c, 0) + 1
    return groups


def _exception_lines(groups: dict[_GroupKey, dict[str, Any]], scope: DigestScope) -> list[dict[str, Any]]:
    order = {c: i for i, c in enumerate(scope.catalog.criteria)}
    fields = ("record_id", "control", "stream", "source_key", "reason", "first_seen", "last_seen",
              "occurrences", "actor", "source_url", "criteria", "controls", "grouped_by",
              "source_keys", "by_criterion")
    lines = [{f: g[f] for f in fields} for g in groups.values()]
    lines.sort(key=lambda e: (order.get(e["control"], len(order)), e["stream"], e["actor"] or "",
                              e["source_key"], e["reason"]))
    return lines


def _stream_entry(plan: PlannedStream, runs: Any, records_week: int, now: datetime) -> dict[str, Any]:
    """A stream's status: ``failing`` when its latest finished run failed (or was partial for a
    reason other than shutdown); else ``stale`` without a successful run within 2 x interval;
    else ``ok``."""
    error = None
    if runs.latest_error is not None:
        error = f"{runs.latest_error_class}: {runs.latest_error}" if runs.latest_error_class \
            else runs.latest_error
    failing = runs.latest_status == "failed" or (
        runs.latest_status == "partial" and runs.latest_error_class != "Shutdown"
    )
    if failing:
        status = "failing"
    elif runs.last_success_at is None or parse_ts(runs.last_success_at) < now - 2 * plan.interval:
        status = "stale"
        if error is None:
            error = ("never collected successfully" if runs.last_success_at is None
                     else f"no successful run within {format_duration(2 * plan.interval)}")
    else:
        status, error = "ok", None
    return {
        "id": plan.id, "status": status, "last_success_at": runs.last_success_at,
        "records_week": records_week, "error": error,
        "interval": format_duration(plan.interval),
        "last_run_at": runs.latest_started_at, "last_run_status": runs.latest_status,
    }


def _changes(scope: DigestScope, coverage: dict[str, Any], previous: dict[str, Any],
             week_counts: dict[str, int], prev_counts: dict[str, int],
             groups: dict[_GroupKey, dict[str, Any]],
             prev_groups: dict[_GroupKey, dict[str, Any]]) -> dict[str, Any]:
    short = ("record_id", "control", "stream", "source_key", "reason", "last_seen", "actor",
             "grouped_by")
    return {
        "previous_week": scope.week.previous().id,
        "coverage": {
            "previous": previous,
            "operating_delta": coverage["operating"] - previous["operating"],
            "covered_delta": coverage["covered"] - previous["covered"],
            "ratio_delta": round(coverage["ratio"] - previous["ratio"], 3),
        },
        "newly_covered": [c for c in scope.in_scope
                          if week_counts.get(c, 0) > 0 and prev_counts.get(c, 0) == 0],
        "newly_uncovered": [c for c in scope.in_scope
                            if week_counts.get(c, 0) == 0 and prev_counts.get(c, 0) > 0],
        "new_exceptions": [{f: groups[k][f] for f in short}
                           for k in sorted(groups.keys() - prev_groups.keys())],
        "resolved_exceptions": [{f: prev_groups[k][f] for f in short}
                                for k in sorted(prev_groups.keys() - groups.keys())],
        "continuing_exceptions": len(groups.keys() & prev_groups.keys()),
    }


def _library_name(library: ControlLibrary) -> str:
    """The starter's packaged name, else the library file's name (not its path on this host)."""
    return library.source if library.source == STARTER_FILE else Path(library.source).name


def _owners(states: Sequence[ControlState]) -> list[dict[str, Any]]:
    """Per owner (sorted): how many controls they own and those needing action this week, why."""
    owned: dict[str, int] = {}
    for state in states:
        owned[state.control.owner] = owned.get(state.control.owner, 0) + 1
    # Most serious first (exceptions, then no evidence, stale, due), library order within each.
    return [{"owner": o.owner, "controls": owned[o.owner],
             "actions": [{"control": a.control, "title": a.title, "status": a.status,
                          "reasons": list(a.reasons)}
                         for a in sorted(o.actions, key=lambda a: _CONTROL_RANK[a.status])]}
            for o in owner_actions(states)]


def build_digest(store: Store, scope: DigestScope, now: datetime) -> dict[str, Any]:
    """The digest for ``scope.week`` as a JSON-ready dict; ``now`` is when it is generated.

    Records belong to the organisation's controls by the library's selectors, applied here
    (never stored), so a tailored library applies to every record already stored.
    """
    week, prev = scope.week, scope.week.previous()
    windows = list(windows_between(week.start, week.end - timedelta(microseconds=1),
                                   scope.period, scope.zone))
    edges, days = _day_bounds(week)
    start, end = format_ts(week.start), format_ts(week.end)
    window_start = format_ts(windows[0].start)
    every = list(scope.catalog.criteria)
    library = scope.library
    periods = (Period("week", week.start, week.end), Period("window", windows[0].start, week.end),
               Period("previous", prev.start, prev.end))
    with store.read_snapshot() as conn:  # every figure from one state of the store
        by_day: dict[str, list[int]] = {}
        exceptions_by_day: dict[str, list[int]] = {}
        for cell in criterion_day_counts(conn, every, edges):
            by_day.setdefault(cell.criterion, [0] * 7)[cell.day] = cell.records
            exceptions_by_day.setdefault(cell.criterion, [0] * 7)[cell.day] = cell.exceptions
        exceptions_week = {c: sum(v) for c, v in exceptions_by_day.items()}
        week_counts = {c: sum(v) for c, v in by_day.items()}
        # Window to date = before the week (from the first window's start) + the week itself.
        window_counts = criterion_range_counts(conn, every, window_start, start)
        for c, n in week_counts.items():
            window_counts[c] = window_counts.get(c, 0) + n
        prev_counts = criterion_range_counts(conn, every, format_ts(prev.start), format_ts(prev.end))
        groups = _group_exceptions(exception_records(conn, every, start, end), scope)
        prev_groups = _group_exceptions(
            exception_records(conn, every, format_ts(prev.start), format_ts(prev.end)), scope
        )
        in_scope = set(scope.in_scope)
        listed = [c for c in every if c in in_scope or week_counts.get(c) or window_counts.get(c)]
        latest = last_evidence(conn, listed, end)
        runs = stream_runs(conn, [s.id for s in scope.streams])
        reading = read_evidence(conn, periods)
        failures = delivery_failures(conn, week.id, format_ts(now - DELIVERY_LOOKBACK))
        received = documents_received(conn, library, start, end)
        attested = {"week": attestation_counts(conn, start, end),
                    "window": attestation_counts(conn, window_start, end)}
        people = people_coverage(conn, library, format_ts(now))
        identities = identities_section(conn, start, end)

    states = evaluate_controls(library, reading.control_evidence(library, "week"), week.end)
    states_window = evaluate_controls(library, reading.control_evidence(library, "window"), week.end)
    states_prev = evaluate_controls(library, reading.control_evidence(library, "previous"), prev.end)
    criteria = _criterion_states(listed, states)
    coverage = _coverage(scope, criteria, week_counts)
    previous = _coverage(scope, _criterion_states(scope.in_scope, states_prev), prev_counts)
    del previous["excluded"]  # the same exclusions; the coverage block above lists them
    lines = _exception_lines(groups, scope)
    criteria_out: list[dict[str, Any]] = []
    for c in listed:
        state = criteria[c]
        criteria_out.append({
            "id": c, "records_week": week_counts.get(c, 0), "records_window": window_counts.get(c, 0),
            "exceptions_week": exceptions_week.get(c, 0), "last_evidence_at": latest.get(c),
            "status": state.status, "controls": list(state.controls), "operating": list(state.operating),
            "title": scope.catalog.criteria[c].title, "in_scope": c in in_scope,
            "exception_lines": sum(1 for e in lines if c in e["criteria"]),
            "records_by_day": by_day.get(c, [0] * 7),
            "exceptions_by_day": exceptions_by_day.get(c, [0] * 7),
        })
    order = {c: i for i, c in enumerate(every)}
    criteria_out.sort(key=lambda e: (not e["in_scope"], _RANK[e["status"]], order[e["id"]]))
    position = {c.id: i for i, c in enumerate(library.controls)}
    controls = [control_entry(w, x) for w, x in zip(states, states_window, strict=True)]
    controls.sort(key=lambda e: (_CONTROL_RANK[e["status"]], position[e["id"]]))
    gaps = type1_gaps([criteria[c] for c in scope.in_scope], states)
    per_stream = reading.stream_records("week")
    # Vendor text reaches every rendering from here: control and bidi characters go now, so the
    # JSON, Markdown, HTML and Slack text never carry them.
    digest: dict[str, Any] = clean_tree({
        "week": week.id,
        "windows": [w.id for w in windows],
        "generated_at": format_ts(now),
        # a week still in progress: its figures are as of generated_at, and will grow
        "partial": now < week.end,
        "coverage": coverage,
        "owners": _owners(states),
        "controls": controls,
        "criteria": criteria_out,
        "exceptions": lines,
        "streams": [_stream_entry(p, runs[p.id], per_stream.get(p.id, 0), now) for p in scope.streams],
        "readiness": {"ready": not gaps, "gaps": list(gaps)},
        "documents": {"received_week": received, "due": documents_due(states)},
        "attestations": attested,
        "people": people,
        "identities": identities,
        "library": {"source": _library_name(library), "controls": len(library)},
        "timezone": scope.zone,
        "week_start": start,
        "week_end": end,
        "window_to_date": {"start": window_start, "end": end},
        "days": days,
        "changes": _changes(scope, coverage, previous, week_counts, prev_counts, groups, prev_groups),
        "delivery_failures": [
            {"week": f.week, "channel": f.channel, "attempted_at": f.attempted_at, "error": f.error}
            for f in failures
        ],
    })
    return digest
