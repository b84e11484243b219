"""The writer process: same records as inline commits, failures fail the run, and it dies with its run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
import structlog.testing

import collector.pipeline as pipeline_module
from collector.catalog import Catalog, Filing
from collector.collect import collect
from collector.config import load_settings
from collector.pipeline import BatchReport, Pipeline, RunResult
from connectors.synthetic import SyntheticConfig, SyntheticConnector
from storage import Store
from storage.writer import BatchJob, WriterError, WriterProcess


class _Counted(WriterProcess):
    """The real writer, remembered so a test can see that it ran (and kill it)."""

    made: list[_Counted] = []

    def __init__(self, url: str) -> None:
        super().__init__(url)
        _Counted.made.append(self)

    @property
    def pid(self) -> int:
        return self._process.pid


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[_Counted]:
    _Counted.made = []
    monkeypatch.setattr(pipeline_module, "WriterProcess", _Counted)
    return _Counted


def _run(store: Store, *, parallel: bool, count: int = 1200, batch: int = 100,
         on_batch: Any = None, writer_after: float = 0, **extra: Any) -> RunResult:
    connector = SyntheticConnector(SyntheticConfig(count=count, start="2026-01-01T00:00:00Z", **extra))
    pipeline = Pipeline(store, Filing(Catalog.builtin(), {}), batch_size=batch, parallel=parallel,
                        on_batch=on_batch, writer_after=writer_after)
    return pipeline.run(connector.stream("events"), connector.config)


def _stored(store: Store) -> tuple[list[str], int, list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM evidence ORDER BY id")).scalars())
        filings = int(conn.execute(sa.text("SELECT count(*) FROM filings")).scalar_one())
        runs = [tuple(r) for r in conn.execute(sa.text(
            "SELECT status, items, records_new, failures, cursor_before, cursor_after FROM runs"
            " ORDER BY started_at"))]
    return ids, filings, runs


def test_parallel_and_inline_runs_store_the_same(tmp_path: Path, store_url: str,
                                                 counted: type[_Counted]) -> None:
    """A run through the writer process stores what an inline run stores, row for row."""
    inline = Store.open(f"sqlite:///{tmp_path / 'inline.db'}")
    expected = _run(inline, parallel=False)
    assert counted.made == []
    parallel = Store.open(store_url)
    reports: list[BatchReport] = []
    result = _run(parallel, parallel=True, on_batch=reports.append)
    assert len(counted.made) == 1, "a run of twelve batches uses one writer process"
    assert (result.status, result.records_new, result.items) == ("ok", 1200, 1200)
    assert (expected.status, expected.records_new) == ("ok", 1200)
    assert _stored(parallel) == _stored(inline)
    assert parallel.read_cursor("synthetic.events") == inline.read_cursor("synthetic.events") == "1200"
    assert sum(r.new for r in reports) == 1200 and len(reports) == 12
    # Nothing new: the rerun reads nothing and stores nothing, through either path.
    again = _run(parallel, parallel=True)
    assert (again.status, again.items, again.records_new) == ("ok", 0, 0)
    inline.close()
    parallel.close()


def test_a_killed_writer_fails_the_run_and_the_next_run_converges(
    tmp_path: Path, counted: type[_Counted]
) -> None:
    """SIGKILL of the writer mid-run: the run fails naming it, keeps what was committed, resumes."""
    clean = Store.open(f"sqlite:///{tmp_path / 'clean.db'}")
    assert _run(clean, parallel=False).status == "ok"
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")

    def kill_writer(report: BatchReport) -> None:
        if counted.made and counted.made[0].is_ready and report.new:
            os.kill(counted.made[0].pid, signal.SIGKILL)

    failed = _run(store, parallel=True, on_batch=kill_writer, delay_ms=1)
    assert failed.status == "failed" and failed.error_class == "WriterError"
    assert "writer process" in (failed.error or "")
    ids, filings, runs = _stored(store)
    assert 0 < len(ids) < 1200 and len(ids) == len(set(ids))
    assert filings == 2 * len(ids)
    assert runs[0][0] == "failed"
    # The cursor names exactly what is stored: the rerun starts there and completes the set.
    assert store.read_cursor("synthetic.events") == str(len(ids))
    resumed = _run(store, parallel=True)
    assert resumed.status == "ok" and resumed.records_new == 1200 - len(ids)
    assert _stored(store)[0] == _stored(clean)[0]
    clean.close()
    store.close()


def test_a_moved_cursor_fails_the_run_through_the_writer(tmp_path: Path, counted: type[_Counted]) -> None:
    """Another run moving the cursor while this one writes: CursorConflict, its batch rolled back."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")

    def move_cursor(report: BatchReport) -> None:
        if len(counted.made) == 1 and report.new:
            with store.engine.begin() as conn:
                conn.execute(sa.text("UPDATE cursors SET value = '999999' WHERE stream = 'synthetic.events'"))

    result = _run(store, parallel=True, on_batch=move_cursor)
    assert result.status == "failed" and result.error_class == "CursorConflict"
    ids, _, runs = _stored(store)
    assert len(ids) < 1200 and runs[0][0] == "failed"
    store.close()


