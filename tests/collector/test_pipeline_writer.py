"""The writer process: same records as inline commits, failures fail the run, and it dies with its run."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sqlite3
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
    _run(store, parallel=False, count=10)  # warm the pool, so only the writer's fds could differ
    before = _open_fds()
    with structlog.testing.capture_logs() as logs:
        result = _run(store, parallel=True, delay_ms=1)
    assert _open_fds() == before, "a writer that died at once left a pipe open"
    assert (result.status, result.records_new) == ("ok", 1190)
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


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_writer_that_cannot_be_spawned_leaves_the_run_inline_and_no_fd_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fork refused (EAGAIN): the run logs it, commits inline, and keeps no pipe open."""
    import storage.writer

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(storage.writer.subprocess, "Popen", refuse)
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    _run(store, parallel=False, count=10)  # warm the pool, so only the writer's fds could differ
    before = _open_fds()
    with structlog.testing.capture_logs() as logs:
        result = _run(store, parallel=True, count=1200)
    assert (result.status, result.records_new) == ("ok", 1190)
    assert [e["event"] for e in logs].count("writer_unavailable") == 1
    assert _open_fds() == before
    store.close()


def test_a_writer_refused_a_connection_leaves_the_run_inline(postgres_server: str,
                                                             counted: type[_Counted]) -> None:
    """A PostgreSQL role allowed one connection: the writer cannot connect, so it never reports
    ready and the run commits every batch itself instead of failing."""
    import psycopg

    admin = postgres_server.replace("postgresql+psycopg", "postgresql") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS ec_one_slot")
        conn.execute("DROP ROLE IF EXISTS ec_one_slot")
        conn.execute("CREATE ROLE ec_one_slot LOGIN CONNECTION LIMIT 1")
        conn.execute("CREATE DATABASE ec_one_slot OWNER ec_one_slot")
    url = postgres_server.replace("postgres@", "ec_one_slot@") + "/ec_one_slot"
    store = Store.open(url)
    with structlog.testing.capture_logs() as logs:
        result = _run(store, parallel=True, count=1500, delay_ms=1)
    assert (result.status, result.records_new) == ("ok", 1500), result
    assert len(counted.made) == 1 and not counted.made[0].is_ready
    [warning] = [e for e in logs if e["event"] == "writer_unavailable"]
    assert "too many connections" in warning["error"]
    store.close()


def test_the_writer_works_past_fd_1024(tmp_path: Path, counted: type[_Counted]) -> None:
    """A busy daemon's pipes may get fd numbers over 1024, where select() cannot go."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard open-files limit ({hard}) is too low for this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
        result = _run(store, parallel=True, delay_ms=1)
        assert (result.status, result.records_new) == ("ok", 1200), result
        assert counted.made and counted.made[0].is_ready
        store.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
def test_a_stop_signal_to_the_whole_group_is_a_graceful_stop(tmp_path: Path) -> None:
    """SIGTERM to the daemon's process group (systemd, Ctrl-C) reaches the writer too: it must
    not die mid-commit; the run ends partial "Shutdown" with its batches kept, exit 0."""
    config = tmp_path / "config.toml"
    config.write_text('[storage]\nurl = "sqlite:///evidence.db"\n[daemon]\nlisten = "127.0.0.1:0"\n'
                      '[connectors.synthetic]\ncount = 5000000\nstreams = ["events"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "--config", str(config), "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _writers_of(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        [(writer_pid, _)] = _writers_of(proc.pid)
        time.sleep(1.0)  # batches are flowing through the writer
        os.killpg(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stderr[-2000:]
    assert b"Traceback" not in stderr and b"KeyboardInterrupt" not in stderr
    assert _proc_state(writer_pid) is None
    with sqlite3.connect(tmp_path / "evidence.db") as db:
        [(status, error_class, records_new)] = db.execute(
            "SELECT status, error_class, records_new FROM runs WHERE stream = 'synthetic.events'"
        ).fetchall()
        stored = db.execute("SELECT count(*) FROM evidence").fetchone()[0]
        cursor = db.execute("SELECT value FROM cursors WHERE stream = 'synthetic.events'").fetchone()[0]
    assert (status, error_class) == ("partial", "Shutdown")
    assert records_new == stored == int(cursor) > 0
