"""The pipeline: batches, cursor advance in the same transaction, partial and failed runs, resume, stop."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import structlog.testing

from collector.catalog import Catalog, Filing
from collector.collect import collect
from collector.config import load_settings
from collector.pipeline import BatchReport, Pipeline, RunResult
from connectors.sdk import Checkpoint, Cursor, Normalised, SourceItem
from connectors.synthetic import SyntheticConfig, SyntheticConnector, SyntheticEvents
from storage import Store


def _settings(tmp_path: Path, url: str, **synthetic: Any) -> Any:
    lines = [f'[storage]\nurl = "{url}"\nbatch_size = {synthetic.pop("batch_size", 100)}\n',
             "[connectors.synthetic]"]
    for key, value in synthetic.items():
        lines.append(f"{key} = {orjson.dumps(value).decode()}")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_settings(path)


def _ids(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT id FROM evidence")).scalars())


def test_collection_stores_every_item_once_and_advances_the_cursor(tmp_path: Path, store_url: str) -> None:
    """A run stores every event with its filings; a second run stores no event again."""
    settings = _settings(tmp_path, store_url, count=450, users=5)
    store = Store.open(settings.storage_url)
    first = {r.stream: r for r in collect(settings, store)}
    assert first["synthetic.events"].status == "ok"
    assert first["synthetic.events"].records_new == 450
    assert store.read_cursor("synthetic.events") == "450"
    assert store.filing_counts()["CC7.2"] == 450
    second = {r.stream: r for r in collect(settings, store)}
    assert second["synthetic.events"].items == 0 and second["synthetic.events"].records_new == 0
    # A state stream is read again: each read is new evidence of the state at that time.
    assert second["synthetic.users"].records_new == 5
    store.close()


def test_failure_mid_stream_keeps_committed_batches_and_resumes(tmp_path: Path, store_url: str) -> None:
    """A stream that fails mid-way keeps what it committed; the next run resumes from the cursor."""
    settings = _settings(tmp_path, store_url, count=500, fail_at=250, streams=["events"])
    store = Store.open(settings.storage_url)
    [failed] = collect(settings, store)
    assert failed.status == "failed" and failed.error_class == "RetriableError"
    assert failed.records_new == 250
    assert store.read_cursor("synthetic.events") == "250"
    healed = _settings(tmp_path, store_url, count=500, streams=["events"])
    [resumed] = collect(healed, store)
    assert resumed.status == "ok" and resumed.items == 250 and resumed.records_new == 250
    clean_path = tmp_path / "clean"
    clean_path.mkdir()
    clean = _settings(clean_path, f"sqlite:///{clean_path / 'c.db'}", count=500, streams=["events"])
    clean_store = Store.open(clean.storage_url)
    collect(clean, clean_store)
    assert _ids(store) == _ids(clean_store)
    store.close()
    clean_store.close()


def test_item_failure_marks_run_partial_and_holds_the_cursor(tmp_path: Path) -> None:
    """A failed item makes the run partial, and the cursor never advances past it."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    settings = _settings(tmp_path, url, count=300, bad_items=["evt-000000120"], streams=["events"])
    store = Store.open(settings.storage_url)
    [run] = collect(settings, store)
    assert run.status == "partial" and run.failures == 1
    assert "evt-000000120" in (run.error or "")
    assert store.read_cursor("synthetic.events") == "120"  # up to, never past, the failed item
    assert run.records_new == 299
    store.close()


