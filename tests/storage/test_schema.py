"""A new store created from storage.models is the store the Alembic migrations build, catalog for catalog."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from schema_helpers import alembic_store

from storage import Store
from storage.engine import SCHEMA_HEAD, create_store_engine, migrate, schema_version
from storage.models import EvidenceTable, SnapshotIdsTable

Catalog = dict[str, list[tuple[object, ...]]]

_PG_QUERIES = {
    "relations": """SELECT c.relname, c.relkind, coalesce(array_to_string(c.reloptions, ','), '')
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = current_schema()""",
    "columns": """SELECT table_name, ordinal_position, column_name, data_type,
                         coalesce(character_maximum_length, -1), is_nullable, coalesce(column_default, '')
                  FROM information_schema.columns WHERE table_schema = current_schema()""",
    "constraints": """SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(c.oid)
                      FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                      WHERE n.nspname = current_schema()""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
                  WHERE schemaname = current_schema()""",
    "triggers": """SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(t.oid), tgenabled
                   FROM pg_trigger t WHERE NOT tgisinternal""",
    "functions": """SELECT proname, prosrc, pg_get_function_result(p.oid) FROM pg_proc p
                    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()""",
    "sequences": """SELECT sequence_name, data_type, start_value, increment FROM information_schema.sequences
                    WHERE sequence_schema = current_schema()""",
    "versions": "SELECT version_num FROM alembic_version",
}


def _catalog(engine: sa.Engine) -> Catalog:
    """Everything the database says about its own schema, in a stable order."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            queries = {
                # Every table, index and trigger with the SQL that created it (rootpage left out:
                # it only says in which order they were created).
                "master": "SELECT type, name, tbl_name, sql FROM sqlite_master",
                "versions": "SELECT version_num FROM alembic_version",
            }
        else:
            queries = _PG_QUERIES
        out = {name: sorted(tuple(row) for row in conn.exec_driver_sql(sql)) for name, sql in queries.items()}
        if engine.dialect.name == "sqlite":
            for table in [row[1] for row in out["master"] if row[0] == "table"]:
                out[f"{table}.columns"] = [tuple(r) for r in conn.exec_driver_sql(f"PRAGMA table_info({table})")]
                out[f"{table}.indexes"] = sorted(
                    tuple(r)[1:] for r in conn.exec_driver_sql(f"PRAGMA index_list({table})"))
    return out


@pytest.fixture
def second_url(store_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Another fresh, empty store on the same backend as ``store_url``."""
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'migrated.db'}"
    import psycopg

    server = str(request.getfixturevalue("postgres_server"))
    name = store_url.rsplit("/", 1)[1] + "_migrated"
    with psycopg.connect(server.replace("postgresql+psycopg", "postgresql") + "/postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def test_a_new_store_has_the_schema_the_migrations_build(store_url: str, second_url: str) -> None:
    """Tables, columns, keys, indexes, triggers, functions and the version row of a store created
    from storage.models equal those of a store built by running every migration."""
    assert store_url != second_url
    created = create_store_engine(store_url)
    migrate(created)
    migrated = alembic_store(second_url)
    try:
        fast, slow = _catalog(created), _catalog(migrated)
        assert fast["versions"] == slow["versions"] == [(SCHEMA_HEAD,)]
        for part in sorted(set(fast) | set(slow)):
            assert fast.get(part) == slow.get(part), (
                f"{part}: storage/models.py's METADATA differs from what the migrations build; "
                "a new migration's tables and indexes belong in METADATA too")
    finally:
        created.dispose()
        migrated.dispose()


def test_a_new_store_is_guarded_and_takes_later_migrations(store_url: str) -> None:
    """A store created from storage.models refuses UPDATE and DELETE on its evidence, and Alembic
    reads its version row as the head (no migration is pending)."""
    from alembic.runtime.migration import MigrationContext

    store = Store.open(store_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(EvidenceTable.insert().values(
                observed_at="2026-11-02T00:00:00.000000Z", id="0" * 64, stream="s", source_key="k",
                kind="event", collected_at="2026-11-02T00:00:00.000000Z", status="ok", run_id="r",
                body="{}"))
            conn.execute(SnapshotIdsTable.insert().values(window_id="2026-11", seq=0, part=0, ids=b"\0"))
        for statement in ("DELETE FROM evidence", "UPDATE evidence SET status = 'failed'",
                          "UPDATE snapshot_record_ids SET part = 1", "DELETE FROM snapshot_record_ids"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
                conn.exec_driver_sql(statement)
        with store.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == SCHEMA_HEAD
    finally:
        store.close()


def test_a_database_holding_other_tables_is_left_to_the_migrations(tmp_path: Path) -> None:
    """An unversioned database that already holds a table is not created over: Alembic migrates it
    (its own tables kept), and it ends at the head revision."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = create_store_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    migrate(engine)
    assert schema_version(engine) == SCHEMA_HEAD
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM notes").scalar_one() == 0
    engine.dispose()


def test_two_processes_creating_one_store_both_open_it(tmp_path: Path) -> None:
    """Two collectors opening the same new SQLite store at once: one creates it, the other waits
    and opens it, and the store holds its schema once."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    script = "import sys; from storage import Store; Store.open(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    engine = create_store_engine(url)
    assert schema_version(engine) == SCHEMA_HEAD
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar_one() == 1
    engine.dispose()
