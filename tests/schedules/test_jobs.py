"""Job functions in-process: sealing and the digest, stream health bookkeeping, HTTP metrics, the schedule."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from _daemon import write_config
from structlog.testing import capture_logs

from collector.config import load_settings
from collector.digest.build import default_week
from collector.pipeline import RunResult
from collector.records import format_ts
from collector.seal.keys import create_key
from schedules.daemon import build_scheduler, jitter_for
from schedules.health import HealthState
from schedules.jobs import JobContext, collect_stream, seal_windows, write_weekly_digest
from schedules.metrics import Metrics
from storage import Store

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def all_log_levels() -> Iterator[None]:
    """Let every level through to capture_logs, whatever level an earlier test configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[JobContext]:
    """A job context over a fresh SQLite store with the synthetic connector enabled."""
    settings = load_settings(write_config(tmp_path, synthetic={"count": 30}))
    store = Store.open(settings.storage_url)
    streams = ["synthetic.events", "synthetic.users"]
    yield JobContext(settings, store, Metrics(), HealthState(2, streams), threading.Event(),
                     lambda: NOW)
    store.close()


def _with_key(ctx: JobContext) -> None:
    create_key(ctx.settings.resolve(ctx.settings.signing.key_file))


@pytest.fixture
def autumn(tmp_path: Path) -> Iterator[JobContext]:
    """A job context whose synthetic events fall in September and October 2026, collected."""
    settings = load_settings(write_config(tmp_path, synthetic={
        "count": 30, "start": "2026-09-20T00:00:00Z", "step_seconds": 86400}))
    store = Store.open(settings.storage_url)
    ctx = JobContext(settings, store, Metrics(), HealthState(2, ["synthetic.events"]),
                     threading.Event(), lambda: NOW)
    collect_stream(ctx, "synthetic.events")
    yield ctx
    store.close()


def test_sealing_without_a_key_is_a_job_failure_naming_the_key(ctx: JobContext) -> None:
    """Without the sealing key the hourly job logs a failure naming signing.key_file each time,
    raises nothing and seals nothing."""
    with capture_logs() as logs:
        seal_windows(ctx)
        seal_windows(ctx)
    failed = [e for e in logs if e["event"] == "job_failed"]
    assert [e["job"] for e in failed] == ["seal", "seal"]
    assert failed[0]["error_class"] == "ConfigError" and "signing.key_file" in failed[0]["error"]
    assert ctx.metrics.sealed._value.get() == 0
    assert ctx.active() == []


