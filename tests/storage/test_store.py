"""The store on SQLite and a real PostgreSQL: migrations, idempotent inserts, append-only triggers."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from storage import BatchJob, CursorConflict, EvidenceRecord, FilingRow, Store, StoreError, StoreOpenError


def _row(n: int) -> EvidenceRecord:
    rid = f"{n:064x}"
    return EvidenceRecord(rid, "synthetic.events", f"evt-{n}", "access_log",
                          f"2026-11-0{1 + n % 5}T00:00:00.000000Z", "2026-11-28T00:00:00.000000Z",
                          "ok", "ann@example.com", "run-1", '{"x":1}')


def _filings(n: int) -> list[FilingRow]:
    row = _row(n)
    return [(c, row.observed_at, row.id, row.stream, row.status) for c in ("CC6.1", "CC7.2")]


def _job(records: list[EvidenceRecord], expected: str | None, cursor: str, items: int) -> BatchJob:
    return BatchJob("synthetic.events", "r1", records, [], expected, cursor,
                    "2026-01-01T00:00:00.000000Z", {"items": items})


def test_migrations_are_idempotent(store_url: str) -> None:
    """Opening a store twice applies migrations once and keeps what was stored."""
    store = Store.open(store_url)
    with store.engine.begin() as conn:
        store.insert_records(conn, [_row(1)], _filings(1))
    store.close()
    again = Store.open(store_url)
    assert again.count_records() == 1
    again.close()


def test_inserts_are_idempotent_on_id(store_url: str) -> None:
    """Inserting the same records twice stores them once and reports only the new ones."""
    store = Store.open(store_url)
    rows = [_row(n) for n in range(10)]
    filings = [f for n in range(10) for f in _filings(n)]
    with store.engine.begin() as conn:
        assert store.insert_records(conn, rows, filings) == 10
    with store.engine.begin() as conn:
        assert store.insert_records(conn, rows[:5] + [_row(10)], filings + _filings(10)) == 1
    assert store.count_records() == 11
    assert store.filing_counts() == {"CC6.1": 11, "CC7.2": 11}
    assert store.filing_counts(status="ok") == {"CC6.1": 11, "CC7.2": 11}
    assert store.filing_counts(status="exception") == {}
    store.close()


@pytest.mark.parametrize("table", ["evidence", "filings", "snapshots"])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET {c} = {c}", "DELETE FROM {t}"])
def test_update_and_delete_are_refused(store_url: str, table: str, statement: str) -> None:
    """The database itself refuses UPDATE and DELETE on append-only tables."""
    store = Store.open(store_url)
    with store.engine.begin() as conn:
        store.insert_records(conn, [_row(1)], _filings(1))
        conn.execute(sa.text(
            "INSERT INTO snapshots (window_id, seq, file_name, window_start, window_end, sealed_at, "
            "record_count, merkle_root, sums_sha256, signature, key_spki_sha256, manifest) VALUES "
            "('2026-10', 0, '2026-10.tar', 'a', 'b', 'c', 0, 'r', 's', 'sig', 'k', '{}')"
        ))
    column = {"evidence": "status", "filings": "status", "snapshots": "manifest"}[table]
    count = sa.text(f"SELECT count(*) FROM {table}")
    with store.engine.connect() as conn:
        before = conn.execute(count).scalar_one()
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text(statement.format(t=table, c=column)))
    with store.engine.connect() as conn:
        assert conn.execute(count).scalar_one() == before > 0
    store.close()


def test_truncate_is_refused_on_postgres(postgres_url: str) -> None:
    """On PostgreSQL, TRUNCATE of evidence is refused as well."""
    store = Store.open(postgres_url)
    with store.engine.begin() as conn:
        store.insert_records(conn, [_row(1)], _filings(1))
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE evidence"))
    assert store.count_records() == 1
    store.close()


def test_cursor_is_compare_and_set(store_url: str) -> None:
    """A cursor only moves from the value the run read; a concurrent change is a conflict."""
    store = Store.open(store_url)
    with store.engine.begin() as conn:
        store.advance_cursor(conn, "s.x", None, "1", "t", "run-1")
    with store.engine.begin() as conn:
        store.advance_cursor(conn, "s.x", "1", "2", "t", "run-1")
    with pytest.raises(CursorConflict), store.engine.begin() as conn:
        store.advance_cursor(conn, "s.x", "1", "3", "t", "run-2")
    with pytest.raises(CursorConflict), store.engine.begin() as conn:
        store.advance_cursor(conn, "s.x", None, "3", "t", "run-2")
    assert store.read_cursor("s.x") == "2"
    store.close()


def test_records_iterate_in_observed_then_id_order(store_url: str) -> None:
    """Records stream out ordered by (observed_at, id) across batch boundaries, within bounds."""
    store = Store.open(store_url)
    rows = [_row(n) for n in range(40)]
    with store.engine.begin() as conn:
        store.insert_records(conn, rows, [])
    got = list(store.iter_records(batch=7))
    assert got == sorted(rows, key=lambda r: (r.observed_at, r.id))
    bounded = list(store.iter_records("2026-11-02T00:00:00.000000Z", "2026-11-04T00:00:00.000000Z",
                                      batch=3))
    assert len(bounded) == 16
    store.close()


def test_a_new_sqlite_store_uses_wal_and_8k_pages(tmp_path: Path) -> None:
    """The file is created with 8 KiB pages in WAL mode; reopening keeps both."""
    url = f"sqlite:///{tmp_path}/store.db"
    for _ in range(2):
        store = Store.open(url)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 8192
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 5000
        store.close()


def test_a_read_snapshot_does_not_see_later_commits(store_url: str) -> None:
    """Queries inside ``read_snapshot`` agree with each other while a collection commits."""
    store = Store.open(store_url)
    count = sa.text("SELECT count(*) FROM evidence")
    store.start_run("r1", "synthetic.events", "2026-01-01T00:00:00.000000Z", None)
    first = [_row(n) for n in range(3)]
    store.commit_batch(_job(first, None, '"a"', 3))
    with store.read_snapshot() as conn:
        assert conn.execute(count).scalar_one() == 3
        later = [_row(n) for n in range(3, 8)]
        store.commit_batch(_job(later, '"a"', '"b"', 8))
        assert conn.execute(count).scalar_one() == 3, "a commit leaked into the snapshot"
    assert store.count_records() == 8
    store.close()


def test_a_migration_interrupted_midway_leaves_nothing_half_done(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collector killed while migrating a new store: the next open migrates from scratch
    instead of failing forever on "table evidence already exists"."""
    import storage.guards

    def killed(*_args: object) -> None:
        raise RuntimeError("killed while migrating")

    with monkeypatch.context() as patch:
        patch.setattr(storage.guards, "install_append_only", killed)
        with pytest.raises(StoreOpenError, match="killed while migrating"):
            Store.open(store_url)
    store = Store.open(store_url)
    store.start_run("r1", "synthetic.events", "2026-01-01T00:00:00.000000Z", None)
    assert store.commit_batch(_job([_row(1)], None, '"a"', 1)) == 1
    store.close()


