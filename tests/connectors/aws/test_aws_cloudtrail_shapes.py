"""aws.cloudtrail against the shapes real trails hold: MFAUsed spellings, records without eventID,
AWS services assuming roles, IAM Identity Center sign-ins, root credentials, AWS Config's recorder."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from conftest import BUCKET, REGION, utcnow

from collector.config import load_settings
from collector.errors import ConfigError
from connectors.aws.cloudtrail import SERVICE_ASSUMPTIONS, TrailEvent, event_key, parse_log_file
from connectors.sdk import Cursor, ItemFailure, Skipped, SourceItem
from sandbox.aws_seed import ACCOUNT, console_login, event, log_file, log_key, seed_trail_shapes
from storage import Store


def records(store: Store) -> dict[str, dict[str, Any]]:
    """Stored aws.cloudtrail records by source key."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT source_key, body FROM evidence WHERE stream = 'aws.cloudtrail'")).all()
    return {key: orjson.loads(body) for key, body in rows}


def _item(record: dict[str, Any]) -> SourceItem:
    raw = json.dumps(record, separators=(",", ":")).encode()
    trail = TrailEvent(record, BUCKET, "AWSLogs/111111111111/CloudTrail/us-east-1/x.json.gz", "0" * 64)
    return SourceItem(event_key(record, raw), utcnow(), raw, trail)