def test_a_failing_digest_is_a_job_failure_not_silence(ctx: JobContext) -> None:
    """A digest that cannot be written is reported as a failed job, with the path, and counted."""
    out_dir = ctx.settings.resolve(ctx.settings.digest.out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    out_dir.write_text("a file where the digest folder belongs")
    with capture_logs() as logs:
        write_weekly_digest(ctx)
    [failed] = [e for e in logs if e["event"] == "job_failed"]
    assert failed["job"] == "digest" and str(out_dir) in failed["error"]
    assert ctx.metrics.job_errors.labels(job="digest")._value.get() == 1


def test_sealed_windows_are_logged_and_counted_once(autumn: JobContext) -> None:
    """The seal job seals every due window at the job's clock, oldest first, logs and counts each
    with its path and record count, and once the due window is sealed it writes nothing again."""
    from dataclasses import replace

    from collector.windows import window_containing, windows_between

    _with_key(autumn)
    # Sealing happens after collection (nothing is sealed before it was collected): the job's
    # clock is this instant, so the due windows run from September to the last ended month.
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    autumn = replace(autumn, clock=lambda: later)
    due = window_containing(later - timedelta(days=1), "month", "UTC").previous()
    expected = [w.id for w in windows_between(datetime(2026, 9, 1, tzinfo=UTC), due.start, "month", "UTC")]
    with capture_logs() as logs:
        seal_windows(autumn)
    sealed = [e for e in logs if e["event"] == "window_sealed"]
    assert [e["window"] for e in sealed] == expected
    assert [e["records"] for e in sealed][:2] == [11, 19]  # 30 daily events from 2026-09-20
    assert all(e["path"].endswith(f"{e['window']}.tar") for e in sealed)
    assert autumn.metrics.sealed._value.get() == len(expected)
    rows = autumn.store.snapshots()
    assert [r.window_id for r in rows] == expected
    assert rows[0].sealed_at == format_ts(later)
    tars = sorted(autumn.settings.resolve("data/snapshots").glob("*.tar"))
    written = [t.stat().st_mtime_ns for t in tars]
    with capture_logs() as logs:
        seal_windows(autumn)
    assert not [e for e in logs if e["event"] == "window_sealed"]
    assert [t.stat().st_mtime_ns for t in tars] == written
    assert autumn.metrics.sealed._value.get() == len(expected)


def test_a_failing_seal_is_logged_and_counted_and_never_raises(ctx: JobContext) -> None:
    """An exception inside sealing becomes a job_failed event and a job error count; the daemon goes on."""
    _with_key(ctx)
    ctx.settings.resolve("data/snapshots").write_text("a file where the snapshots folder belongs")
    with capture_logs() as logs:
        seal_windows(ctx)
    [failed] = [e for e in logs if e["event"] == "job_failed"]
    assert failed["error_class"] == "FileExistsError" and "trace" in failed
    assert ctx.metrics.job_errors.labels(job="seal")._value.get() == 1


def test_digest_job_writes_the_digest_of_the_week_just_ended(ctx: JobContext) -> None:
    """The weekly job writes the digest of the last complete week and logs the path it wrote."""
    week = default_week(ctx.settings.windows.timezone, datetime.now(UTC)).id
    with capture_logs() as logs:
        write_weekly_digest(ctx)
    [path] = [e["path"] for e in logs if e["event"] == "digest_written"]
    assert Path(path) == ctx.settings.resolve(ctx.settings.digest.out_dir) / f"digest-{week}.json"
    assert Path(path).is_file()
    assert ctx.metrics.digests._value.get() == 1


def test_jobs_start_nothing_once_stop_is_set(ctx: JobContext) -> None:
    """After the stop signal a scheduled job that still fires returns without collecting."""
    ctx.stop.set()
    collect_stream(ctx, "synthetic.events")
    assert ctx.store.count_records() == 0


def test_collect_job_records_health_and_metrics(ctx: JobContext) -> None:
    """One stream job stores its records, feeds the per-kind counters and marks the stream healthy."""
    collect_stream(ctx, "synthetic.events")
    assert ctx.store.count_records() == 30
    healthy, doc = ctx.health.report(NOW)
    assert doc["reasons"] == ["scheduler is not running"]
    assert healthy is False  # the scheduler is not running in this test
    assert ctx.health.stream("synthetic.events").last_status == "ok"
    counter = ctx.metrics.records.labels(stream="synthetic.events", kind="access_log")
    assert counter._value.get() == 30


def test_sealing_starts_when_every_stream_has_run_once(ctx: JobContext) -> None:
    """The first-round hook fires once, after the last stream's first run, whatever its status."""
    fired: list[int] = []
    ctx.first_round = {"synthetic.events", "synthetic.users"}
    ctx.on_first_round = lambda: fired.append(1)
    collect_stream(ctx, "synthetic.events")
    assert fired == []
    collect_stream(ctx, "synthetic.users")
    collect_stream(ctx, "synthetic.users")
    assert fired == [1]


def _result(status: str, error_class: str | None = None) -> Any:
    return RunResult(stream="s.x", run_id="r", status=status, error_class=error_class,
                     ended_at=NOW)


def test_failure_streaks_count_failed_runs_only() -> None:
    """Failed runs extend the streak past the limit; ok or partial ends it; a shutdown-cut run changes nothing."""
    health = HealthState(2, ["s.x"])
    health.scheduler_running = lambda: True
    for _ in range(3):
        health.record(_result("failed", "RetriableError"))
    assert health.record(_result("partial", "Shutdown")) == 3
    healthy, doc = health.report(NOW)
    assert not healthy and doc["reasons"][0].startswith("s.x failed 3 times in a row (limit 2)")
    assert health.record(_result("partial", "ItemFailures")) == 0
    assert health.report(NOW)[0] is True
    health.record(_result("failed", "AuthError"))
    health.record(_result("failed", "AuthError"))
    assert health.report(NOW)[0] is True  # two in a row is within a limit of two


def test_the_schedule_is_built_from_the_config(ctx: JobContext) -> None:
    """One job per stream at its interval, sealing now and hourly, the digest at [digest].schedule."""
    from collector.collect import plan_streams

    scheduler = build_scheduler(ctx, plan_streams(ctx.settings), NOW)
    jobs_by_id = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs_by_id) == {"collect:synthetic.events", "collect:synthetic.users", "seal", "digest"}
    events = jobs_by_id["collect:synthetic.events"]
    assert events.trigger.interval.total_seconds() == 1
    assert events.coalesce and events.max_instances == 1 and events.misfire_grace_time == 1
    assert jobs_by_id["seal"].trigger.interval.total_seconds() == 3600
    assert jobs_by_id["seal"].next_run_time is None  # paused until every stream ran once
    assert ctx.first_round == {"synthetic.events", "synthetic.users"}
    assert str(jobs_by_id["digest"].trigger) == "cron[day_of_week='mon', hour='7', minute='0']"
    first = jobs_by_id["digest"].trigger.get_next_fire_time(None, NOW)
    assert first == datetime(2026, 11, 30, 7, 0, tzinfo=ctx.settings.zone)
    assert jitter_for(ctx.settings.connectors["synthetic"].interval) is None
    from datetime import timedelta
    assert jitter_for(timedelta(minutes=15)) == 90 and jitter_for(timedelta(days=1)) == 300



