"""`aws.rds_snapshots`: RDS automated snapshots, and each instance's backup retention at every read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from connectors.aws._access import AwsAccess, Target, as_connector_error
from connectors.aws._raw import BodyCapture, iso, reserialised, xml_elements
from connectors.aws.config import AwsConfig
from connectors.aws.parts import run_parts
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import PaginationError
from connectors.sdk.items import Cursor, Normalised, SourceItem

__all__ = ["RdsItem", "RdsSnapshotsStream"]


@dataclass(frozen=True, slots=True)
class RdsItem:
    """An instance (its retention, read now) or an automated snapshot, with its region."""

    what: str  # "instance" | "snapshot"
    obj: dict[str, Any]
    region: str


class RdsSnapshotsStream(Stream[AwsConfig, AwsAccess]):
    """Per account and region: one record per automated snapshot (observed at its creation, so
    an unchanged snapshot read again is the same record) and one per instance per read
    (observed at the run's start: retention is a state, evidence at every collection)."""

    name = "rds_snapshots"
    kinds = frozenset({"backup_result"})
    mode = "state"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        capture = BodyCapture()

        def part(target: Target, region: str) -> Iterator[StreamOutput]:
            rds = self.session().client(target, "rds", region, self.name)
            for instance, raw in self._pages(rds, "DescribeDBInstances", "DBInstances", "DBInstance",
                                             capture, target.part(region)):
                arn = instance.get("DBInstanceArn") or instance.get("DBInstanceIdentifier")
                if arn:
                    yield SourceItem(arn, cursor.ceiling, raw, RdsItem("instance", instance, region))
            for snapshot, raw in self._pages(rds, "DescribeDBSnapshots", "DBSnapshots", "DBSnapshot",
                                             capture, target.part(region), SnapshotType="automated"):
                arn = snapshot.get("DBSnapshotArn") or snapshot.get("DBSnapshotIdentifier")
                created = snapshot.get("SnapshotCreateTime")
                if arn and created is not None:  # a snapshot still being created has no time yet
                    yield SourceItem(arn, created.astimezone(UTC), raw, RdsItem("snapshot", snapshot, region))

        yield from run_parts(self.session().parts(), part)

    @staticmethod
    def _pages(rds: Any, operation: str, key: str, tag: str, capture: BodyCapture, where: str,
               **params: Any) -> Iterator[tuple[dict[str, Any], bytes]]:
        capture.attach(rds, "rds", operation)
        method = getattr(rds, "describe_db_instances" if operation == "DescribeDBInstances"
                         else "describe_db_snapshots")
        marker: str | None = None
        seen: set[str] = set()
        while True:
            try:
                page = method(**params, **({"Marker": marker} if marker else {}))
            except Exception as exc:
                raise as_connector_error(exc, f"rds:{operation} in {where}") from exc
            items: list[dict[str, Any]] = page.get(key, [])
            body = capture.take()
            spans = xml_elements(body, tag) if body is not None else []
            if len(spans) != len(items):
                spans = [reserialised(obj) for obj in items]
            yield from zip(items, spans, strict=True)
            marker = page.get("Marker")
            if not marker:
                return
            if marker in seen:
                raise PaginationError(f"aws: {operation} returned a marker twice in {where}")
            seen.add(marker)

    def normalise(self, item: SourceItem) -> Normalised:
        rds: RdsItem = item.obj
        obj = rds.obj
        if rds.what == "instance":
            retention = int(obj.get("BackupRetentionPeriod") or 0)
            data: dict[str, Any] = {
                "record": "instance_retention",
                "instance": obj.get("DBInstanceIdentifier"),
                "arn": item.key,
                "region": rds.region,
                "engine": obj.get("Engine"),
                "status": obj.get("DBInstanceStatus"),
                "backup_retention_days": retention,
                "preferred_backup_window": obj.get("PreferredBackupWindow"),
                "latest_restorable_time": iso(obj.get("LatestRestorableTime")),
                "cluster": obj.get("DBClusterIdentifier"),
            }
            exception = None
            if retention == 0:
                exception = "RDS instance has automated backups off (retention 0 days)"
            url = (f"https://console.aws.amazon.com/rds/home?region={rds.region}"
                   f"#database:id={obj.get('DBInstanceIdentifier')}")
            return Normalised("backup_result", None, url, data, exception)
        data = {
            "record": "automated_snapshot",
            "snapshot": obj.get("DBSnapshotIdentifier"),
            "arn": item.key,
            "region": rds.region,
            "instance": obj.get("DBInstanceIdentifier"),
            "engine": obj.get("Engine"),
            "status": obj.get("Status"),
            "snapshot_type": obj.get("SnapshotType"),
            "created_at": iso(obj.get("SnapshotCreateTime")),
            "encrypted": obj.get("Encrypted"),
            "allocated_storage_gb": obj.get("AllocatedStorage"),
        }
        url = (f"https://console.aws.amazon.com/rds/home?region={rds.region}"
               f"#db-snapshot:engine={obj.get('Engine')};id={obj.get('DBSnapshotIdentifier')}")
        return Normalised("backup_result", None, url, data, None)
