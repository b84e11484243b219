"""`aws.rds_snapshots`: automated snapshots of RDS instances and clusters, and their retention per read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from connectors.aws._access import AwsAccess, Target, as_connector_error, error_code
from connectors.aws._raw import BodyCapture, iso, reserialised, xml_elements
from connectors.aws.config import AwsConfig
from connectors.aws.parts import run_parts
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import ConnectorError, PaginationError
from connectors.sdk.items import Cursor, ItemFailure, Normalised, Skipped, SourceItem

__all__ = ["NOT_OFFERED", "RdsItem", "RdsSnapshotsStream"]


_LISTINGS = {
    "DescribeDBInstances": ("describe_db_instances", "DBInstances", "DBInstance"),
    "DescribeDBSnapshots": ("describe_db_snapshots", "DBSnapshots", "DBSnapshot"),
    "DescribeDBClusters": ("describe_db_clusters", "DBClusters", "DBCluster"),
    "DescribeDBClusterSnapshots": ("describe_db_cluster_snapshots", "DBClusterSnapshots",
                                   "DBClusterSnapshot"),
}
"""operation -> (client method, result list key, XML element of one member)."""

NOT_OFFERED = "RDS cluster listing not offered by the endpoint"
"""The ``Skipped`` reason when an endpoint answers a cluster listing as an unknown operation."""
_UNKNOWN_OPERATION = frozenset({"", "InvalidAction", "UnknownOperation", "UnknownOperationException",
                                "UnsupportedOperation", "NotImplemented"})


@dataclass(frozen=True, slots=True)
class RdsItem:
    """An instance or a cluster (its retention, read now), or an automated snapshot of either,
    with its region."""

    what: str  # "instance" | "snapshot" | "cluster" | "cluster_snapshot"
    obj: dict[str, Any]
    region: str


def _not_offered(exc: Exception) -> bool:
    """An answer that says the endpoint does not know the operation at all (no AWS error code,
    or an unknown-operation code), as opposed to a refusal an operator can fix."""
    import botocore.exceptions

    if not isinstance(exc, botocore.exceptions.ClientError):
        return False
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return status in (400, 404, 501) and error_code(exc) in _UNKNOWN_OPERATION


class RdsSnapshotsStream(Stream[AwsConfig, AwsAccess]):
    """Per account and region: one record per automated snapshot of an instance or an Aurora /
    Multi-AZ cluster (observed at its creation, so an unchanged snapshot read again is the same
    record), and one per instance and per cluster per read (observed at the run's start:
    retention is a state, evidence at every collection).

    Retention 0 is an exception, except on a read replica (its data is backed up at its
    source). A cluster listing the endpoint does not offer at all is counted as ``Skipped``;
    one refused (AccessDenied) is an ``ItemFailure`` for that part, the instances still stored.
    """

    name = "rds_snapshots"
    kinds = frozenset({"backup_result"})
    mode = "state"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        capture = BodyCapture()

        def part(target: Target, region: str) -> Iterator[StreamOutput]:
            rds = self.session().client(target, "rds", region, self.name)
            where = target.part(region)
            for instance, raw in self._pages(rds, "DescribeDBInstances", capture, where):
                arn = instance.get("DBInstanceArn") or instance.get("DBInstanceIdentifier")
                if arn:
                    yield SourceItem(arn, cursor.ceiling, raw, RdsItem("instance", instance, region))
            yield from self._snapshots(rds, "DescribeDBSnapshots", capture, where, region)
            try:
                clusters = list(self._pages(rds, "DescribeDBClusters", capture, where))
            except _NotOffered:
                yield Skipped(NOT_OFFERED)
                return
            except ConnectorError as exc:
                yield ItemFailure(f"{where}:clusters", str(exc), type(exc).__name__)
                return
            for cluster, raw in clusters:
                arn = cluster.get("DBClusterArn") or cluster.get("DBClusterIdentifier")
                if arn:
                    yield SourceItem(arn, cursor.ceiling, raw, RdsItem("cluster", cluster, region))
            try:
                yield from self._snapshots(rds, "DescribeDBClusterSnapshots", capture, where, region)
            except _NotOffered:
                yield Skipped(NOT_OFFERED)
            except ConnectorError as exc:
                yield ItemFailure(f"{where}:cluster-snapshots", str(exc), type(exc).__name__)

        yield from run_parts(self.session().parts(), part)

    def _snapshots(self, rds: Any, operation: str, capture: BodyCapture, where: str,
                   region: str) -> Iterator[SourceItem]:
        """Automated snapshots (of instances or of clusters), observed at their creation."""
        what = "snapshot" if operation == "DescribeDBSnapshots" else "cluster_snapshot"
        for snapshot, raw in self._pages(rds, operation, capture, where, SnapshotType="automated"):
            arn = snapshot.get("DBSnapshotArn") or snapshot.get("DBClusterSnapshotArn") \
                or snapshot.get("DBSnapshotIdentifier") or snapshot.get("DBClusterSnapshotIdentifier")
            created = snapshot.get("SnapshotCreateTime")
            if arn and created is not None:  # a snapshot still being created has no time yet
                yield SourceItem(arn, created.astimezone(UTC), raw, RdsItem(what, snapshot, region))

    @staticmethod
    def _pages(rds: Any, operation: str, capture: BodyCapture, where: str,
               **params: Any) -> Iterator[tuple[dict[str, Any], bytes]]:
        method_name, key, tag = _LISTINGS[operation]
        capture.attach(rds, "rds", operation)
        method = getattr(rds, method_name)
        marker: str | None = None
        seen: set[str] = set()
        while True:
            try:
                page = method(**params, **({"Marker": marker} if marker else {}))
            except Exception as exc:
                if operation in ("DescribeDBClusters", "DescribeDBClusterSnapshots") and _not_offered(exc):
                    raise _NotOffered(operation) from exc
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
        console = f"https://console.aws.amazon.com/rds/home?region={rds.region}"
        if rds.what in ("instance", "cluster"):
            return _retention(item.key, rds, console)
        cluster = rds.what == "cluster_snapshot"
        name = obj.get("DBClusterSnapshotIdentifier" if cluster else "DBSnapshotIdentifier")
        data: dict[str, Any] = {
            "record": "automated_cluster_snapshot" if cluster else "automated_snapshot",
            "snapshot": name,
            "arn": item.key,
            "region": rds.region,
            ("cluster" if cluster else "instance"): obj.get("DBClusterIdentifier" if cluster
                                                            else "DBInstanceIdentifier"),
            "engine": obj.get("Engine"),
            "status": obj.get("Status"),
            "snapshot_type": obj.get("SnapshotType"),
            "created_at": iso(obj.get("SnapshotCreateTime")),
            "encrypted": obj.get("StorageEncrypted") if cluster else obj.get("Encrypted"),
            "allocated_storage_gb": obj.get("AllocatedStorage"),
        }
        url = f"{console}#db-snapshot:engine={obj.get('Engine')};id={name}"
        return Normalised("backup_result", None, url, data, None)


class _NotOffered(Exception):
    """The endpoint does not offer a cluster listing at all."""


def _retention(arn: str, rds: RdsItem, console: str) -> Normalised:
    """An instance's or a cluster's backup retention as read now; retention 0 is an exception
    unless the instance is a read replica (backed up at its source)."""
    obj = rds.obj
    retention = int(obj.get("BackupRetentionPeriod") or 0)
    if rds.what == "cluster":
        name = obj.get("DBClusterIdentifier")
        data: dict[str, Any] = {
            "record": "cluster_retention",
            "cluster": name,
            "arn": arn,
            "region": rds.region,
            "engine": obj.get("Engine"),
            "status": obj.get("Status"),
            "backup_retention_days": retention,
            "preferred_backup_window": obj.get("PreferredBackupWindow"),
            "latest_restorable_time": iso(obj.get("LatestRestorableTime")),
            "members": sorted(str(m.get("DBInstanceIdentifier")) for m in obj.get("DBClusterMembers") or []),
        }
        exception = "RDS cluster has automated backups off (retention 0 days)" if retention == 0 else None
        url = f"{console}#database:id={name};is-cluster=true"
        return Normalised("backup_result", None, url, data, exception)
    name = obj.get("DBInstanceIdentifier")
    source = obj.get("ReadReplicaSourceDBInstanceIdentifier")
    data = {
        "record": "instance_retention",
        "instance": name,
        "arn": arn,
        "region": rds.region,
        "engine": obj.get("Engine"),
        "status": obj.get("DBInstanceStatus"),
        "backup_retention_days": retention,
        "preferred_backup_window": obj.get("PreferredBackupWindow"),
        "latest_restorable_time": iso(obj.get("LatestRestorableTime")),
        "cluster": obj.get("DBClusterIdentifier"),
        "read_replica_source": source,
    }
    exception = None
    if retention == 0 and not source:
        exception = "RDS instance has automated backups off (retention 0 days)"
    return Normalised("backup_result", None, f"{console}#database:id={name}", data, exception)
