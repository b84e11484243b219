"""aws.backup_jobs: Stubber on the real client, and the sandbox's Backup API over loopback."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from botocore.stub import Stubber
from conftest import REGION, utcnow

from connectors.aws import AwsConfig, AwsConnector
from connectors.aws._access import Target
from connectors.sdk import Checkpoint, Cursor, SourceItem
from connectors.sdk.errors import PaginationError
from sandbox._http import Status
from sandbox.aws_backup import FakeBackup, Job, demo_jobs
from storage import Store

CEILING = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
FLOOR = CEILING - timedelta(days=90)


def job(n: int, state: str, message: str | None = None) -> dict[str, Any]:
    """A ListBackupJobs entry as botocore parses it."""
    created = CEILING - timedelta(hours=30 - n)
    entry: dict[str, Any] = {
        "AccountId": "111111111111", "BackupJobId": f"job-{n}", "BackupVaultName": "Default",
        "ResourceArn": "arn:aws:rds:us-east-1:111111111111:db:orders", "ResourceType": "RDS",
        "CreationDate": created, "State": state,
        "IamRoleArn": "arn:aws:iam::111111111111:role/backup",
    }
    if state != "RUNNING":
        entry["CompletionDate"] = created + timedelta(minutes=20)
    if message:
        entry["StatusMessage"] = message
    return entry


def stubbed(session: Any, **config: Any) -> tuple[AwsConnector, Any]:
    """A connector (backup jobs only) and the client its stream will use in us-east-1."""
    aws = AwsConnector(AwsConfig(streams=("backup_jobs",), **config), session=session)
    return aws, aws.session().client(Target(None), "backup", REGION, "backup_jobs")


def run(aws: AwsConnector, value: Any = None) -> list[Any]:
    """Everything the stream yields for one run from cursor ``value``."""
    return list(aws.stream("backup_jobs").fetch(Cursor(value, CEILING, FLOOR)))


def test_failed_aborted_expired_and_partial_jobs_are_exceptions_across_pages(moto_session: Any) -> None:
    """Every page is read; FAILED, ABORTED, EXPIRED and PARTIAL (part of the resource not backed
    up) are exceptions, COMPLETED and RUNNING are not; the first run reads from the backfill
    floor to the run's ceiling."""
    aws, client = stubbed(moto_session)
    window = {"ByCreatedAfter": FLOOR, "ByCreatedBefore": CEILING, "MaxResults": 1000}
    with Stubber(client) as stub:
        stub.add_response("list_backup_jobs", {"BackupJobs": [job(1, "COMPLETED"), job(2, "FAILED", "no access")],
                                               "NextToken": "p2"}, window)
        stub.add_response("list_backup_jobs", {"BackupJobs": [job(3, "ABORTED"), job(4, "EXPIRED"),
                                                              job(5, "PARTIAL"), job(6, "RUNNING")]},
                          {**window, "NextToken": "p2"})
        outputs = run(aws)
        stub.assert_no_pending_responses()
    stream = aws.stream("backup_jobs")
    got = {o.key: stream.normalise(o) for o in outputs if isinstance(o, SourceItem)}
    assert {k: e.exception for k, e in got.items()} == {
        "job-1": None, "job-2": "backup job FAILED: no access", "job-3": "backup job ABORTED",
        "job-4": "backup job EXPIRED", "job-5": "backup job PARTIAL", "job-6": None,
    }
    assert got["job-2"].kind == "backup_result" and got["job-2"].actor == "arn:aws:iam::111111111111:role/backup"
    assert outputs[-1] == Checkpoint({"aws:default:us-east-1": "2026-11-28T07:00:00.000000Z"})


def test_the_next_run_reads_from_the_cursor_minus_the_lookback(moto_session: Any) -> None:
    """ByCreatedAfter is the part's cursor minus backup_lookback, so running jobs are read again."""
    aws, client = stubbed(moto_session, backup_lookback=timedelta(days=3))
    with Stubber(client) as stub:
        stub.add_response("list_backup_jobs", {"BackupJobs": []}, {
            "ByCreatedAfter": datetime(2026, 11, 17, 6, 0, tzinfo=UTC), "ByCreatedBefore": CEILING,
            "MaxResults": 1000})
        run(aws, {"aws:default:us-east-1": "2026-11-20T06:00:00.000000Z"})
        stub.assert_no_pending_responses()


