"""The demo's sandbox world holds the shapes real vendors send, so `collector demo` exercises every rule."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest

from sandbox.world import BUCKET, DEMO_ENV, REGION, SandboxWorld, WorldEndpoints, running_world


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[SandboxWorld, WorldEndpoints]]:
    with running_world(datetime.now(UTC)) as started:
        yield started


def _client(service: str, url: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=url,
                        aws_access_key_id=DEMO_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=DEMO_ENV["AWS_SECRET_ACCESS_KEY"])


def test_trail_holds_one_file_of_real_shapes(world: tuple[SandboxWorld, WorldEndpoints]) -> None:
    """One delivered log file holds a record without eventID, AWS services assuming roles, an
    Identity Center sign-in, root credential changes and AWS Config's recorder stopped."""
    _, ep = world
    s3 = _client("s3", ep.aws)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", []) if o["Key"].endswith("_shapes.json.gz")]
    [key] = keys
    records = json.loads(gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))["Records"]
    names = {r["eventName"] for r in records}
    assert {"UserAuthentication", "PasswordUpdated", "StopConfigurationRecorder", "CreateAccessKey"} <= names
    assert any("eventID" not in r for r in records)
    assert any(r["userIdentity"].get("type") == "AWSService" for r in records)


def test_credential_report_rds_and_backup_hold_the_new_shapes(world: tuple[SandboxWorld, WorldEndpoints]) -> None:
    """The credential report starts with the root row (its access key active); RDS has a read
    replica with retention 0 and an Aurora cluster; AWS Backup has a PARTIAL job."""
    _, ep = world
    iam = _client("iam", ep.aws)
    iam.generate_credential_report()
    report = iam.get_credential_report()["Content"].decode().splitlines()
    header, root = report[0].split(","), dict(zip(report[0].split(","), report[1].split(","), strict=True))
    assert root["user"] == "<root_account>" and root["access_key_1_active"] == "true" and "arn" in header
    rds = _client("rds", ep.aws)
    replica = [i for i in rds.describe_db_instances()["DBInstances"] if i.get("ReadReplicaSourceDBInstanceIdentifier")]
    assert [(i["DBInstanceIdentifier"], i["BackupRetentionPeriod"]) for i in replica] == [("orders-replica", 0)]
    assert [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]] == ["ledger"]
    jobs = _client("backup", ep.backup).list_backup_jobs()["BackupJobs"]
    assert [j["State"] for j in jobs].count("PARTIAL") == 1


def test_okta_users_include_lapsed_and_question_only_accounts(world: tuple[SandboxWorld, WorldEndpoints]) -> None:
    """The Okta org has users in PASSWORD_EXPIRED, RECOVERY and LOCKED_OUT, and one whose only factor
    is a security question."""
    _, ep = world
    headers = {"Authorization": f"SSWS {DEMO_ENV['OKTA_API_TOKEN']}"}
    users = httpx.get(f"{ep.okta}/api/v1/users", headers=headers).json()
    assert {"PASSWORD_EXPIRED", "RECOVERY", "LOCKED_OUT"} <= {u["status"] for u in users}
    only_questions = [u for u in users if (factors := httpx.get(
        f"{ep.okta}/api/v1/users/{u['id']}/factors", headers=headers).json())
        and {f["factorType"] for f in factors} == {"question"}]
    assert len(only_questions) == 2
