"""Reads for the evidence people bring (documents, attestations) and the checks derived from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A stored record's key columns and its canonical body."""

    id: str
    source_key: str
    observed_at: str
    status: str
    body: str

__all__ = [
    "StoredRow",
    "latest_read",
    "newest_by_source_key",
    "record_for_source_key",
    "records_between",
    "source_keys_between",
    "source_keys_with_prefix",
]


def _like(prefix: str) -> str:
    """A LIKE pattern matching ``prefix`` literally at the start (``_`` and ``%`` escaped)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def record_for_source_key(conn: Connection, stream: str, source_key: str) -> str | None:
    """The id of the first record of ``stream`` with ``source_key`` (by observed_at), or None."""
    query = text("SELECT id FROM evidence WHERE stream = :s AND source_key = :k "
                 "ORDER BY observed_at, id LIMIT 1")
    found = conn.execute(query, {"s": stream, "k": source_key}).scalar()
    return None if found is None else str(found)


def source_keys_with_prefix(conn: Connection, stream: str, prefix: str) -> set[tuple[str, str]]:
    """Every (source_key, observed_at) of ``stream`` whose source key starts with ``prefix``.

    Read through ``ix_evidence_stream_observed``: the manual streams hold one record per file
    or statement, so this stays a few hundred thousand rows at most.
    """
    query = text("SELECT source_key, observed_at FROM evidence WHERE stream = :s "
                 "AND source_key LIKE :p ESCAPE '\\'")
    rows = conn.execute(query, {"s": stream, "p": _like(prefix)})
    # LIKE is case-insensitive on SQLite: keep exact prefixes only.
    return {(str(k), str(t)) for k, t in rows if str(k).startswith(prefix)}


def newest_by_source_key(conn: Connection, stream: str, prefix: str,
                         before: str) -> dict[str, str]:
    """The newest ``observed_at`` at or before ``before`` of each source key of ``stream`` that
    starts with ``prefix``."""
    query = text("SELECT source_key, max(observed_at) FROM evidence WHERE stream = :s "
                 "AND source_key LIKE :p ESCAPE '\\' AND observed_at <= :before GROUP BY source_key")
    rows = conn.execute(query, {"s": stream, "p": _like(prefix), "before": before})
    return {str(k): str(t) for k, t in rows if str(k).startswith(prefix)}


def latest_read(conn: Connection, stream: str, before: str | None = None,
                kinds: Sequence[str] = ()) -> tuple[str | None, list[str]]:
    """The newest read of a state stream (at or before ``before``, when given): its ``observed_at``
    (None when there is none) and the bodies of every record of that read (of ``kinds``, when
    given), in the store's order. One probe of ``ix_evidence_stream_observed`` and one range read fetched
    in one call (iterating row by row cost ~0.5 s per 100,000 records in bench/identities.py)."""
    probe = "SELECT max(observed_at) FROM evidence WHERE stream = :s"
    params: dict[str, object] = {"s": stream}
    if before is not None:
        probe += " AND observed_at <= :before"
        params["before"] = before
    newest = conn.execute(text(probe), params).scalar()
    if newest is None:
        return None, []
    query = "SELECT body FROM evidence WHERE stream = :s AND observed_at = :t"
    args: dict[str, object] = {"s": stream, "t": newest}
    if kinds:
        query += " AND kind IN (" + ", ".join(f":k{i}" for i in range(len(kinds))) + ")"
        args.update({f"k{i}": kind for i, kind in enumerate(kinds)})
    # No ORDER BY: SQLite sorted the bodies in a temporary B-tree, 0.5 s per 100,000 records in
    # bench/identities.py. Callers key or sort what they read; the order is the store's.
    bodies = conn.execute(text(query), args).scalars().all()
    return str(newest), [str(body) for body in bodies]


def records_between(conn: Connection, stream: str, start: str, end: str,
                    status: str | None = None) -> list[StoredRow]:
    """Records of ``stream`` observed in ``[start, end)`` (with ``status``, when given), in
    (observed_at, id) order."""
    query = ("SELECT id, source_key, observed_at, status, body FROM evidence WHERE stream = :s "
             "AND observed_at >= :start AND observed_at < :end")
    params = {"s": stream, "start": start, "end": end}
    if status is not None:
        query += " AND status = :status"
        params["status"] = status
    rows = conn.execute(text(query + " ORDER BY observed_at, id"), params)
    return [StoredRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]


def source_keys_between(conn: Connection, stream: str, start: str, end: str,
                        status: str | None = None) -> list[str]:
    """The source key of every record of ``stream`` observed in ``[start, end)`` (with ``status``,
    when given): one entry per record."""
    query = ("SELECT source_key FROM evidence WHERE stream = :s AND observed_at >= :start "
             "AND observed_at < :end")
    params = {"s": stream, "start": start, "end": end}
    if status is not None:
        query += " AND status = :status"
        params["status"] = status
    return [str(k) for (k,) in conn.execute(text(query), params)]