def test_safe_url_masks_a_password_in_the_user_part_and_in_the_query() -> None:
    from sqlalchemy.engine import make_url

    from storage.engine import safe_url

    shown = safe_url(make_url("postgresql+psycopg://ec:pw-one@db:5432/ev?password=pw-two&sslmode=require"))
    assert "pw-one" not in shown and "pw-two" not in shown
    assert "sslmode=require" in shown and "db:5432/ev" in shown


def test_every_store_error_has_one_base() -> None:
    """A caller catches every failure the store reports with ``except StoreError``."""
    assert issubclass(CursorConflict, StoreError) and issubclass(StoreOpenError, StoreError)


def test_a_record_binds_to_the_evidence_columns_by_name(store_url: str) -> None:
    """An EvidenceRecord is inserted as it is, so its fields are the evidence table's columns, and
    a record read back is the record that was stored."""
    from storage.models import EvidenceTable

    assert set(EvidenceRecord._fields) == {c.name for c in EvidenceTable.columns}
    store = Store.open(store_url)
    record = _row(3)._replace(actor=None, body='{"y":"caf\\u00e9"}')
    with store.engine.begin() as conn:
        store.insert_records(conn, [record], _filings(3))
    [again] = store.iter_records()
    assert type(again) is EvidenceRecord and again == record
    store.close()
