"""aws.cloudtrail against moto: layouts, exception rules, raw hashes, cursor per prefix, zero re-reads."""

from __future__ import annotations

import gzip
import hashlib
from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from botocore.stub import Stubber
from conftest import BUCKET, REGION, utcnow

from connectors.aws.cloudtrail import parse_log_file
from connectors.sdk import Cursor, ItemFailure, SourceItem
from connectors.sdk.errors import AuthError
from sandbox.aws_seed import ACCOUNT, MEMBER_ACCOUNT, ORG_ID, event, log_file, log_key, seed_cloudtrail
from storage import Store


def records(store: Store, stream: str = "aws.cloudtrail") -> dict[str, dict[str, Any]]:
    """Stored records of ``stream`` by source key (the latest body wins)."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT source_key, body FROM evidence WHERE stream = :s "
                                    "ORDER BY observed_at"), {"s": stream}).all()
    return {key: orjson.loads(body) for key, body in rows}


def test_every_exception_rule_fails_and_passes_as_seeded(moto_session: Any, make_connector: Any,
                                                          pipeline: Any, store: Store) -> None:
    """Console logins by IAM users or root without MFA and successful StopLogging/DeleteTrail are
    exceptions; logins with MFA, failed or federated logins and denied StopLogging are not."""
    seed = seed_cloudtrail(moto_session.client("s3", region_name=REGION), BUCKET, utcnow())
    aws = make_connector(moto_session)
    result = pipeline.run(aws.stream("cloudtrail"), aws.config)
    stored = records(store)
    assert set(stored) == set(seed.relevant)
    for event_id, reason in seed.relevant.items():
        assert stored[event_id]["exception_reason"] == reason, event_id
        assert stored[event_id]["status"] == ("exception" if reason else "ok")
    assert result.status == "partial" and result.failures == 1


def test_kinds_actor_mfa_and_console_link(moto_session: Any, make_connector: Any, pipeline: Any,
                                          store: Store) -> None:
    """Logins and role assumptions are access_log, IAM changes access_change, trail changes
    config_state; each carries actor, source IP, MFA, outcome and a console link to the event."""
    seed_cloudtrail(moto_session.client("s3", region_name=REGION), BUCKET, utcnow())
    aws = make_connector(moto_session)
    pipeline.run(aws.stream("cloudtrail"), aws.config)
    stored = records(store)
    login = stored["e-login-nomfa"]
    assert login["kind"] == "access_log"
    assert login["actor"] == f"arn:aws:iam::{ACCOUNT}:user/bob"
    assert login["data"]["mfa_used"] is False and login["data"]["outcome"] == "Success"
    assert login["data"]["source_ip"] == "203.0.113.10"
    assert login["source_url"] == "https://console.aws.amazon.com/cloudtrail/home?region=us-east-1#/events/e-login-nomfa"
    assert stored["e-login-failed-nomfa"]["data"]["outcome"] == "Failure"
    assert stored["e-assume"]["kind"] == "access_log" and stored["e-assume"]["data"]["mfa_used"] is True
    assert stored["e-assume"]["data"]["target"]["roleArn"] == f"arn:aws:iam::{MEMBER_ACCOUNT}:role/Deploy"
    assert stored["e-saml"]["actor"] == "dave@example.com"
    assert stored["e-attach"]["kind"] == "access_change"
    assert stored["e-attach"]["data"]["target"]["userName"] == "carol"
    assert stored["e-mfa-enable"]["kind"] == "access_change"
    assert stored["e-stop"]["kind"] == "config_state"
    assert set(stored["e-login-mfa"]["controls"]) == {"CC6.1", "CC7.2"}


def test_raw_hash_is_the_event_bytes_inside_the_named_object(moto_session: Any, make_connector: Any,
                                                             pipeline: Any, store: Store) -> None:
    """raw_sha256 hashes the event's exact bytes in the gunzipped object whose key and SHA-256
    the record names, so an auditor can re-derive it from S3."""
    s3 = moto_session.client("s3", region_name=REGION)
    seed_cloudtrail(s3, BUCKET, utcnow())
    aws = make_connector(moto_session)
    pipeline.run(aws.stream("cloudtrail"), aws.config)
    record = records(store)["e-root-nomfa"]
    source = record["data"]["source_object"]
    body = s3.get_object(Bucket=source["bucket"], Key=source["key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == source["sha256"]
    text = gzip.decompress(body)
    [raw] = [raw for obj, raw in parse_log_file(body) if obj["eventID"] == "e-root-nomfa"]
    assert text.count(raw) == 1 and raw.startswith(b"{") and raw.endswith(b"}")
    assert hashlib.sha256(raw).hexdigest() == record["raw_sha256"]


def test_digest_files_and_irrelevant_events_are_skipped(moto_session: Any, make_connector: Any) -> None:
    """Digest files are never read and events outside the evidence set are not yielded."""
    s3 = moto_session.client("s3", region_name=REGION)
    seed = seed_cloudtrail(s3, BUCKET, utcnow())
    aws = make_connector(moto_session)
    gets: list[str] = []
    client = aws.session().client(aws.session().targets()[0], "s3", REGION, "cloudtrail")
    client.meta.events.register("before-send.s3.GetObject", lambda request, **_: gets.append(request.url))
    now = utcnow()
    keys = [o.key for o in aws.stream("cloudtrail").fetch(Cursor(None, now, now - timedelta(days=90)))
            if isinstance(o, SourceItem)]
    assert not any("CloudTrail-Digest" in url for url in gets)
    assert len(gets) == 4
    assert not set(keys) & set(seed.irrelevant)


def test_truncated_file_is_a_failed_item_and_holds_only_its_prefix(moto_session: Any, make_connector: Any,
                                                                   pipeline: Any, store: Store) -> None:
    """A truncated log file is an ItemFailure naming its key; its prefix's cursor never passes
    it, other prefixes advance, and once the file is readable the next run reads it."""
    s3 = moto_session.client("s3", region_name=REGION)
    seed = seed_cloudtrail(s3, BUCKET, utcnow())
    aws = make_connector(moto_session)
    first = pipeline.run(aws.stream("cloudtrail"), aws.config)
    assert first.status == "partial" and first.error is not None
    assert seed.truncated_key in first.error
    cursor = orjson.loads(store.read_cursor("aws.cloudtrail") or "{}")
    bad_prefix = seed.truncated_key.rsplit("/", 4)[0] + "/"
    assert bad_prefix not in cursor
    assert cursor[f"AWSLogs/{ORG_ID}/{MEMBER_ACCOUNT}/CloudTrail/eu-west-1/"].endswith("_B1.json.gz")
    assert cursor[f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/"].endswith("_A2.json.gz")
    # The same file, delivered whole (e.g. restored from a replica), is read at the next run.
    whole = log_file([event("CreateAccessKey", utcnow() - timedelta(days=2), source="iam.amazonaws.com",
                            event_id="e-in-truncated", params={"userName": "carol"})])
    s3.put_object(Bucket=BUCKET, Key=seed.truncated_key, Body=whole)
    second = pipeline.run(aws.stream("cloudtrail"), aws.config)
    assert second.status == "ok" and second.records_new == 1
    assert orjson.loads(store.read_cursor("aws.cloudtrail") or "{}")[bad_prefix] == seed.truncated_key


def test_failed_item_does_not_advance_its_prefix_even_without_the_pipeline(moto_session: Any,
                                                                          make_connector: Any) -> None:
    """The stream's own cursor values never move a prefix past a file that failed, whatever
    follows it in that prefix."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    when = utcnow() - timedelta(days=1)
    keys = [log_key(ACCOUNT, "us-east-1", when + timedelta(minutes=n), unique=f"K{n}") for n in range(3)]
    good = log_file([event("CreateUser", when, source="iam.amazonaws.com", event_id="e-x",
                           params={"userName": "x"})])
    s3.put_object(Bucket=BUCKET, Key=keys[0], Body=good)
    s3.put_object(Bucket=BUCKET, Key=keys[1], Body=b"\x1f\x8bnot really gzip")
    s3.put_object(Bucket=BUCKET, Key=keys[2], Body=good)
    aws = make_connector(moto_session)
    now = utcnow()
    outputs = list(aws.stream("cloudtrail").fetch(Cursor(None, now, now - timedelta(days=90))))
    values = [o.cursor for o in outputs if not isinstance(o, SourceItem | ItemFailure)]
    assert all(v[f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/"] == keys[0] for v in values)
    assert [o.key for o in outputs if isinstance(o, ItemFailure)] == [keys[1]]
    assert isinstance(outputs[-1], ItemFailure)


def test_rerun_with_nothing_new_reads_zero_objects(moto_server: Any, make_connector: Any,
                                                   pipeline: Any) -> None:
    """Against a moto server on loopback: a second run lists nothing new, GETs zero objects and
    stores zero records; a newly delivered file is the only object read by the run after."""
    s3 = moto_server.client("s3")
    seed = seed_cloudtrail(s3, BUCKET, utcnow())
    s3.delete_object(Bucket=BUCKET, Key=seed.truncated_key)
    aws = make_connector(moto_server.session, endpoint_url=moto_server.url)
    first = pipeline.run(aws.stream("cloudtrail"), aws.config)
    assert first.status == "ok" and first.records_new == len(seed.relevant)
    assert len(moto_server.gets) == 3
    moto_server.gets.clear()
    second = pipeline.run(aws.stream("cloudtrail"), aws.config)
    assert second.status == "ok" and second.items == 0 and second.records_new == 0
    assert moto_server.gets == []
    key = log_key(ACCOUNT, "us-east-1", utcnow() - timedelta(minutes=5), unique="N1")
    s3.put_object(Bucket=BUCKET, Key=key, Body=log_file([
        event("DeleteUser", utcnow() - timedelta(minutes=6), source="iam.amazonaws.com",
              event_id="e-new", params={"userName": "carol"})]))
    third = pipeline.run(aws.stream("cloudtrail"), aws.config)
    assert third.records_new == 1
    assert len(moto_server.gets) == 1 and moto_server.gets[0].endswith(key.rsplit("/", 1)[1])


def test_files_delivered_after_the_run_began_wait_for_the_next_run(moto_session: Any,
                                                                  make_connector: Any) -> None:
    """A file whose delivery minute has not ended before the ceiling is neither read nor passed."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    now = utcnow()
    key = log_key(ACCOUNT, "us-east-1", now, unique="LATE")
    s3.put_object(Bucket=BUCKET, Key=key, Body=log_file([
        event("CreateUser", now, source="iam.amazonaws.com", event_id="e-late", params={"userName": "z"})]))
    aws = make_connector(moto_session)
    assert list(aws.stream("cloudtrail").fetch(Cursor(None, now, now - timedelta(days=1)))) == []


def test_bucket_prefix_and_backfill_floor(moto_session: Any, make_connector: Any) -> None:
    """The trail's key prefix is honoured and a first run reads nothing before the backfill floor."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    now = utcnow()
    old, recent = now - timedelta(days=100), now - timedelta(days=3)
    for when, event_id in ((old, "e-old"), (recent, "e-recent")):
        s3.put_object(Bucket=BUCKET, Key=log_key(ACCOUNT, "eu-central-1", when, prefix="trails/prod"),
                      Body=log_file([event("CreateGroup", when, source="iam.amazonaws.com",
                                           event_id=event_id, params={"groupName": "g"})]))
    aws = make_connector(moto_session, cloudtrail_prefix="trails/prod")
    keys = [o.key for o in aws.stream("cloudtrail").fetch(Cursor(None, now, now - timedelta(days=90)))
            if isinstance(o, SourceItem)]
    assert keys == ["e-recent"]


def test_access_denied_on_the_bucket_fails_the_run_with_an_auth_error(moto_session: Any,
                                                                      make_connector: Any) -> None:
    """When the trail bucket cannot be listed at all, the stream raises AuthError (run failed)."""
    aws = make_connector(moto_session)
    client = aws.session().client(aws.session().targets()[0], "s3", REGION, "cloudtrail")
    now = utcnow()
    with Stubber(client) as stub:
        stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
        with pytest.raises(AuthError, match="AccessDenied"):
            list(aws.stream("cloudtrail").fetch(Cursor(None, now, now - timedelta(days=1))))


def test_access_denied_on_one_prefix_is_partial_and_the_rest_continue(moto_session: Any,
                                                                      make_connector: Any) -> None:
    """An AccessDenied listing one account's prefix is an ItemFailure for that prefix; the other
    accounts' files are still read."""
    s3 = moto_session.client("s3", region_name=REGION)
    seed_cloudtrail(s3, BUCKET, utcnow())
    aws = make_connector(moto_session)
    client = aws.session().client(aws.session().targets()[0], "s3", REGION, "cloudtrail")

    def deny_member(params: Any, **_: Any) -> None:
        if str(params.get("Prefix", "")).startswith(f"AWSLogs/{ORG_ID}/{MEMBER_ACCOUNT}/CloudTrail/eu-west-1/") \
                and "StartAfter" in params:
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"},
                               "ResponseMetadata": {"HTTPStatusCode": 403}}, "ListObjectsV2")

    client.meta.events.register("provide-client-params.s3.ListObjectsV2", deny_member)
    now = utcnow()
    outputs = list(aws.stream("cloudtrail").fetch(Cursor(None, now, now - timedelta(days=90))))
    failures = [o for o in outputs if isinstance(o, ItemFailure)]
    assert {f.key for f in failures if f.error_class == "AuthError"} == {
        f"AWSLogs/{ORG_ID}/{MEMBER_ACCOUNT}/CloudTrail/eu-west-1/"}
    assert "e-login-nomfa" in {o.key for o in outputs if isinstance(o, SourceItem)}
