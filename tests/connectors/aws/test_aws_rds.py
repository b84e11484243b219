"""aws.rds_snapshots against moto: retention per read, automated snapshots, exact XML bytes."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import sqlalchemy as sa
from conftest import REGION

from connectors.aws._access import Target
from connectors.aws._raw import xml_elements
from sandbox.aws_seed import seed_rds
from storage import Store


def bodies(store: Store) -> list[dict[str, Any]]:
    """Every stored RDS record body."""
    with store.engine.connect() as conn:
        return [orjson.loads(b) for b in conn.execute(
            sa.text("SELECT body FROM evidence WHERE stream = 'aws.rds_snapshots'")).scalars()]


def test_retention_zero_is_an_exception_and_snapshots_are_recorded(moto_session: Any, make_connector: Any,
                                                                   pipeline: Any, store: Store) -> None:
    """An instance with retention 0 is an exception, one with 7 days is not; each automated
    snapshot is one backup_result record; manual snapshots are not collected."""
    rds = moto_session.client("rds", region_name=REGION)
    retention = seed_rds(rds)
    rds.create_db_snapshot(DBInstanceIdentifier="orders", DBSnapshotIdentifier="manual-one")
    aws = make_connector(moto_session, streams=["rds_snapshots"])
    result = pipeline.run(aws.stream("rds_snapshots"), aws.config)
    assert result.status == "ok"
    records = bodies(store)
    instances = {b["data"]["instance"]: b for b in records if b["data"]["record"] == "instance_retention"}
    snapshots = [b for b in records if b["data"]["record"] == "automated_snapshot"]
    assert {name: b["data"]["backup_retention_days"] for name, b in instances.items()} == retention
    assert instances["scratch"]["exception_reason"] == "RDS instance has automated backups off (retention 0 days)"
    assert instances["orders"]["status"] == "ok"
    assert instances["orders"]["source_key"].startswith("arn:aws:rds:us-east-1:")
    assert sorted(b["data"]["instance"] for b in snapshots) == ["orders", "scratch"]
    assert all(b["data"]["snapshot_type"] == "automated" and b["controls"] == ["A1.2"] for b in snapshots)


def test_retention_is_new_evidence_at_every_read_and_snapshots_dedupe(moto_session: Any, make_connector: Any,
                                                                      pipeline: Any) -> None:
    """A second read stores each instance's retention again (a state) but no snapshot twice."""
    seed_rds(moto_session.client("rds", region_name=REGION))
    aws = make_connector(moto_session, streams=["rds_snapshots"])
    assert pipeline.run(aws.stream("rds_snapshots"), aws.config).records_new == 4
    assert pipeline.run(aws.stream("rds_snapshots"), aws.config).records_new == 2


def test_raw_hash_is_the_instance_element_as_received(moto_session: Any, make_connector: Any,
                                                      pipeline: Any, store: Store) -> None:
    """raw_sha256 of an instance record is the SHA-256 of its <DBInstance> element in the
    very response the stream received."""
    seed_rds(moto_session.client("rds", region_name=REGION))
    aws = make_connector(moto_session, streams=["rds_snapshots"])
    client = aws.session().client(Target(None), "rds", REGION, "rds_snapshots")
    seen: list[bytes] = []
    client.meta.events.register("before-parse.rds.DescribeDBInstances",
                                lambda response_dict, **_: seen.append(response_dict["body"]))
    pipeline.run(aws.stream("rds_snapshots"), aws.config)
    [body] = seen
    elements = {hashlib.sha256(e).hexdigest() for e in xml_elements(body, "DBInstance")}
    hashes = {b["raw_sha256"] for b in bodies(store) if b["data"]["record"] == "instance_retention"}
    assert len(hashes) == 2 and hashes == elements
