"""AWS fixtures: moto in process, moto as a loopback server, the fake Backup API, GET counting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
from moto import mock_aws
from moto.server import ThreadedMotoServer

from collector.catalog import Catalog, Filing
from collector.pipeline import Pipeline
from connectors.aws import AwsConfig, AwsConnector
from sandbox.aws_backup import FakeBackup
from storage import Store

REGION = "us-east-1"
BUCKET = "org-trail"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials for moto; nothing from the developer's ~/.aws is ever read."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def moto_session() -> Iterator[boto3.Session]:
    """A boto3 session whose requests moto answers in process."""
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@dataclass
class MotoServer:
    """A moto server on loopback, and a session whose S3 GetObject calls are counted."""

    url: str
    session: boto3.Session
    gets: list[str] = field(default_factory=list)

    def client(self, service: str) -> Any:
        """A client for ``service`` against the server."""
        return self.session.client(service, region_name=REGION, endpoint_url=self.url)


@pytest.fixture
def moto_server() -> Iterator[MotoServer]:
    """moto as a real HTTP server on 127.0.0.1 (a free port), reset before and after."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    http = urllib3.PoolManager()
    http.request("POST", f"{url}/moto-api/reset")
    session = boto3.Session(region_name=REGION)
    counted = MotoServer(url, session)
    session.events.register("before-send.s3.GetObject",
                            lambda request, **_: counted.gets.append(request.url))
    try:
        yield counted
    finally:
        http.request("POST", f"{url}/moto-api/reset")
        server.stop()


@pytest.fixture
def fake_backup() -> Iterator[FakeBackup]:
    """The sandbox's stand-in for the AWS Backup API on loopback."""
    with FakeBackup() as server:
        yield server


@pytest.fixture
def make_connector() -> Any:
    """A factory: an AWS connector over a session, with a sleep that returns at once."""

    def make(session: boto3.Session | None = None, **config: Any) -> AwsConnector:
        config.setdefault("cloudtrail_bucket", BUCKET)
        return AwsConnector(AwsConfig(**config), session=session, sleep=lambda _: None)

    return make


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite evidence store."""
    opened = Store.open(f"sqlite:///{tmp_path / 'evidence.db'}")
    yield opened
    opened.close()


@pytest.fixture
def pipeline(store: Store) -> Pipeline:
    """The real pipeline into the SQLite store, with the built-in filing."""
    return Pipeline(store, Filing(Catalog.builtin(), {}), batch_size=50)


def utcnow() -> datetime:
    """The current instant, tz-aware (for seeding)."""
    return datetime.now(UTC)
