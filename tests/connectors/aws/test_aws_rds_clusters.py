"""aws.rds_snapshots beyond single instances: read replicas, Aurora clusters and their snapshots."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from botocore.stub import Stubber
from conftest import REGION, utcnow

from connectors.aws._access import Target
from connectors.aws.rds_snapshots import NOT_OFFERED
from connectors.sdk import Cursor, ItemFailure, Skipped, SourceItem
from sandbox.aws_seed import seed_rds, seed_rds_clusters
from storage import Store


def bodies(store: Store) -> list[dict[str, Any]]:
    """Every stored RDS record body."""
    with store.engine.connect() as conn:
        return [orjson.loads(b) for b in conn.execute(
            sa.text("SELECT body FROM evidence WHERE stream = 'aws.rds_snapshots'")).scalars()]


def test_replicas_clusters_and_cluster_snapshots(moto_session: Any, make_connector: Any, pipeline: Any,
                                                 store: Store) -> None:
    """A read replica with retention 0 is recorded as a replica, not an exception (a primary with 0
    still is); an Aurora cluster's retention is one record per read and its automated snapshot one
    record, each filed under A1.2."""
    rds = moto_session.client("rds", region_name=REGION)
    seed_rds(rds)
    seed_rds_clusters(rds)
    aws = make_connector(moto_session, streams=["rds_snapshots"])
    result = pipeline.run(aws.stream("rds_snapshots"), aws.config)
    assert result.status == "ok" and not result.skipped
    records = bodies(store)
    instances = {b["data"]["instance"]: b for b in records if b["data"]["record"] == "instance_retention"}
    replica = instances["orders-replica"]
    assert replica["data"]["backup_retention_days"] == 0 and replica["data"]["read_replica_source"] == "orders"
    assert replica["status"] == "ok"
    assert instances["scratch"]["status"] == "exception" and instances["scratch"]["data"]["read_replica_source"] is None
    assert instances["ledger-1"]["data"]["cluster"] == "ledger"
    [cluster] = [b for b in records if b["data"]["record"] == "cluster_retention"]
    assert cluster["source_key"].endswith(":cluster:ledger") and cluster["status"] == "ok"
    assert cluster["data"]["backup_retention_days"] == 7 and cluster["data"]["engine"] == "aurora-postgresql"
    [snapshot] = [b for b in records if b["data"]["record"] == "automated_cluster_snapshot"]
    assert snapshot["data"]["cluster"] == "ledger" and snapshot["data"]["snapshot_type"] == "automated"
    assert snapshot["controls"] == ["A1.2"] == cluster["controls"]
    again = pipeline.run(aws.stream("rds_snapshots"), aws.config)
    assert again.records_new == len(instances) + 1  # retention again; no snapshot twice


def test_a_cluster_with_retention_zero_is_an_exception(moto_session: Any, make_connector: Any) -> None:
    """A cluster whose automated backups are off (a Multi-AZ DB cluster can be set to 0) is an exception."""
    aws = make_connector(moto_session, streams=["rds_snapshots"])
    stream = aws.stream("rds_snapshots")
    outputs = _run_stubbed(aws, clusters=[{"DBClusterIdentifier": "db", "BackupRetentionPeriod": 0,
                                           "DBClusterArn": "arn:aws:rds:us-east-1:1:cluster:db"}])
    [item] = [o for o in outputs if isinstance(o, SourceItem)]
    assert stream.normalise(item).exception == "RDS cluster has automated backups off (retention 0 days)"


def _run_stubbed(aws: Any, clusters: list[dict[str, Any]] | None = None, cluster_error: str | None = None,
                 status: int = 400) -> list[Any]:
    client = aws.session().client(Target(None), "rds", REGION, "rds_snapshots")
    now = utcnow()
    with Stubber(client) as stub:
        stub.add_response("describe_db_instances", {"DBInstances": []})
        stub.add_response("describe_db_snapshots", {"DBSnapshots": []})
        if cluster_error is None:
            stub.add_response("describe_db_clusters", {"DBClusters": clusters or []})
            stub.add_response("describe_db_cluster_snapshots", {"DBClusterSnapshots": []})
        else:
            stub.add_client_error("describe_db_clusters", cluster_error, "no", status)
        return list(aws.stream("rds_snapshots").fetch(Cursor(None, now, now)))


def test_cluster_listing_refused_is_a_failure_and_unknown_is_counted(moto_session: Any, make_connector: Any) -> None:
    """AccessDenied on DescribeDBClusters is an item failure for that part; an endpoint that does
    not know the operation (no AWS error code, or InvalidAction) is a Skipped count, not a failure."""
    aws = make_connector(moto_session, streams=["rds_snapshots"])
    denied = _run_stubbed(aws, cluster_error="AccessDenied", status=403)
    assert [(o.key, o.error_class) for o in denied if isinstance(o, ItemFailure)] == [
        ("aws:default:us-east-1:clusters", "AuthError")]
    for code in ("", "InvalidAction"):
        unknown = _run_stubbed(aws, cluster_error=code)
        assert [o for o in unknown if isinstance(o, Skipped)] == [Skipped(NOT_OFFERED)]
        assert not [o for o in unknown if isinstance(o, ItemFailure)]
