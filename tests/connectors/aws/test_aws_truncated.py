"""A truncated AWS answer is asked for again, never read as an empty page (found by the reliability suite)."""

from __future__ import annotations

from typing import Any

import botocore.config
from conftest import utcnow

from sandbox._http import Truncated
from sandbox.aws_backup import FakeBackup, demo_jobs


def test_a_truncated_list_backup_jobs_answer_is_retried(fake_backup: FakeBackup, make_connector: Any,
                                                        pipeline: Any) -> None:
    """A ListBackupJobs body cut short of its Content-Length is retried, and every job is stored."""
    for entry in demo_jobs(utcnow()):
        fake_backup.add(entry)
    fake_backup.faults.push(Truncated(), times=2)
    aws = make_connector(None, streams=["backup_jobs"], service_endpoints=[f"backup={fake_backup.url}"])
    result = pipeline.run(aws.stream("backup_jobs"), aws.config)
    assert result.status == "ok" and result.records_new == 6
    assert [r.fault for r in fake_backup.requests] == ["truncated", "truncated", None]


def test_an_answer_truncated_at_every_attempt_fails_the_run(fake_backup: FakeBackup, make_connector: Any,
                                                            pipeline: Any) -> None:
    """When every attempt is cut short the run fails (so the cursor stays) instead of ending ok and empty."""
    for entry in demo_jobs(utcnow()):
        fake_backup.add(entry)
    fake_backup.faults.push(Truncated(), times=3)
    aws = make_connector(None, streams=["backup_jobs"], service_endpoints=[f"backup={fake_backup.url}"])
    aws.session().botocore_config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3})
    result = pipeline.run(aws.stream("backup_jobs"), aws.config)
    assert result.status in ("failed", "partial") and result.records_new == 0
    assert result.error is not None and "IncompleteReadError" in result.error
    assert [r.fault for r in fake_backup.requests] == ["truncated"] * 3
