"""`collector run` in a subprocess: scheduled collection, health, metrics, shutdown and restart."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from _daemon import DaemonProcess, write_config

from collector.collect import collect
from collector.config import load_settings
from storage import Store

EVENTS = "synthetic.events"


def _event_ids(url: str) -> list[str]:
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            return list(conn.execute(
                sa.text("SELECT id FROM evidence WHERE stream = :s"), {"s": EVENTS}
            ).scalars())
    finally:
        store.close()


def _clean_run_ids(tmp_path: Path, **synthetic: object) -> set[str]:
    """The event record IDs one uninterrupted in-process collection stores."""
    clean = tmp_path / "clean"
    clean.mkdir()
    settings = load_settings(write_config(clean, synthetic={**synthetic, "streams": ["events"]}))
    store = Store.open(settings.storage_url)
    try:
        [result] = collect(settings, store)
        assert result.status == "ok"
    finally:
        store.close()
    return set(_event_ids(settings.storage_url))


def test_daemon_collects_on_schedule_and_serves_health_and_metrics(
        tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """The daemon collects every enabled stream repeatedly, answers /healthz 200 and exposes its counters."""
    config = write_config(tmp_path, synthetic={"count": 120}, key=True)
    daemon = DaemonProcess(config)
    daemons.append(daemon)
    daemon.wait_until("two runs of each stream", lambda: all(
        daemon.metric("collector_runs_total", stream=s, status="ok") >= 2
        for s in (EVENTS, "synthetic.users")))
    status, doc = daemon.health()
    assert status == 200 and doc == {"status": "ok", "reasons": []}
    assert daemon.metric("collector_records_new_total", stream=EVENTS) == 120
    assert daemon.metric("collector_records_total", stream=EVENTS, kind="access_log") == 120
    assert daemon.metric("collector_records_total", stream="synthetic.users", kind="mfa_status") >= 6
    assert daemon.metric("collector_exceptions_total", criterion="CC6.1") > 0
    assert daemon.metric("collector_run_duration_seconds_count", stream=EVENTS) >= 2
    assert daemon.metric("collector_last_success_timestamp_seconds", stream=EVENTS) > 1.7e9
    assert daemon.metric("collector_scheduler_running") == 1
    _, body = daemon.get("/metrics")
    for family in ("collector_http_requests", "collector_http_retries", "collector_windows_sealed",
                   "collector_stream_consecutive_failures"):
        assert f"# TYPE {family}" in body.decode()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0
    assert daemon.has_event("shutdown_complete")
    assert len(_event_ids(f"sqlite:///{tmp_path / 'evidence.db'}")) == 120


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigterm_mid_collection_exits_0_and_a_restart_catches_up_without_duplicates(
        tmp_path: Path, daemons: list[DaemonProcess], backend: str,
        request: pytest.FixtureRequest) -> None:
    """SIGTERM during a slow run exits 0 within 10 s keeping committed batches; a restart stores exactly the rest."""
    url = (f"sqlite:///{tmp_path / 'evidence.db'}" if backend == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    count = 800
    config = write_config(tmp_path, url, synthetic={"count": count, "delay_ms": 10,
                                                    "streams": ["events"]})
    daemon = DaemonProcess(config)
    daemons.append(daemon)
    daemon.wait_until("a first batch committed", lambda: daemon.metric(
        "collector_records_new_total", stream=EVENTS) >= 50)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0, daemon.stderr()
    assert daemon.has_event("run_finished", stream=EVENTS, status="partial", error_class="Shutdown")
    kept = _event_ids(url)
    assert 50 <= len(kept) < count, "the stop did not land mid-collection"

    # The outage is over: restart at full speed; the cursor says where to resume.
    write_config(tmp_path, url, synthetic={"count": count, "streams": ["events"]})
    again = DaemonProcess(config)
    daemons.append(again)
    again.wait_until("the rest collected", lambda: again.metric(
        "collector_runs_total", stream=EVENTS, status="ok") >= 1)
    again.signal(signal.SIGTERM)
    assert again.wait(timeout=10) == 0
    after = _event_ids(url)
    assert len(after) == len(set(after)) == count
    assert set(kept) <= set(after)
    assert set(after) == _clean_run_ids(tmp_path, count=count)
    # The restarted daemon stored only what was missing.
    assert sum(e.get("records_new", 0) for e in again.events()
               if e.get("event") == "run_finished") == count - len(kept)


def test_second_signal_exits_at_once_and_leaves_the_store_consistent(
        tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """A second SIGTERM during the graceful wait exits immediately (128+15); the store stays intact."""
    config = write_config(tmp_path, synthetic={"count": 100, "delay_ms": 4000, "streams": ["events"]})
    daemon = DaemonProcess(config)
    daemons.append(daemon)
    daemon.wait_until("the slow run started", lambda: daemon.has_event("run_started", stream=EVENTS))
    daemon.signal(signal.SIGTERM)
    daemon.wait_until("the graceful stop began", lambda: daemon.has_event("shutdown_started"))
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 128 + signal.SIGTERM
    assert daemon.has_event("shutdown_immediate", signal="SIGTERM")
    assert not daemon.has_event("shutdown_complete")
    with sqlite3.connect(tmp_path / "evidence.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # The interrupted run is closed as interrupted on the next start, and collection resumes.
    write_config(tmp_path, synthetic={"count": 100, "streams": ["events"]})
    again = DaemonProcess(config)
    daemons.append(again)
    again.wait_until("a full run", lambda: again.metric(
        "collector_runs_total", stream=EVENTS, status="ok") >= 1)
    again.signal(signal.SIGTERM)
    assert again.wait(timeout=10) == 0
    assert len(_event_ids(f"sqlite:///{tmp_path / 'evidence.db'}")) == 100



def test_a_source_stuck_past_the_grace_period_is_abandoned_and_the_daemon_still_exits_0(
        tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """A run that cannot reach its next item within the grace period is abandoned: exit 0 within 10 s, store intact."""
    config = write_config(tmp_path, synthetic={"count": 10, "delay_ms": 30000, "streams": ["events"]})
    daemon = DaemonProcess(config)
    daemons.append(daemon)
    daemon.wait_until("the stuck run started", lambda: daemon.has_event("run_started", stream=EVENTS))
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0
    assert daemon.has_event("shutdown_forced", running=[EVENTS])
    with sqlite3.connect(tmp_path / "evidence.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM evidence").fetchone() == (0,)

def test_health_turns_503_after_more_than_n_failures_in_a_row(
        tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """A stream that fails more than max_consecutive_failures times in a row makes /healthz 503 with the reason."""
    config = write_config(tmp_path, synthetic={"count": 50, "fail_at": 5},
                          daemon={"max_consecutive_failures": 2}, key=True)
    daemon = DaemonProcess(config)
    daemons.append(daemon)
    daemon.wait_until("/healthz answers 503", lambda: daemon.health()[0] == 503)
    status, doc = daemon.health()
    assert status == 503 and doc["status"] == "unhealthy"
    [reason] = doc["reasons"]
    assert reason.startswith(f"{EVENTS} failed ") and "(limit 2)" in reason
    assert reason.endswith(": RetriableError")
    assert daemon.metric("collector_stream_consecutive_failures", stream="synthetic.users") == 0
    assert daemon.metric("collector_stream_consecutive_failures", stream=EVENTS) >= 3
    assert daemon.metric("collector_runs_total", stream=EVENTS, status="failed") >= 3
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0


def test_a_missing_secret_stops_the_daemon_before_it_starts(tmp_path: Path) -> None:
    """A `*_env` key naming an unset variable is one line naming the key, exit 2, and nothing listens."""
    config = write_config(tmp_path, synthetic={"token_env": "EC_TEST_UNSET_TOKEN"})
    proc = subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(config), "run"],
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "EC_TEST_UNSET_TOKEN"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"collector: error: {config.resolve()}: connectors.synthetic.token_env: "
        "environment variable $EC_TEST_UNSET_TOKEN is not set"
    ]
    assert proc.stdout == ""


def test_the_daemon_seals_an_ended_window_at_start(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    """With the seal feature installed, the at-start sealing job seals the ended windows holding evidence."""
    pytest.importorskip("collector.seal", reason="the seal feature is built on another branch")
    config = write_config(tmp_path, synthetic={"count": 50, "streams": ["events"]},
                          extra=f'\n[signing]\nkey_file = "{tmp_path / "seal-ed25519.pem"}"\n')
    subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(config), "keys", "init"],
                   capture_output=True, timeout=60, check=False)
    daemon = DaemonProcess(config)
    daemons.append(daemon)
    # Synthetic events start 2026-01-01; monthly windows up to last month have ended.
    daemon.wait_until("a window sealed", lambda: daemon.has_event("window_sealed"))
    assert daemon.has_event("window_sealed", window="2026-01") or daemon.metric(
        "collector_windows_sealed_total") >= 1
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 0
