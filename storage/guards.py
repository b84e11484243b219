"""Append-only guards: triggers that make the database itself refuse UPDATE, DELETE and REPLACE."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

__all__ = ["install_append_only", "install_no_replace"]

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION evidence_collector_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql
"""


def install_append_only(conn: Connection, tables: Iterable[str]) -> None:
    """Create the triggers on ``tables`` for the connection's dialect (SQLite or PostgreSQL)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text(_PG_FUNCTION))
    for table in tables:
        if dialect == "sqlite":
            for op in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
                )
        elif dialect == "postgresql":
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION evidence_collector_append_only()"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION evidence_collector_append_only()"
            )
        else:
            raise RuntimeError(f"no append-only guard for database dialect {dialect!r}")


_DEDUPED = frozenset({"evidence", "filings"})
"""Tables the store inserts into with ``INSERT OR IGNORE``: a row whose key is stored already is
skipped (so deduplication works as before), whatever conflict clause the statement names."""


def install_no_replace(conn: Connection, tables: Iterable[str]) -> None:
    """On SQLite, refuse ``INSERT OR REPLACE``/``REPLACE`` and UPSERT on ``tables`` (migration 0006).

    REPLACE deletes the row it conflicts with before inserting, and that hidden delete fires
    no DELETE trigger (unless ``recursive_triggers`` is on), so the UPDATE/DELETE guards let it
    rewrite evidence. A BEFORE INSERT trigger sees the conflict first: a row with a stored key
    is skipped in the tables the store deduplicates into, refused in the others; an explicit
    rowid that is taken is refused. PostgreSQL has no REPLACE and its ON CONFLICT DO UPDATE
    fires the UPDATE guard, so nothing is installed there.
    """
    if conn.dialect.name != "sqlite":
        return
    from storage.models import METADATA

    for table in tables:
        model = METADATA.tables[table]
        match = " AND ".join(f"{c.name} = NEW.{c.name}" for c in model.primary_key.columns)
        refuse = f"RAISE(ABORT, '{table} is append-only: REPLACE refused')"
        action = "RAISE(IGNORE)" if table in _DEDUPED else refuse
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {match}) BEGIN SELECT {action}; END"
        )
        if model.dialect_options["sqlite"]["with_rowid"] is not False:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_no_replace_rowid BEFORE INSERT ON {table} "
                f"WHEN NEW.rowid <> -1 AND EXISTS (SELECT 1 FROM {table} WHERE rowid = NEW.rowid) "
                f"BEGIN SELECT {refuse}; END"
            )
