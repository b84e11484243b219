"""A stand-in for the AWS Backup REST API's `ListBackupJobs` (moto does not implement it)."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox._http import FakeServer, Request, Response

__all__ = ["FakeBackup", "Job", "demo_jobs"]

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/backup/")


@dataclass(frozen=True)
class Job:
    """One backup job as the fake holds it; ``region`` is where it ran."""

    job_id: str
    account: str
    region: str
    state: str
    resource_arn: str
    created: datetime
    completed: datetime | None = None
    status_message: str | None = None
    size: int | None = None
    resource_type: str = "RDS"
    vault: str = "Default"
    plan_id: str = "plan-demo"
    role_arn: str = "arn:aws:iam::111111111111:role/service-role/AWSBackupDefaultServiceRole"
    extra: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        """The job in ListBackupJobs' JSON shape (timestamps as epoch seconds, as rest-json sends)."""
        body: dict[str, Any] = {
            "AccountId": self.account,
            "BackupJobId": self.job_id,
            "BackupVaultName": self.vault,
            "BackupVaultArn": f"arn:aws:backup:{self.region}:{self.account}:backup-vault:{self.vault}",
            "ResourceArn": self.resource_arn,
            "ResourceType": self.resource_type,
            "CreationDate": self.created.timestamp(),
            "State": self.state,
            "IamRoleArn": self.role_arn,
            "CreatedBy": {"BackupPlanId": self.plan_id},
        }
        if self.completed is not None:
            body["CompletionDate"] = self.completed.timestamp()
            if self.state in ("COMPLETED", "PARTIAL"):  # a partial backup still made a recovery point
                body["RecoveryPointArn"] = (f"arn:aws:rds:{self.region}:{self.account}:snapshot:"
                                            f"awsbackup:job-{self.job_id}")
        if self.status_message:
            body["StatusMessage"] = self.status_message
        if self.size is not None:
            body["BackupSizeInBytes"] = self.size
        if self.state == "RUNNING":
            body["PercentDone"] = "42.0"
        body.update(self.extra)
        return body


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    if text.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(text), UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class FakeBackup(FakeServer):
    """`GET /backup-jobs/` with `createdAfter`, `createdBefore`, `state`, `maxResults`,
    `nextToken`; jobs filtered by the region in the request's SigV4 credential scope."""

    def __init__(self, jobs: list[Job] | None = None) -> None:
        super().__init__()
        self._jobs_lock = threading.Lock()
        self._jobs: dict[str, Job] = {job.job_id: job for job in jobs or []}
        self.route("GET", r"^/backup-jobs/?$", self._list)

    def add(self, job: Job) -> None:
        """Add or replace a job."""
        with self._jobs_lock:
            self._jobs[job.job_id] = job

    def finish(self, job_id: str, state: str, at: datetime, message: str | None = None) -> None:
        """Move a job to a final state at ``at``."""
        with self._jobs_lock:
            self._jobs[job_id] = replace(self._jobs[job_id], state=state, completed=at,
                                         status_message=message)

    def _list(self, request: Request) -> Response:
        match = _SCOPE.search(request.headers.get("authorization", ""))
        region = match.group(1) if match else None
        after, before = _when(request.arg("createdAfter")), _when(request.arg("createdBefore"))
        state = request.arg("state")
        size = min(int(request.arg("maxResults") or 1000), 1000)
        start = int(request.arg("nextToken") or 0)
        with self._jobs_lock:
            jobs = sorted(self._jobs.values(), key=lambda j: (j.created, j.job_id))
        chosen = [j for j in jobs
                  if (region is None or j.region == region)
                  and (after is None or j.created >= after)
                  and (before is None or j.created <= before)
                  and (state is None or j.state == state)]
        page = chosen[start:start + size]
        body: dict[str, Any] = {"BackupJobs": [j.wire() for j in page]}
        if start + size < len(chosen):
            body["NextToken"] = str(start + size)
        return Response(200, body)


def demo_jobs(now: datetime, account: str = "111111111111", region: str = "us-east-1") -> list[Job]:
    """A day of jobs: completed, failed, aborted, expired and one still running."""
    base = now - timedelta(hours=20)
    db = f"arn:aws:rds:{region}:{account}:db:orders"

    def job(n: int, state: str, message: str | None = None, done: bool = True) -> Job:
        created = base + timedelta(hours=n)
        return Job(
            job_id=str(uuid.UUID(int=n + 1)).upper(), account=account, region=region, state=state,
            resource_arn=db, created=created,
            completed=created + timedelta(minutes=25) if done else None,
            status_message=message, size=1_073_741_824 if state == "COMPLETED" else None,
        )

    return [
        job(0, "COMPLETED"),
        job(2, "FAILED", "Insufficient privileges to perform the backup"),
        job(4, "ABORTED", "Backup job was aborted by the user"),
        job(6, "EXPIRED", "Backup job did not start within the start window"),
        job(8, "COMPLETED"),
        job(10, "RUNNING", done=False),
    ]