def test_run_rows_record_status_counts_and_cursor(tmp_path: Path) -> None:
    """Each run leaves a row with start, end, status, counts and cursors."""
    settings = _settings(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", count=120, streams=["events"])
    store = Store.open(settings.storage_url)
    collect(settings, store)
    with store.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM runs")).mappings().one()
    assert row["status"] == "ok" and row["items"] == 120 and row["records_new"] == 120
    assert row["ended_at"] >= row["started_at"] and row["cursor_after"] == "120"
    assert row["cursor_before"] is None
    store.close()


class _BadKind(SyntheticEvents):
    def normalise(self, item: SourceItem) -> Normalised:
        evidence = super().normalise(item)
        return Normalised("incident", evidence.actor, evidence.source_url, evidence.data)


class _Floats(SyntheticEvents):
    def fetch(self, cursor: Cursor) -> Iterator[Any]:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        yield SourceItem("k1", now, b"{}", {"x": 1.5}, cursor=1)
        yield Checkpoint(2)

    def normalise(self, item: SourceItem) -> Normalised:
        return Normalised("access_log", None, None, dict(item.obj))


@pytest.mark.parametrize("stream_type", [_BadKind, _Floats])
def test_connector_bugs_are_item_failures_not_crashes(tmp_path: Path, stream_type: Any) -> None:
    """A normaliser that breaks the record contract fails the item, not the collector."""
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    connector = SyntheticConnector(SyntheticConfig(count=3))
    pipeline = Pipeline(store, Filing(Catalog.builtin(), {}))
    result = pipeline.run(stream_type(connector.config, connector.session, connector.name), connector.config)
    assert result.status == "partial" and result.failures >= 1 and result.records_new == 0
    assert store.read_cursor("synthetic.events") is None
    store.close()


def test_filing_override_from_config(tmp_path: Path) -> None:
    """A [filing] entry replaces the kind's default criteria for that stream."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n[connectors.synthetic]\n'
                    'count = 10\nstreams = ["events"]\n[filing]\n"synthetic.events" = ["CC6.6"]\n')
    settings = load_settings(path)
    store = Store.open(settings.storage_url)
    collect(settings, store)
    assert store.filing_counts() == {"CC6.6": 10}
    store.close()


def test_a_concurrent_cursor_move_fails_the_run_without_storing_its_batch(tmp_path: Path) -> None:
    """When another collection moves the cursor mid-run, this run fails with CursorConflict and its batch rolls back."""
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")

    class Raced(SyntheticEvents):
        def fetch(self, cursor: Cursor) -> Iterator[Any]:
            yield from super().fetch(cursor)
            with store.engine.begin() as conn:  # another collector commits first
                store.advance_cursor(conn, "synthetic.events", None, "99", "t", "other-run")

    connector = SyntheticConnector(SyntheticConfig(count=5))
    raced = Raced(connector.config, connector.session, connector.name)
    result = Pipeline(store, Filing(Catalog.builtin(), {})).run(raced, connector.config)
    assert result.status == "failed" and result.error_class == "CursorConflict"
    assert result.records_new == 0 and store.count_records() == 0
    assert store.read_cursor("synthetic.events") == "99"
    with store.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, error_class FROM runs")).one()
    assert tuple(row) == ("failed", "CursorConflict")
    store.close()


def test_a_store_that_cannot_start_a_run_fails_that_run_not_the_collection(tmp_path: Path) -> None:
    """Disk full (or locked) before the run row is written: a failed result, no exception, and
    the next stream still gets its turn."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    connector = SyntheticConnector(SyntheticConfig(count=10, start="2026-01-01T00:00:00Z"))
    pipeline = Pipeline(store, Filing(Catalog.builtin(), {}))

    def full(*_args: Any) -> None:
        raise sa.exc.OperationalError("INSERT INTO runs", {}, Exception("database or disk is full"))

    store.start_run = full  # type: ignore[method-assign]
    result = pipeline.run(connector.stream("events"), connector.config)
    assert (result.status, result.error_class) == ("failed", "OperationalError")
    assert "disk is full" in (result.error or "")
    del store.start_run
    assert pipeline.run(connector.stream("events"), connector.config).status == "ok"
    store.close()


def _run(store: Store, *, count: int = 1200, batch: int = 100, on_batch: Any = None,
         **extra: Any) -> RunResult:
    connector = SyntheticConnector(SyntheticConfig(count=count, start="2026-01-01T00:00:00Z", **extra))
    pipeline = Pipeline(store, Filing(Catalog.builtin(), {}), batch_size=batch, on_batch=on_batch)
    return pipeline.run(connector.stream("events"), connector.config)


def _stored(store: Store) -> tuple[list[str], int, list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM evidence ORDER BY id")).scalars())
        filings = int(conn.execute(sa.text("SELECT count(*) FROM filings")).scalar_one())
        runs = [tuple(r) for r in conn.execute(sa.text(
            "SELECT status, items, records_new, failures, cursor_before, cursor_after FROM runs"
            " ORDER BY started_at"))]
    return ids, filings, runs


def test_a_run_commits_batch_by_batch_and_reports_each(store_url: str) -> None:
    """Twelve batches: each committed and reported once, every record stored once with its
    filings, the cursor at the end; a rerun reads nothing and stores nothing."""
    store = Store.open(store_url)
    reports: list[BatchReport] = []
    result = _run(store, on_batch=reports.append)
    assert (result.status, result.records_new, result.items) == ("ok", 1200, 1200)
    ids, filings, runs = _stored(store)
    assert len(ids) == len(set(ids)) == 1200 and filings == 2400
    assert runs == [("ok", 1200, 1200, 0, None, "1200")]
    assert store.read_cursor("synthetic.events") == "1200"
    assert sum(r.new for r in reports) == 1200 and len(reports) == 12
    again = _run(store)
    assert (again.status, again.items, again.records_new) == ("ok", 0, 0)
    store.close()


def test_a_cursor_moved_between_batches_fails_the_run(tmp_path: Path) -> None:
    """Another run moving the cursor after this run's first commit: CursorConflict, and the
    batch that met it is rolled back."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")

    def move_cursor(report: BatchReport) -> None:
        if report.new:
            with store.engine.begin() as conn:
                conn.execute(sa.text("UPDATE cursors SET value = '999999' WHERE stream = 'synthetic.events'"))

    result = _run(store, on_batch=move_cursor)
    assert result.status == "failed" and result.error_class == "CursorConflict"
    ids, _, runs = _stored(store)
    assert len(ids) < 1200 and runs[0][0] == "failed"
    store.close()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_retired_writer_process_key_is_accepted_and_ignored(tmp_path: Path, enabled: bool) -> None:
    """``[storage] writer_process`` from an earlier version still loads, with one warning line,
    and every batch is committed by the run itself."""
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///evidence.db"\nbatch_size = 100\n'
                      f'writer_process = {str(enabled).lower()}\n'
                      '[connectors.synthetic]\ncount = 2000\nstreams = ["events"]\n')
    with structlog.testing.capture_logs() as logs:
        settings = load_settings(config)
    [warning] = [e for e in logs if e["event"] == "config_key_ignored"]
    assert warning["key"] == "storage.writer_process" and warning["log_level"] == "warning"
    store = Store.open(settings.storage_url)
    [result] = collect(settings, store)
    assert (result.status, result.records_new) == ("ok", 2000)
    store.close()


def test_a_run_needs_one_database_connection(postgres_server: str) -> None:
    """A PostgreSQL role allowed a single connection: a whole run of many batches completes."""
    import psycopg

    admin = postgres_server.replace("postgresql+psycopg", "postgresql") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS ec_one_slot")
        conn.execute("DROP ROLE IF EXISTS ec_one_slot")
        conn.execute("CREATE ROLE ec_one_slot LOGIN CONNECTION LIMIT 1")
        conn.execute("CREATE DATABASE ec_one_slot OWNER ec_one_slot")
    url = postgres_server.replace("postgres@", "ec_one_slot@") + "/ec_one_slot"
    store = Store.open(url)
    result = _run(store, count=1500, delay_ms=1)
    assert (result.status, result.records_new) == ("ok", 1500), result
    store.close()


@pytest.mark.slow
def test_a_stop_signal_to_the_whole_group_is_a_graceful_stop(tmp_path: Path) -> None:
    """SIGTERM to the daemon's process group (systemd, Ctrl-C) mid-run: the run ends partial
    "Shutdown" with its committed batches kept and the cursor at them, exit 0, no traceback."""
    config = tmp_path / "config.toml"
    config.write_text('[storage]\nurl = "sqlite:///evidence.db"\n[daemon]\nlisten = "127.0.0.1:0"\n'
                      '[connectors.synthetic]\ncount = 5000000\nstreams = ["events"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "--config", str(config), "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while _stored_count(tmp_path / "evidence.db") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # batches are flowing
        os.killpg(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stderr[-2000:]
    assert b"Traceback" not in stderr and b"KeyboardInterrupt" not in stderr
    with sqlite3.connect(tmp_path / "evidence.db") as db:
        [(status, error_class, records_new)] = db.execute(
            "SELECT status, error_class, records_new FROM runs WHERE stream = 'synthetic.events'"
        ).fetchall()
        stored = db.execute("SELECT count(*) FROM evidence").fetchone()[0]
        cursor = db.execute("SELECT value FROM cursors WHERE stream = 'synthetic.events'").fetchone()[0]
    assert (status, error_class) == ("partial", "Shutdown")
    assert records_new == stored == int(cursor) > 0


def _stored_count(db: Path) -> int:
    """Records committed to the SQLite file so far (0 while it does not exist yet)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT count(*) FROM evidence").fetchone()[0])
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def test_a_run_collects_young_garbage_less_often_and_restores_the_setting(tmp_path: Path) -> None:
    """While a run reads, CPython's young-generation threshold is raised (a batch's records are
    freed at its commit before a collection sees them); afterwards it is what it was."""
    import gc

    seen: list[int] = []

    class Watched(SyntheticEvents):
        def fetch(self, cursor: Cursor) -> Iterator[Any]:
            seen.append(gc.get_threshold()[0])
            yield from super().fetch(cursor)

    before = gc.get_threshold()
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    connector = SyntheticConnector(SyntheticConfig(count=5))
    stream = Watched(connector.config, connector.session, connector.name)
    result = Pipeline(store, Filing(Catalog.builtin(), {})).run(stream, connector.config)
    assert result.status == "ok" and seen == [max(before[0], 50_000)]
    assert gc.get_threshold() == before
    store.close()
