"""The daemon's intake job: scheduled at [intake] interval, one pass per run, a people check after."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _daemon import write_config
from sqlalchemy import text

from collector.collect import plan_streams
from collector.config import load_settings
from collector.errors import ConfigError
from schedules.daemon import _validate_intake, build_scheduler
from schedules.health import HealthState
from schedules.jobs import JobContext, process_intake
from schedules.metrics import Metrics
from storage import Store

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
INTAKE = """
[intake]
folder = "intake"
interval = "2m"
settle = "0s"

[people]
roster = "roster.csv"
[[people.require]]
type = "policy_ack"
item = "infosec-policy@v3"
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[JobContext]:
    """A job context whose config watches ``intake/`` and requires one acknowledgement of two people."""
    (tmp_path / "intake").mkdir()
    (tmp_path / "roster.csv").write_text("email\nann@acme.example\nlee@acme.example\n")
    settings = load_settings(write_config(tmp_path, extra=INTAKE))
    store = Store.open(settings.storage_url)
    yield JobContext(settings, store, Metrics(), HealthState(2, []), threading.Event(), lambda: NOW)
    store.close()


def test_the_intake_job_is_scheduled_at_its_interval(ctx: JobContext) -> None:
    """With [intake] folder set the scheduler holds an intake job every interval, starting now."""
    scheduler = build_scheduler(ctx, plan_streams(ctx.settings), NOW)
    job = scheduler.get_job("intake")
    assert job is not None and job.trigger.interval.total_seconds() == 120
    assert job.coalesce and job.max_instances == 1 and job.next_run_time == NOW


def test_a_pass_stores_the_folder_and_checks_people(ctx: JobContext) -> None:
    """One run stores an HR export dropped in the folder, then writes a people-coverage read naming
    the person still missing."""
    folder = ctx.settings.resolve("intake")
    (folder / "acks.csv").write_text("Email,Policy,Signed\nann@acme.example,infosec-policy@v3,2026-11-02\n")
    (folder / "acks.csv.toml").write_text('attestations = "policy_ack"\n'
                                         'columns = "person=Email,item=Policy,at=Signed"\n')
    process_intake(ctx)
    assert (folder / "processed" / "acks.csv").exists()
    with ctx.store.engine.connect() as conn:
        missing = conn.execute(text("SELECT actor FROM evidence WHERE stream = 'people.coverage' "
                                    "AND status = 'exception'")).scalars().all()
    assert missing == ["lee@acme.example"]
    assert ctx.active() == []


def test_a_missing_intake_folder_stops_the_daemon_at_start(tmp_path: Path) -> None:
    """A daemon whose intake folder does not exist refuses to start, naming intake.folder."""
    settings = load_settings(write_config(tmp_path, extra='[intake]\nfolder = "nowhere"\n'))
    with pytest.raises(ConfigError) as error:
        _validate_intake(settings)
    assert error.value.key == "intake.folder"
