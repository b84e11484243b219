"""The daemon's HTTP request and retry counters hear every connector, whatever client its vendor SDK uses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from connectors.aws._access import AwsAccess, Target
from connectors.aws.config import AwsConfig
from connectors.github import GithubConfig, GithubConnector
from connectors.jira import JiraConfig, JiraConnector
from connectors.sdk.base import HttpOptions
from connectors.sdk.http import HttpClient
from connectors.sdk.items import Cursor, SourceItem
from sandbox._http import FakeServer, Response, Status
from sandbox.github import FakeGithub
from sandbox.github_seed import seed_org
from sandbox.jira import DEFAULT_EMAIL, DEFAULT_TOKEN, FakeJira
from schedules.metrics import Metrics

FAST = HttpOptions(max_attempts=6, deadline=30.0, backoff=0.01, max_backoff=0.05, timeout=5.0)
NOW = datetime.now(UTC)


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    """Daemon metrics listening to every HTTP client in the process for the test's duration."""
    m = Metrics()
    m.attach()
    yield m
    m.detach()


def _count(metrics: Metrics, family: str, connector: str) -> float:
    for metric in metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == family and sample.labels.get("connector") == connector:
                return float(sample.value)
    return 0.0


def _drain(stream: object) -> int:
    cursor = Cursor(value=None, ceiling=NOW, floor=NOW - timedelta(days=90))
    return sum(isinstance(o, SourceItem) for o in stream.fetch(cursor))  # type: ignore[attr-defined]


def test_httpclient_requests_and_retries_are_counted(metrics: Metrics) -> None:
    """Every HttpClient attempt is a request and every retry a retry, per connector."""
    fake = FakeServer()
    fake.route("GET", r"^/ping$", lambda r: Response(body={"ok": True}))
    with fake:
        fake.faults.push(Status(503), times=2)
        with HttpClient("okta", fake.url, options=FAST) as client:
            client.get_json("/ping")
    assert _count(metrics, "collector_http_requests_total", "okta") == 3
    assert _count(metrics, "collector_http_retries_total", "okta") == 2


def test_jira_requests_and_retries_are_counted(metrics: Metrics) -> None:
    """Every attempt the Jira adapter sends is counted, and the retries of faulted requests."""
    with FakeJira.seeded(now=NOW) as fake:
        fake.faults.push(Status(503), times=2)
        connector = JiraConnector(
            JiraConfig(url=fake.url, email_env="E", token_env="T", change_jql="project = CHG"),
            env={"E": DEFAULT_EMAIL, "T": DEFAULT_TOKEN}, http=FAST,
        )
        try:
            assert _drain(connector.stream("change_tickets")) > 0
        finally:
            connector.close()
        sent = len(fake.requests)
    assert _count(metrics, "collector_http_requests_total", "jira") == sent
    assert _count(metrics, "collector_http_retries_total", "jira") == 2


def test_github_retries_are_counted(metrics: Metrics) -> None:
    """A GitHub request retried by PyGithub's urllib3 retry counts one retry per fault."""
    seeded = seed_org(seed=11, now=NOW - timedelta(hours=1), days=10, every_hours=72)
    with FakeGithub(seeded.org, token="ghp_t") as fake:
        fake.faults.push(Status(502), times=2)
        connector = GithubConnector(
            GithubConfig(org="acme", base_url=fake.url, request_spacing_ms=0),
            env={"GITHUB_TOKEN": "ghp_t"}, http=FAST,
        )
        try:
            _drain(connector.stream("org_settings"))
        finally:
            connector.close()
    assert _count(metrics, "collector_http_retries_total", "github") == 2


_IDENTITY = (
    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/ci</Arn><UserId>AIDACI</UserId>"
    "<Account>123456789012</Account></GetCallerIdentityResult>"
    "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
)


_UNAVAILABLE = (
    "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
    "<Message>try again</Message></Error><RequestId>r-0</RequestId></ErrorResponse>"
)


def test_aws_requests_and_retries_are_counted(metrics: Metrics) -> None:
    """Every botocore attempt is a request; attempts after the first are retries."""
    answers = [Response(status=503, body=_UNAVAILABLE.encode(), headers=[("Content-Type", "text/xml")])]
    fake = FakeServer()
    fake.route("POST", r"^/$", lambda r: answers.pop() if answers else Response(
        body=_IDENTITY.encode(), headers=[("Content-Type", "text/xml")]))
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name="us-east-1")
    with fake:
        access = AwsAccess(AwsConfig(endpoint_url=fake.url), session=session)
        try:
            sts = access.client(Target(None), "sts", "us-east-1")
            assert sts.get_caller_identity()["Account"] == "123456789012"
        finally:
            access.close()
    assert _count(metrics, "collector_http_requests_total", "aws") == 2
    assert _count(metrics, "collector_http_retries_total", "aws") == 1