def test_a_failing_seal_or_digest_job_makes_health_unhealthy_until_it_succeeds(ctx: JobContext) -> None:
    """A seal job without its key, and a digest job that cannot write, turn /healthz unhealthy with
    a reason naming the job (no path in it); the next successful run clears the reason."""
    ctx.health.scheduler_running = lambda: True
    assert ctx.health.report(NOW) == (True, {"status": "ok", "reasons": []})
    seal_windows(ctx)
    out_dir = ctx.settings.resolve(ctx.settings.digest.out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    out_dir.write_text("a file where the digest folder belongs")
    write_weekly_digest(ctx)
    healthy, doc = ctx.health.report(NOW)
    assert not healthy and doc["status"] == "unhealthy"
    assert [r.split(" job failing since ")[0] for r in doc["reasons"]] == ["digest", "seal"]
    assert "ConfigError" in doc["reasons"][1]
    assert not any(str(ctx.settings.base_dir) in r or "key_file" in r for r in doc["reasons"])
    _with_key(ctx)
    seal_windows(ctx)
    out_dir.unlink()
    write_weekly_digest(ctx)
    assert ctx.health.report(NOW) == (True, {"status": "ok", "reasons": []})


def test_healthz_names_the_failing_stream_and_error_class_but_not_vendor_paths_or_orgs() -> None:
    """/healthz holds only status and reasons; a reason never carries the error's text (paths, orgs)."""
    health = HealthState(1, ["github.members"])
    health.scheduler_running = lambda: True
    leak = "GET https://api.github.com/orgs/acme-secret-org/members?page=3 answered 500"
    for _ in range(2):
        health.record(RunResult(stream="github.members", run_id="r", status="failed",
                                error_class="RetriableError", error=leak, ended_at=NOW))
    health.record_crash("github.members", RuntimeError("/srv/secret/path/config.toml is gone"))
    healthy, doc = health.report(NOW)
    assert not healthy and set(doc) == {"status", "reasons"}
    assert doc["reasons"] == ["github.members failed 3 times in a row (limit 1): RuntimeError"]
