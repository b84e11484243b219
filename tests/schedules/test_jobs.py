"""Job functions in-process: the seal/digest seam, stream health bookkeeping, HTTP metrics, the schedule."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from _daemon import write_config
from structlog.testing import capture_logs

import schedules.jobs as jobs
from collector.config import load_settings
from collector.pipeline import RunResult
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


@pytest.fixture
def feature_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path for stand-ins of features built elsewhere (seal, digest)."""
    root = tmp_path / "features"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in [m for m in sys.modules if m.startswith("ec_feature_")]:
        del sys.modules[name]


def test_a_missing_feature_is_logged_once_and_the_job_does_nothing(ctx: JobContext,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the seal module the hourly job logs feature_unavailable once, raises nothing, seals nothing."""
    monkeypatch.setattr(jobs, "SEAL_FEATURE", ("ec_feature_absent", "seal_due_windows"))
    monkeypatch.setattr(jobs, "SEALER_FEATURE", ("ec_feature_absent.snapshot", "sealer_from_settings"))
    with capture_logs() as logs:
        seal_windows(ctx)
        seal_windows(ctx)
    assert [e["event"] for e in logs] == ["feature_unavailable"]
    assert logs[0]["feature"] == "ec_feature_absent.seal_due_windows"
    assert ctx.metrics.sealed._value.get() == 0
    assert ctx.active() == []


def test_a_broken_feature_is_a_job_failure_not_silence(ctx: JobContext, feature_modules: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A feature module that fails to import its own dependency is reported as a failed job, with the name."""
    (feature_modules / "ec_feature_broken.py").write_text("import ec_no_such_dependency\n")
    monkeypatch.setattr(jobs, "DIGEST_FEATURE", ("ec_feature_broken", "write_digest"))
    with capture_logs() as logs:
        write_weekly_digest(ctx)
    [failed] = [e for e in logs if e["event"] == "job_failed"]
    assert failed["job"] == "digest" and "ec_no_such_dependency" in failed["error"]
    assert ctx.metrics.job_errors.labels(job="digest")._value.get() == 1


def test_sealed_windows_are_logged_and_counted(ctx: JobContext, feature_modules: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The seal job passes (settings, store, now) and logs and counts every window the feature sealed."""
    (feature_modules / "ec_feature_seal.py").write_text(
        "CALLS = []\n"
        "def seal_due_windows(settings, store, now):\n"
        "    CALLS.append((settings.path, store.dialect, now))\n"
        "    return ['2026-09', '2026-10']\n"
    )
    monkeypatch.setattr(jobs, "SEAL_FEATURE", ("ec_feature_seal", "seal_due_windows"))
    with capture_logs() as logs:
        seal_windows(ctx)
    assert [e["window"] for e in logs if e["event"] == "window_sealed"] == ["2026-09", "2026-10"]
    assert ctx.metrics.sealed._value.get() == 2
    assert sys.modules["ec_feature_seal"].CALLS == [(ctx.settings.path, "sqlite", NOW)]


_SEALER = """
from types import SimpleNamespace as NS
SEALED = {}
class Sealer:
    def __init__(self, store):
        self.store = store
        self.clock = None
        self.calls = 0
    def due_window(self):
        return NS(id="2026-10")
    def seal(self):
        SEALED["clock"] = self.clock()
        return [NS(window_id="2026-09", reproduced=False), NS(window_id="2026-10", reproduced=False),
                NS(window_id="2026-10", reproduced=True)]
def sealer_from_settings(settings, store):
    return Sealer(store)
"""


def test_the_sealer_fallback_reports_new_snapshots_and_skips_a_sealed_due_window(
        ctx: JobContext, feature_modules: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without seal_due_windows the job drives sealer.seal() at the job's clock, reports only new snapshots,
    and does not call it at all once the due window is sealed."""
    (feature_modules / "ec_feature_sealer.py").write_text(_SEALER)
    monkeypatch.setattr(jobs, "SEAL_FEATURE", ("ec_feature_absent", "seal_due_windows"))
    monkeypatch.setattr(jobs, "SEALER_FEATURE", ("ec_feature_sealer", "sealer_from_settings"))
    with capture_logs() as logs:
        seal_windows(ctx)
    assert [e["window"] for e in logs if e["event"] == "window_sealed"] == ["2026-09", "2026-10"]
    assert sys.modules["ec_feature_sealer"].SEALED["clock"] == NOW
    with ctx.store.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO snapshots (window_id, seq, file_name, window_start, window_end, sealed_at, "
            "record_count, merkle_root, sums_sha256, signature, key_spki_sha256, manifest) VALUES "
            "('2026-10', 0, '2026-10.tar', '2026-10-01T00:00:00.000000Z', '2026-11-01T00:00:00.000000Z', "
            "'2026-11-02T00:00:00.000000Z', 0, 'r', 's', 'g', 'k', '{}')"))
    sys.modules["ec_feature_sealer"].SEALED.clear()
    with capture_logs() as logs:
        seal_windows(ctx)
    assert not [e for e in logs if e["event"] == "window_sealed"]
    assert sys.modules["ec_feature_sealer"].SEALED == {}


def test_a_failing_seal_is_logged_and_counted_and_never_raises(ctx: JobContext, feature_modules: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception inside sealing becomes a job_failed event and a job error count; the daemon goes on."""
    (feature_modules / "ec_feature_badseal.py").write_text(
        "def seal_due_windows(settings, store, now):\n    raise RuntimeError('disk full')\n"
    )
    monkeypatch.setattr(jobs, "SEAL_FEATURE", ("ec_feature_badseal", "seal_due_windows"))
    with capture_logs() as logs:
        seal_windows(ctx)
    [failed] = [e for e in logs if e["event"] == "job_failed"]
    assert failed["error_class"] == "RuntimeError" and "trace" in failed
    assert ctx.metrics.job_errors.labels(job="seal")._value.get() == 1


def test_digest_job_calls_write_digest_for_the_default_week(ctx: JobContext, feature_modules: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The weekly job calls write_digest(settings, store, None) and logs the path it wrote."""
    (feature_modules / "ec_feature_digest.py").write_text(
        "from pathlib import Path\n"
        "def write_digest(settings, store, week=None):\n"
        "    assert week is None\n"
        "    return Path('/tmp/digest-2026-W47.json')\n"
    )
    monkeypatch.setattr(jobs, "DIGEST_FEATURE", ("ec_feature_digest", "write_digest"))
    with capture_logs() as logs:
        write_weekly_digest(ctx)
    assert [e["path"] for e in logs if e["event"] == "digest_written"] == ["/tmp/digest-2026-W47.json"]
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
    assert healthy is False  # the scheduler is not running in this test
    assert doc["streams"]["synthetic.events"]["last_status"] == "ok"
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

