"""Reads for the identity checks and access reviews: stored statements by source-key prefix, with bodies."""

from __future__ import annotations

from sqlalchemy import Connection, text

__all__ = ["bodies_with_prefix"]


def bodies_with_prefix(conn: Connection, stream: str, prefix: str,
                       before: str | None = None) -> list[tuple[str, str, str]]:
    """(id, source_key, body) of every record of ``stream`` whose source key starts with
    ``prefix`` (observed at or before ``before``, when given), in (observed_at, id) order.

    For the manual streams, which hold one record per file or statement: a campaign's decisions
    are a few thousand rows at most.
    """
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = ("SELECT id, source_key, body FROM evidence WHERE stream = :s "
             "AND source_key LIKE :p ESCAPE '\\'")
    params = {"s": stream, "p": like}
    if before is not None:
        query += " AND observed_at <= :before"
        params["before"] = before
    rows = conn.execute(text(query + " ORDER BY observed_at, id"), params)
    # LIKE is case-insensitive on SQLite: keep exact prefixes only.
    return [(str(i), str(k), str(b)) for i, k, b in rows if str(k).startswith(prefix)]