def test_seeded_shapes_are_stored_with_their_exceptions(moto_session: Any, make_connector: Any,
                                                        pipeline: Any, store: Store) -> None:
    """Every shape of the sandbox's real-shapes file is stored under its key with the expected
    exception or none, and the AWS services' AssumeRole calls are counted, not stored."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    shapes = seed_trail_shapes(s3, BUCKET, utcnow())
    aws = make_connector(moto_session)
    result = pipeline.run(aws.stream("cloudtrail"), aws.config)
    stored = records(store)
    assert {key: r["exception_reason"] for key, r in stored.items()} == shapes.expected
    assert result.status == "ok" and result.skipped == {SERVICE_ASSUMPTIONS: shapes.service_assumptions}


@pytest.mark.parametrize(("said", "mfa_used", "exception"), [
    ("YES", True, None), ("Yes", True, None), ("yes", True, None),
    ("No", False, "console login by root user without MFA"), ("NO", False, "console login by root user without MFA"),
])
def test_mfa_used_is_read_whatever_its_case(make_connector: Any, said: str, mfa_used: bool,
                                            exception: str | None) -> None:
    """MFAUsed "YES" (AWS's own documented root example) means MFA like "Yes"; "NO" is no MFA."""
    record = console_login(utcnow(), "e-root", identity_type="Root")
    record["additionalEventData"]["MFAUsed"] = said
    normalised = make_connector().stream("cloudtrail").normalise(_item(record))
    assert normalised.data["mfa_used"] is mfa_used and normalised.exception == exception


def test_records_without_event_id_are_keyed_by_their_bytes(moto_session: Any, make_connector: Any,
                                                           pipeline: Any, store: Store) -> None:
    """An eventVersion 1.0 record without eventID is stored under the SHA-256 of its exact bytes
    in the file, beside the keyed records of the same file; a second run stores nothing new."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    when = utcnow() - timedelta(days=1)
    legacy = event("AddUserToGroup", when, source="iam.amazonaws.com",
                   params={"userName": "bob", "groupName": "admin"})
    del legacy["eventID"], legacy["requestID"]
    legacy["eventVersion"] = "1.0"
    keyed = event("CreateGroup", when + timedelta(minutes=1), source="iam.amazonaws.com", event_id="e-keyed",
                  params={"groupName": "admin"})
    key = log_key(ACCOUNT, REGION, when + timedelta(minutes=5), unique="V1")
    body = log_file([legacy, keyed])
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    [(_, raw), _] = parse_log_file(body)
    aws = make_connector(moto_session)
    first = pipeline.run(aws.stream("cloudtrail"), aws.config)
    stored = records(store)
    digest = hashlib.sha256(raw).hexdigest()
    assert set(stored) == {digest, "e-keyed"} and first.status == "ok"
    assert raw in gzip.decompress(body) and stored[digest]["raw_sha256"] == digest
    assert stored[digest]["data"]["target"] == {"userName": "bob", "groupName": "admin"}
    assert stored[digest]["source_url"] == f"https://s3.console.aws.amazon.com/s3/object/{BUCKET}?prefix={key}"
    again = pipeline.run(aws.stream("cloudtrail"), aws.config)
    assert again.records_new == 0


def test_a_record_without_event_time_fails_alone_and_never_holds_its_prefix(
        moto_session: Any, make_connector: Any, pipeline: Any, store: Store) -> None:
    """A relevant record without a readable eventTime is one item failure naming file and index;
    the file's other records are stored, and the next run neither reads nor reports it again."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    when = utcnow() - timedelta(days=1)
    broken = event("DeleteUser", when, source="iam.amazonaws.com", event_id="e-no-time", params={"userName": "x"})
    broken["eventTime"] = "2014-02-31T00:00:00Z"
    good = event("CreateUser", when, source="iam.amazonaws.com", event_id="e-good", params={"userName": "y"})
    key = log_key(ACCOUNT, REGION, when + timedelta(minutes=5), unique="E1")
    s3.put_object(Bucket=BUCKET, Key=key, Body=log_file([broken, good]))
    aws = make_connector(moto_session)
    first = pipeline.run(aws.stream("cloudtrail"), aws.config)
    assert first.status == "partial" and first.error is not None and f"{key}#0" in first.error
    assert set(records(store)) == {"e-good"}
    second = pipeline.run(aws.stream("cloudtrail"), aws.config)
    assert second.status == "ok" and second.items == 0


def _service_assume() -> dict[str, Any]:
    return event("AssumeRole", utcnow() - timedelta(days=1), source="sts.amazonaws.com", event_id="e-svc",
                 identity={"type": "AWSService", "invokedBy": "ec2.amazonaws.com"},
                 params={"roleArn": f"arn:aws:iam::{ACCOUNT}:role/web", "roleSessionName": "i-0abc"})


def test_service_role_assumptions_are_counted_unless_asked_for(moto_session: Any, make_connector: Any) -> None:
    """By default an AWS service's AssumeRole is a Skipped count, not an item; with
    include_service_role_assumptions it is an item whose actor is the service (invokedBy)."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    person = event("AssumeRole", utcnow() - timedelta(days=1), source="sts.amazonaws.com", event_id="e-person",
                   params={"roleArn": f"arn:aws:iam::{ACCOUNT}:role/admin", "roleSessionName": "alice"})
    s3.put_object(Bucket=BUCKET, Key=log_key(ACCOUNT, REGION, utcnow() - timedelta(hours=20), unique="R1"),
                  Body=log_file([_service_assume(), person]))
    now = utcnow()
    cursor = Cursor(None, now, now - timedelta(days=90))
    default = list(make_connector(moto_session).stream("cloudtrail").fetch(cursor))
    assert [o.key for o in default if isinstance(o, SourceItem)] == ["e-person"]
    assert [o for o in default if isinstance(o, Skipped)] == [Skipped(SERVICE_ASSUMPTIONS, 1)]
    aws = make_connector(moto_session, include_service_role_assumptions=True)
    stream = aws.stream("cloudtrail")
    outputs = list(stream.fetch(cursor))
    assert not [o for o in outputs if isinstance(o, Skipped)]
    items = {o.key: stream.normalise(o) for o in outputs if isinstance(o, SourceItem)}
    assert items["e-svc"].actor == "ec2.amazonaws.com" and items["e-svc"].data["identity_type"] == "AWSService"
    assert items["e-person"].actor == f"arn:aws:iam::{ACCOUNT}:user/alice"


def test_identity_center_sign_ins_are_access_logs_named_by_the_user(make_connector: Any) -> None:
    """A UserAuthentication of an IdentityCenterUser (whose arn is empty) is an access_log whose
    actor is the user name it signed in with, with its outcome and credential type."""
    shapes = seed_shapes_by_id()
    stream = make_connector().stream("cloudtrail")
    ok, failed = stream.normalise(_item(shapes["e-idc-signin"])), stream.normalise(_item(shapes["e-idc-signin-failed"]))
    assert ok.kind == "access_log" and ok.actor == "pat@example.com" and ok.exception is None
    assert ok.data["outcome"] == "Success" and ok.data["credential_type"] == "EXTERNAL_IDP"
    assert failed.data["outcome"] == "Failure" and failed.exception is None


def seed_shapes_by_id() -> dict[str, dict[str, Any]]:
    """The sandbox's real-shape records by eventID."""
    from sandbox.aws_seed import trail_shapes

    return {r["eventID"]: r for r in trail_shapes(utcnow()).records if "eventID" in r}


@pytest.mark.parametrize(("event_id", "kind", "exception"), [
    ("e-root-key", "access_change", "access key created for the root user"),
    ("e-root-key-for-user", "access_change", None),
    ("e-root-password", "access_change", None),
    ("e-config-stop", "config_state", "AWS Config recorder stopped (default)"),
    ("e-config-delete-denied", "config_state", None),
    ("e-config-start", "config_state", None),
])
def test_root_credentials_and_config_recorder_rules(make_connector: Any, event_id: str, kind: str,
                                                    exception: str | None) -> None:
    """Root creating its own access key and a successful stop or delete of AWS Config's recorder
    are exceptions; a key root creates for an IAM user, a root password change, a refused delete
    and a start are stored without one."""
    record = seed_shapes_by_id()[event_id]
    normalised = make_connector().stream("cloudtrail").normalise(_item(record))
    assert normalised.kind == kind and normalised.exception == exception


def test_a_deleted_recorder_names_it(make_connector: Any) -> None:
    """DeleteConfigurationRecorder that succeeded is an exception naming the recorder."""
    record = event("DeleteConfigurationRecorder", utcnow(), source="config.amazonaws.com", event_id="e-del",
                   params={"configurationRecorderName": "main"})
    normalised = make_connector().stream("cloudtrail").normalise(_item(record))
    assert normalised.exception == "AWS Config recorder deleted (main)"


@pytest.mark.parametrize("value", ['"yes"', "1"])
def test_include_service_role_assumptions_must_be_a_boolean(tmp_path: Path, value: str) -> None:
    """A non-boolean include_service_role_assumptions is a ConfigError naming the key."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n[connectors.aws]\n'
                    f'cloudtrail_bucket = "trail"\ninclude_service_role_assumptions = {value}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "connectors.aws.include_service_role_assumptions"
    assert "true or false" in str(caught.value)


def test_unreadable_failure_is_yielded_after_the_checkpoint(moto_session: Any, make_connector: Any) -> None:
    """The stream's own order: the file's checkpoint (moving its prefix past it) comes before the
    failure of its broken record, so the pipeline's freeze never holds the file."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    broken = event("DeleteUser", utcnow() - timedelta(days=1), source="iam.amazonaws.com", event_id="e-bad",
                   params={"userName": "x"})
    del broken["eventTime"]
    key = log_key(ACCOUNT, REGION, utcnow() - timedelta(hours=20), unique="E2")
    s3.put_object(Bucket=BUCKET, Key=key, Body=log_file([broken]))
    now = utcnow()
    outputs = list(make_connector(moto_session).stream("cloudtrail").fetch(Cursor(None, now, now - timedelta(days=9))))
    assert [type(o).__name__ for o in outputs] == ["Checkpoint", "ItemFailure"]
    assert isinstance(outputs[1], ItemFailure) and outputs[1].key == f"{key}#0"
