"""Append-only guards: triggers that make the database itself refuse UPDATE and DELETE."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

__all__ = ["install_append_only"]

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
