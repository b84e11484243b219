"""`aws.backup_jobs`: AWS Backup jobs created since the cursor minus a lookback, one record per state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.aws._access import AwsAccess, Target, as_connector_error
from connectors.aws._raw import BodyCapture, iso, reserialised
from connectors.aws.config import AwsConfig
from connectors.aws.parts import run_parts
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import PaginationError
from connectors.sdk.items import Checkpoint, Cursor, Normalised, SourceItem
from connectors.sdk.rawjson import split_member

__all__ = ["FAILED_STATES", "BackupJob", "BackupJobsStream"]

FAILED_STATES = frozenset({"FAILED", "ABORTED", "EXPIRED", "PARTIAL"})
"""Job states that are exceptions: PARTIAL means some of the resource was not backed up."""
PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class BackupJob:
    """One job as listed, with the region it was listed in."""

    job: dict[str, Any]
    region: str


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class BackupJobsStream(Stream[AwsConfig, AwsAccess]):
    """``ListBackupJobs`` per account and region, ``ByCreatedAfter`` = that part's cursor minus
    ``backup_lookback`` (so a job still running at one collection has its final state read at
    the next), ``ByCreatedBefore`` = the run's ceiling.

    The cursor is ``{"aws:<account>:<region>": ceiling of the last complete read}``. A job's
    ``observed_at`` is its completion time (its creation time while it runs), so reading an
    unchanged job again produces the same record, and a new state produces a new one.
    """

    name = "backup_jobs"
    kinds = frozenset({"backup_result"})
    mode = "events"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        state: dict[str, str] = dict(cursor.value or {})
        capture = BodyCapture()

        def part(target: Target, region: str) -> Iterator[StreamOutput]:
            key = target.part(region)
            since = _parse(state[key]) - self.config.backup_lookback if key in state else cursor.floor
            yield from self._jobs(target, region, since, cursor.ceiling, capture)
            state[key] = iso(cursor.ceiling) or ""
            yield Checkpoint(dict(state))

        yield from run_parts(self.session().parts(), part)

    def _jobs(self, target: Target, region: str, since: datetime, until: datetime,
              capture: BodyCapture) -> Iterator[SourceItem]:
        client = self.session().client(target, "backup", region, self.name)
        capture.attach(client, "backup", "ListBackupJobs")
        token: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"ByCreatedAfter": since, "ByCreatedBefore": until,
                                      "MaxResults": PAGE_SIZE}
            if token:
                params["NextToken"] = token
            try:
                page = client.list_backup_jobs(**params)
            except Exception as exc:
                raise as_connector_error(exc, f"backup:ListBackupJobs in {target.part(region)}") from exc
            jobs: list[dict[str, Any]] = page.get("BackupJobs", [])
            raws = self._raws(capture.take(), jobs)
            for job, raw in zip(jobs, raws, strict=True):
                observed = job.get("CompletionDate") or job.get("CreationDate")
                if not job.get("BackupJobId") or observed is None:
                    continue
                observed = observed.astimezone(UTC)
                if observed > until:
                    continue  # finished after the run began: the next run's lookback reads it
                yield SourceItem(job["BackupJobId"], observed, raw, BackupJob(job, region))
            token = page.get("NextToken")
            if not token:
                return
            if token in seen:
                raise PaginationError(
                    f"aws: ListBackupJobs returned a page token twice in {target.part(region)}")
            seen.add(token)

    @staticmethod
    def _raws(body: bytes | None, jobs: list[dict[str, Any]]) -> list[bytes]:
        """Each job's exact bytes in the response; re-serialised when no response was received."""
        if body is not None:
            try:
                spans = split_member(body, "BackupJobs")
            except ValueError:
                spans = []
            ids = [obj.get("BackupJobId") for obj, _ in spans]
            if ids == [job.get("BackupJobId") for job in jobs]:
                return [raw for _, raw in spans]
        return [reserialised(job) for job in jobs]

    def normalise(self, item: SourceItem) -> Normalised:
        listed: BackupJob = item.obj
        job = listed.job
        state = str(job.get("State", "UNKNOWN"))
        size = job.get("BackupSizeInBytes")
        data: dict[str, Any] = {
            "job_id": job["BackupJobId"],
            "account": job.get("AccountId"),
            "region": listed.region,
            "state": state,
            "status_message": job.get("StatusMessage"),
            "resource_arn": job.get("ResourceArn"),
            "resource_type": job.get("ResourceType"),
            "resource_name": job.get("ResourceName"),
            "backup_vault": job.get("BackupVaultName"),
            "recovery_point_arn": job.get("RecoveryPointArn"),
            "backup_plan_id": (job.get("CreatedBy") or {}).get("BackupPlanId"),
            "backup_type": job.get("BackupType"),
            "created_at": iso(job.get("CreationDate")),
            "completed_at": iso(job.get("CompletionDate")),
            # Only a finished job's size: while it runs the number changes at every read.
            "backup_size_bytes": int(size) if isinstance(size, int) and job.get("CompletionDate") else None,
        }
        exception = None
        if state in FAILED_STATES:
            detail = f": {job['StatusMessage']}" if job.get("StatusMessage") else ""
            exception = f"backup job {state}{detail}"
        return Normalised(
            kind="backup_result",
            actor=job.get("IamRoleArn"),
            source_url=(f"https://console.aws.amazon.com/backup/home?region={listed.region}"
                        f"#/jobs/backup/details/{job['BackupJobId']}"),
            data=data,
            exception=exception,
        )
