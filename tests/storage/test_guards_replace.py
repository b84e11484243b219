"""REPLACE and UPSERT never rewrite an append-only row: SQLite's hidden delete is guarded like PostgreSQL's update."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from schema_helpers import alembic_store
from sqlalchemy.exc import DBAPIError

from storage import EvidenceRecord, FilingRow, Store
from storage.engine import migrate

_COLS = ", ".join(EvidenceRecord._fields)
_SNAPSHOT = ("{verb} snapshots (window_id, seq, file_name, window_start, window_end, sealed_at, "
             "record_count, merkle_root, sums_sha256, signature, key_spki_sha256, manifest) VALUES "
             "('2026-10', 0, '2026-10.tar', 'a', 'b', 'c', 0, 'r', 's', 'sig', 'k', '{manifest}')")


def _row(body: str = '{"status":"exception"}', status: str = "exception") -> EvidenceRecord:
    return EvidenceRecord("a" * 64, "synthetic.events", "evt-1", "access_log", "2026-11-01T00:00:00.000000Z",
                          "2026-11-28T00:00:00.000000Z", status, "ann@example.com", "run-1", body)


def _filings(row: EvidenceRecord) -> list[FilingRow]:
    return [("CC6.1", row.observed_at, row.id, row.stream, row.status)]


def _seeded(url: str) -> Store:
    store = Store.open(url)
    with store.engine.begin() as conn:
        store.insert_records(conn, [_row()], _filings(_row()))
        conn.exec_driver_sql(_SNAPSHOT.format(verb="INSERT INTO", manifest="{}"))
    return store


def _stored(store: Store) -> tuple[object, ...]:
    with store.engine.connect() as conn:
        return (conn.execute(sa.text("SELECT status, body FROM evidence")).all(),
                conn.execute(sa.text("SELECT status FROM filings")).all(),
                conn.execute(sa.text("SELECT manifest FROM snapshots")).all())


@pytest.mark.parametrize("verb", ["INSERT OR REPLACE INTO", "REPLACE INTO"])
def test_replace_leaves_evidence_and_filings_as_stored_on_sqlite(tmp_path: Path, verb: str) -> None:
    """INSERT OR REPLACE (and REPLACE) of a stored evidence or filing key changes nothing; by an
    explicit rowid, or on a snapshot, it is refused as append-only."""
    store = _seeded(f"sqlite:///{tmp_path / 'e.db'}")
    before = _stored(store)
    forged = _row('{"status":"ok"}', "ok")
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"{verb} evidence ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             tuple(forged))
        conn.exec_driver_sql(f"{verb} filings (criterion, observed_at, record_id, stream, status) "
                             "VALUES (?, ?, ?, ?, ?)", _filings(forged)[0])
    for statement in (
        f"{verb} evidence (rowid, observed_at, id, stream, source_key, kind, collected_at, status, "
        "run_id, body) SELECT rowid, observed_at, 'b', stream, source_key, kind, collected_at, 'ok', run_id, "
        "'{}' FROM evidence",
        _SNAPSHOT.format(verb=verb, manifest='{"forged":1}'),
    ):
        with pytest.raises(DBAPIError, match="append-only: REPLACE refused"), store.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert _stored(store) == before
    store.close()


def test_upsert_is_refused_on_both_stores(store_url: str) -> None:
    """INSERT ... ON CONFLICT DO UPDATE of a stored row changes nothing on SQLite or PostgreSQL."""
    store = _seeded(store_url)
    before = _stored(store)
    for statement in (
        "INSERT INTO evidence (observed_at, id, stream, source_key, kind, collected_at, status, run_id, body) "
        f"VALUES ('2026-11-01T00:00:00.000000Z', '{'a' * 64}', 's', 'k', 'access_log', 'c', 'ok', 'r', '{{}}') "
        "ON CONFLICT (observed_at, id) DO UPDATE SET status = 'ok', body = '{}'",
        _SNAPSHOT.format(verb="INSERT INTO", manifest="{}") + " ON CONFLICT (window_id, seq) DO UPDATE SET manifest = 'x'",
    ):
        try:
            with store.engine.begin() as conn:
                conn.exec_driver_sql(statement)
        except DBAPIError as exc:
            assert "append-only" in str(exc)
    assert _stored(store) == before
    store.close()


def test_duplicates_are_still_skipped_and_counted_once(tmp_path: Path) -> None:
    """The guard keeps deduplication: the same batch twice stores and counts its records once."""
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    rows = [_row(), _row()._replace(id="c" * 64)]
    filings = [f for r in rows for f in _filings(r)]
    with store.engine.begin() as conn:
        assert store.insert_records(conn, rows, filings) == 2
    with store.engine.begin() as conn:
        assert store.insert_records(conn, rows, filings) == 0
    assert store.count_records() == 2
    store.close()


def test_a_store_migrated_from_0005_gets_the_guard(tmp_path: Path) -> None:
    """An existing store at revision 0005 is migrated to the head and refuses REPLACE afterwards."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = alembic_store(url, "0005")
    migrate(engine)
    engine.dispose()
    store = _seeded(url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT OR REPLACE INTO evidence ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             tuple(_row("{}", "ok")))
    assert _stored(store)[0] == [("exception", '{"status":"exception"}')]
    store.close()