def test_a_repeated_page_token_is_a_pagination_error(moto_session: Any) -> None:
    """A NextToken seen before stops the listing with PaginationError instead of looping."""
    aws, client = stubbed(moto_session)
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_response("list_backup_jobs", {"BackupJobs": [job(1, "COMPLETED")], "NextToken": "same"})
        with pytest.raises(PaginationError):
            run(aws)


def stored(store: Store) -> list[dict[str, Any]]:
    """Every stored backup-job record body."""
    with store.engine.connect() as conn:
        return [orjson.loads(b) for b in conn.execute(
            sa.text("SELECT body FROM evidence WHERE stream = 'aws.backup_jobs'")).scalars()]


def test_a_job_is_recorded_once_per_state_over_loopback(fake_backup: FakeBackup, make_connector: Any,
                                                        pipeline: Any, store: Store) -> None:
    """Through the sandbox Backup API and the pipeline: an unchanged job dedupes, a running job
    that finished is a second record, and raw_sha256 is the job's exact bytes on the wire."""
    now = utcnow()
    jobs = demo_jobs(now)
    for entry in jobs:
        fake_backup.add(entry)
    # endpoint_url points nowhere: service_endpoints must win for the Backup client.
    aws = make_connector(None, streams=["backup_jobs"], endpoint_url="http://127.0.0.1:9",
                         service_endpoints=[f"backup={fake_backup.url}"])
    first = pipeline.run(aws.stream("backup_jobs"), aws.config)
    assert first.status == "ok" and first.records_new == len(jobs)
    reasons = sorted(b["exception_reason"] for b in stored(store) if b["exception_reason"])
    assert [r.split(":")[0] for r in reasons] == ["backup job ABORTED", "backup job EXPIRED", "backup job FAILED"]
    completed = next(b for b in stored(store) if b["source_key"] == jobs[0].job_id)
    wire = json.dumps(jobs[0].wire(), separators=(",", ":")).encode()
    assert completed["raw_sha256"] == hashlib.sha256(wire).hexdigest()
    running = jobs[-1]
    fake_backup.finish(running.job_id, "COMPLETED", now - timedelta(minutes=1))
    second = pipeline.run(aws.stream("backup_jobs"), aws.config)
    assert second.status == "ok" and second.records_new == 1
    states = sorted(b["data"]["state"] for b in stored(store) if b["source_key"] == running.job_id)
    assert states == ["COMPLETED", "RUNNING"]
    assert "createdAfter" in fake_backup.requests[-1].query


def test_access_denied_in_one_region_is_partial_and_other_regions_continue(
        fake_backup: FakeBackup, make_connector: Any, pipeline: Any, store: Store) -> None:
    """An AccessDeniedException in one region marks the run partial with that error; the other
    region's jobs are stored and only its cursor advances."""
    now = utcnow()
    for region in ("us-east-1", "eu-west-1"):
        for entry in demo_jobs(now, region=region):
            fake_backup.add(Job(**{**entry.__dict__, "job_id": f"{region}-{entry.job_id}"}))
    fake_backup.faults.push(Status(403, headers=[("x-amzn-ErrorType", "AccessDeniedException")],
                                   body={"message": "not authorised to perform backup:ListBackupJobs"}))
    aws = make_connector(None, streams=["backup_jobs"], regions=["us-east-1", "eu-west-1"],
                         service_endpoints=[f"backup={fake_backup.url}"])
    result = pipeline.run(aws.stream("backup_jobs"), aws.config)
    assert result.status == "partial" and result.error is not None
    assert result.error.startswith("aws:default:us-east-1: AuthError") and "AccessDeniedException" in result.error
    kept = [b["source_key"] for b in stored(store)]
    assert len(kept) == 6 and all(key.startswith("eu-west-1-") for key in kept)
    assert set(orjson.loads(store.read_cursor("aws.backup_jobs") or "{}")) == {"aws:default:eu-west-1"}


def test_throttling_is_retried_inside_the_client(fake_backup: FakeBackup, make_connector: Any,
                                                 pipeline: Any) -> None:
    """A throttled ListBackupJobs is retried by botocore's adaptive mode and the run succeeds."""
    for entry in demo_jobs(utcnow()):
        fake_backup.add(entry)
    fake_backup.faults.push(Status(429, headers=[("x-amzn-ErrorType", "ThrottlingException")],
                                   body={"message": "Rate exceeded"}))
    aws = make_connector(None, streams=["backup_jobs"], service_endpoints=[f"backup={fake_backup.url}"])
    result = pipeline.run(aws.stream("backup_jobs"), aws.config)
    assert result.status == "ok" and result.records_new == 6
    assert [r.status for r in fake_backup.requests] == [429, 200]
