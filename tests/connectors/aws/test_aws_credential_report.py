"""aws.iam_credential_report: moto users, Stubber-driven polling, root rows, accounts through STS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from botocore.stub import Stubber
from conftest import REGION, utcnow

from connectors.aws import AwsConfig, AwsConnector
from connectors.aws._access import Target
from connectors.sdk import Cursor, SourceItem
from connectors.sdk.errors import AuthError, RetriableError
from sandbox.aws_seed import seed_iam
from storage import Store

HEADER = ("user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
          "password_next_rotation,mfa_active,access_key_1_active,access_key_2_active")
GENERATED = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def report(*rows: str) -> dict[str, Any]:
    """A GetCredentialReport answer holding ``rows`` under the standard header."""
    return {"Content": ("\n".join((HEADER, *rows)) + "\n").encode(), "ReportFormat": "text/csv",
            "GeneratedTime": GENERATED}


class FakeClock:
    """Monotonic time that only moves when the poller sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def stubbed(session: Any, clock: FakeClock | None = None, **config: Any) -> tuple[AwsConnector, Any]:
    """A connector (credential report only) and the very IAM client its stream will use."""
    clock = clock or FakeClock()
    aws = AwsConnector(AwsConfig(streams=("iam_credential_report",), **config), session=session,
                       sleep=clock.sleep, clock=lambda: clock.now)
    return aws, aws.session().client(Target(None), "iam", REGION, "iam_credential_report")


def items(aws: AwsConnector) -> list[Any]:
    """Everything the stream yields for one run."""
    now = utcnow()
    return list(aws.stream("iam_credential_report").fetch(Cursor(None, now, now - timedelta(days=1))))


def test_users_with_and_without_mfa_against_moto(moto_session: Any, make_connector: Any, pipeline: Any,
                                                 store: Store) -> None:
    """A user with a console password and no MFA is an exception; one with MFA, or with no
    password, is not; records are observed at the report's generation time and dedupe."""
    expected = seed_iam(moto_session.client("iam", region_name=REGION))
    aws = make_connector(moto_session, streams=["iam_credential_report"])
    first = pipeline.run(aws.stream("iam_credential_report"), aws.config)
    assert first.status == "ok" and first.records_new == 3
    with store.engine.connect() as conn:
        bodies = [orjson.loads(b) for b in conn.execute(sa.text("SELECT body FROM evidence")).scalars()]
    by_user = {b["data"]["user"]: b for b in bodies}
    for user, reason in expected.items():
        assert by_user[user]["exception_reason"] == reason
        assert by_user[user]["kind"] == "mfa_status" and by_user[user]["controls"] == ["CC6.1"]
        assert by_user[user]["source_key"].endswith(f":user/{user}")
    assert by_user["alice"]["data"]["mfa_active"] is True
    # moto reports a fixed generation time: the same report read again is the same evidence.
    assert pipeline.run(aws.stream("iam_credential_report"), aws.config).records_new == 0


def test_root_row_is_keyed_by_the_root_arn_and_needs_mfa(moto_session: Any) -> None:
    """The `<root_account>` row is keyed arn:aws:iam::<account>:root and is an exception without
    MFA; a user with no password and no MFA is not an exception."""
    aws, iam = stubbed(moto_session)
    with Stubber(iam) as stub:
        stub.add_response("generate_credential_report", {"State": "COMPLETE"})
        stub.add_response("get_credential_report", report(
            "<root_account>,arn:aws:iam::333333333333:root,2020-01-01T00:00:00+00:00,not_supported,"
            "2026-11-01T00:00:00+00:00,not_supported,not_supported,false,false,false",
            "api-only,arn:aws:iam::333333333333:user/api-only,2021-01-01T00:00:00+00:00,false,N/A,N/A,"
            "N/A,false,true,false"))
        got = [o for o in items(aws) if isinstance(o, SourceItem)]
    stream = aws.stream("iam_credential_report")
    root, api = got
    assert root.key == "arn:aws:iam::333333333333:root" and root.observed_at == GENERATED
    assert stream.normalise(root).exception == "root account has no MFA"
    assert stream.normalise(api).exception is None
    assert root.raw.startswith(b"<root_account>,") and b"\n" not in root.raw


def test_root_with_mfa_is_not_an_exception(moto_session: Any) -> None:
    """A root row with mfa_active true is recorded as ok."""
    aws, iam = stubbed(moto_session)
    with Stubber(iam) as stub:
        stub.add_response("generate_credential_report", {"State": "COMPLETE"})
        stub.add_response("get_credential_report", report(
            "<root_account>,arn:aws:iam::333333333333:root,2020-01-01T00:00:00+00:00,not_supported,"
            "N/A,not_supported,not_supported,true,false,false"))
        [root] = items(aws)
    assert aws.stream("iam_credential_report").normalise(root).exception is None


@pytest.mark.parametrize(("mfa", "key_1", "key_2", "reason"), [
    ("true", "false", "false", None),
    ("true", "true", "false", "root account has an active access key"),
    ("true", "false", "true", "root account has an active access key"),
    ("false", "true", "false", "root account has no MFA; root account has an active access key"),
])
def test_an_active_root_access_key_is_an_exception(moto_session: Any, mfa: str, key_1: str, key_2: str,
                                                    reason: str | None) -> None:
    """Root with either access key active is an exception (with MFA or without: both are named);
    root with MFA and no active key is not."""
    aws, iam = stubbed(moto_session)
    with Stubber(iam) as stub:
        stub.add_response("generate_credential_report", {"State": "COMPLETE"})
        stub.add_response("get_credential_report", report(
            "<root_account>,arn:aws:iam::333333333333:root,2020-01-01T00:00:00+00:00,not_supported,"
            f"N/A,not_supported,not_supported,{mfa},{key_1},{key_2}"))
        [root] = items(aws)
    normalised = aws.stream("iam_credential_report").normalise(root)
    assert normalised.exception == reason
    assert normalised.data["access_key_1_active"] is (key_1 == "true")