def test_a_commit_error_in_the_writer_is_reported_not_fatal(tmp_path: Path) -> None:
    """The writer answers a failing batch with the database's error and stays usable."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    store.start_run("r1", "synthetic.events", "2026-01-01T00:00:00.000000Z", None)
    writer = WriterProcess(f"sqlite:///{tmp_path / 'store.db'}")
    bad_row = ("id", "synthetic.events", "k", "access_log")  # four of ten columns
    job = BatchJob("synthetic.events", "r1", [bad_row], [], None, "1",  # type: ignore[list-item]
                   "2026-01-01T00:00:00.000000Z", {"items": 1})
    writer.submit(job)
    with pytest.raises(WriterError, match=r"ProgrammingError"):
        writer.wait()
    good = BatchJob("synthetic.events", "r1", [], [], None, "1", "2026-01-01T00:00:00.000000Z",
                    {"items": 0})
    writer.submit(good)
    assert writer.wait() == 0
    writer.close()
    assert writer.peak_rss_kb > 0
    assert store.read_cursor("synthetic.events") == "1"
    store.close()


def _proc_state(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a live process, or None once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else (int(fields[1]), fields[0])


def _writers_of(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (_proc_state(int(entry.name)) or (0, ""))[0] == pid:
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if "storage.writer" in cmdline:
                    found.append((int(entry.name), cmdline))
    return found


@pytest.mark.slow
def test_killing_the_collector_takes_its_writer_with_it(tmp_path: Path) -> None:
    """SIGKILL of ``collector collect`` mid-run: its writer exits within seconds, no orphan."""
    config = tmp_path / "config.toml"
    config.write_text('[storage]\nurl = "sqlite:///evidence.db"\nbatch_size = 100\n'
                      '[connectors.synthetic]\ncount = 100000\ndelay_ms = 1\nstreams = ["events"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "--config", str(config), "collect"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        writers: list[tuple[int, str]] = []
        while not writers and time.monotonic() < deadline:
            writers = _writers_of(proc.pid)
            time.sleep(0.05)
        assert writers, "the collection should have started a writer process"
        [(writer_pid, cmdline)] = writers
        assert "sqlite" not in cmdline, "the store URL never goes on a command line"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _proc_state(writer_pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _proc_state(writer_pid) is None, "the writer outlived the collector"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_writer_process_can_be_turned_off(tmp_path: Path, counted: type[_Counted],
                                              enabled: bool) -> None:
    """``[storage] writer_process = false`` commits every batch inline; the result is the same."""
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///evidence.db"\nbatch_size = 100\n'
                      f'writer_process = {str(enabled).lower()}\n'
                      '[connectors.synthetic]\ncount = 2000\ndelay_ms = 1\nstreams = ["events"]\n')
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    [result] = collect(settings, store)
    assert (result.status, result.records_new) == ("ok", 2000)
    assert len(counted.made) == (1 if enabled else 0), "a run of over a second uses the writer"
    store.close()


def test_a_writer_that_cannot_start_leaves_the_run_inline(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """No usable interpreter for the writer: the run logs it and commits every batch itself."""
    import storage.writer

    monkeypatch.setattr(storage.writer.sys, "executable", "/bin/false")
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    with structlog.testing.capture_logs() as logs:
        result = _run(store, parallel=True, delay_ms=1)
    assert (result.status, result.records_new) == ("ok", 1200)
    assert len(_stored(store)[0]) == 1200
    [warning] = [e for e in logs if e["event"] == "writer_unavailable"]
    assert "did not start" in warning["error"]
    store.close()


def test_a_short_run_never_starts_a_writer(tmp_path: Path, counted: type[_Counted]) -> None:
    """Runs shorter than ``writer_after`` commit inline: the writer's start-up would cost more."""
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    result = _run(store, parallel=True, writer_after=30)
    assert (result.status, result.records_new) == ("ok", 1200)
    assert counted.made == []
    store.close()
