"""The pipeline: batches, cursor advance in the same transaction, partial and failed runs, resume."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from collector.catalog import Catalog, Filing
from collector.collect import collect
from collector.config import load_settings
from collector.pipeline import Pipeline
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