def test_an_active_user_access_key_is_not_a_root_exception(moto_session: Any) -> None:
    """An IAM user's active access key (a service account) is not an exception by itself."""
    aws, iam = stubbed(moto_session)
    with Stubber(iam) as stub:
        stub.add_response("generate_credential_report", {"State": "COMPLETE"})
        stub.add_response("get_credential_report", report(
            "deploy,arn:aws:iam::333333333333:user/deploy,2021-01-01T00:00:00+00:00,false,N/A,N/A,"
            "N/A,false,true,true"))
        [user] = items(aws)
    assert aws.stream("iam_credential_report").normalise(user).exception is None


def test_polls_with_back_off_until_the_report_is_ready(moto_session: Any) -> None:
    """While AWS answers ReportInProgress the poller waits 1 s, 2 s, … and then reads the report."""
    clock = FakeClock()
    aws, iam = stubbed(moto_session, clock)
    with Stubber(iam) as stub:
        stub.add_response("generate_credential_report", {"State": "STARTED"})
        stub.add_client_error("get_credential_report", "ReportInProgress", "not ready", 410)
        stub.add_client_error("get_credential_report", "ReportInProgress", "not ready", 410)
        stub.add_response("get_credential_report", report(
            "bob,arn:aws:iam::333333333333:user/bob,2021-01-01T00:00:00+00:00,true,N/A,N/A,N/A,false,"
            "false,false"))
        [bob] = items(aws)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [1.0, 2.0]
    assert aws.stream("iam_credential_report").normalise(bob).exception == \
        "IAM user has a console password and no MFA"


def test_a_missing_or_expired_report_is_generated_again(moto_session: Any) -> None:
    """ReportNotPresent or ReportExpired from GetCredentialReport triggers a new GenerateCredentialReport."""
    aws, iam = stubbed(moto_session)
    with Stubber(iam) as stub:
        stub.add_response("generate_credential_report", {"State": "COMPLETE"})
        stub.add_client_error("get_credential_report", "ReportExpired", "expired", 410)
        stub.add_response("generate_credential_report", {"State": "STARTED"})
        stub.add_response("get_credential_report", report())
        assert items(aws) == []
        stub.assert_no_pending_responses()


def test_a_report_never_ready_gives_up_at_the_deadline(moto_session: Any) -> None:
    """Polling stops with a RetriableError once report_timeout would pass."""
    clock = FakeClock()
    aws, iam = stubbed(moto_session, clock, report_timeout=timedelta(seconds=10))
    with Stubber(iam) as stub:
        stub.add_response("generate_credential_report", {"State": "STARTED"})
        for _ in range(4):
            stub.add_client_error("get_credential_report", "ReportInProgress", "not ready", 410)
        with pytest.raises(RetriableError, match="not ready within 10s"):
            items(aws)
    assert clock.sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(("code", "error"), [("Throttling", RetriableError), ("AccessDenied", AuthError)])
def test_errors_are_typed(moto_session: Any, code: str, error: type[Exception]) -> None:
    """Throttling that outlasts botocore's retries is retriable; AccessDenied is an auth error."""
    aws, iam = stubbed(moto_session)
    with Stubber(iam) as stub:
        stub.add_client_error("generate_credential_report", code, "no", 400 if code == "Throttling" else 403)
        with pytest.raises(error, match=code):
            items(aws)


def test_each_role_is_assumed_with_a_named_session_and_a_denied_account_is_partial(
        moto_session: Any, pipeline: Any, store: Store) -> None:
    """Each member role is assumed with session name evidence-collector-<stream>; an account
    whose report is denied becomes a failed part, the other account's users are stored."""
    roles = ("arn:aws:iam::111111111111:role/EvidenceCollector",
             "arn:aws:iam::222222222222:role/EvidenceCollector")
    asked: list[dict[str, Any]] = []
    moto_session.events.register("provide-client-params.sts.AssumeRole",
                                 lambda params, **_: asked.append(dict(params)))
    aws = AwsConnector(AwsConfig(streams=("iam_credential_report",), assume_role_arns=roles),
                       session=moto_session, sleep=lambda _: None)
    denied = aws.session().client(Target(roles[0]), "iam", REGION, "iam_credential_report")
    allowed = aws.session().client(Target(roles[1]), "iam", REGION, "iam_credential_report")
    seed_iam(allowed)
    with Stubber(denied) as stub:
        stub.add_client_error("generate_credential_report", "AccessDenied", "not authorised", 403)
        result = pipeline.run(aws.stream("iam_credential_report"), aws.config)
    assert {a["RoleSessionName"] for a in asked} == {"evidence-collector-iam-credential-report"}
    assert [a["RoleArn"] for a in asked] == list(roles)
    assert result.status == "partial" and result.records_new == 3
    assert result.error is not None and result.error.startswith("aws:111111111111:us-east-1: AuthError")
    with store.engine.connect() as conn:
        keys = set(conn.execute(sa.text("SELECT source_key FROM evidence")).scalars())
    assert all(":222222222222:" in key for key in keys)


def test_every_account_denied_fails_the_run(moto_session: Any) -> None:
    """When no account can be read the stream raises the first error instead of reporting parts."""
    aws, iam = stubbed(moto_session)
    with Stubber(iam) as stub:
        stub.add_client_error("generate_credential_report", "AccessDenied", "no", 403)
        with pytest.raises(AuthError):
            items(aws)
