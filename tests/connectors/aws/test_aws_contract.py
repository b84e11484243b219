"""The AWS connector passes the SDK contract; its config is validated before any source is contacted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import BUCKET, REGION, utcnow

from collector.config import load_settings
from collector.errors import ConfigError
from connectors.aws import AwsConfig, AwsConnector
from connectors.sdk.contract import check_declared, check_errors_typed, check_run
from connectors.sdk.errors import AuthError
from connectors.sdk.items import json_leq
from connectors.sdk.registry import discover
from sandbox.aws_backup import FakeBackup, demo_jobs
from sandbox.aws_seed import seed_all


def test_declared_streams_match_the_design() -> None:
    """The connector is registered as `aws` and declares the five DESIGN stream IDs offline."""
    check_declared(AwsConnector)
    assert discover().connectors["aws"] is AwsConnector
    assert AwsConnector.stream_ids() == ("aws.cloudtrail", "aws.iam_credential_report", "aws.backup_jobs",
                                         "aws.rds_snapshots", "aws.iam_users")


@pytest.mark.parametrize("stream", AwsConnector.stream_names())
def test_every_stream_passes_check_run(stream: str, moto_session: Any, fake_backup: FakeBackup) -> None:
    """Each stream yields keyed, timestamped items with raw bytes, monotone cursors, declared kinds."""
    seed_all(moto_session)
    for job in demo_jobs(utcnow()):
        fake_backup.add(job)
    aws = AwsConnector(AwsConfig(cloudtrail_bucket=BUCKET, service_endpoints=(f"backup={fake_backup.url}",)),
                       session=moto_session, sleep=lambda _: None)
    last = check_run(aws, stream)
    if stream in ("cloudtrail", "backup_jobs"):
        assert isinstance(last, dict) and last
        again = check_run(aws, stream, cursor_value=last)
        # CloudTrail's cursor stays where it was with nothing new; Backup's moves to the new ceiling.
        assert again == last if stream == "cloudtrail" else json_leq(last, again)


@pytest.mark.parametrize("stream", AwsConnector.stream_names())
def test_every_stream_raises_a_typed_error_without_credentials(stream: str, monkeypatch: pytest.MonkeyPatch,
                                                               fake_backup: FakeBackup) -> None:
    """With no credentials in the standard chain each stream raises AuthError, not a botocore error."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    def broken() -> AwsConnector:
        return AwsConnector(AwsConfig(cloudtrail_bucket=BUCKET, endpoint_url=fake_backup.url),
                            session=boto3.Session(region_name=REGION))

    error = check_errors_typed(broken, stream)
    assert isinstance(error, AuthError) and "credentials" in str(error)
    assert fake_backup.requests == ()


def write(tmp_path: Path, body: str) -> Path:
    """A config file with an [connectors.aws] section."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n[connectors.aws]\n{body}\n')
    return path


@pytest.mark.parametrize(("body", "key", "problem"), [
    ("", "connectors.aws.cloudtrail_bucket", "required while aws.cloudtrail runs"),
    ('cloudtrail_bucket = "t"\nregions = ["mars-1"]', "connectors.aws.regions[0]", "not an AWS region"),
    ('cloudtrail_bucket = "trail"\nassume_role_arns = ["arn:aws:iam::1:user/x"]',
     "connectors.aws.assume_role_arns[0]", "not an IAM role ARN"),
    ('cloudtrail_bucket = "trail"\nendpoint_url = "localhost:5000"', "connectors.aws.endpoint_url", "http"),
    ('cloudtrail_bucket = "trail"\nservice_endpoints = ["ec2=http://x"]', "connectors.aws.service_endpoints[0]",
     "<service>=<http(s) URL>"),
    ('cloudtrail_bucket = "trail"\nbackup_lookback = 2', "connectors.aws.backup_lookback", "duration"),
    ('cloudtrail_bucket = "trail"\nsecret_access_key = "x"', "connectors.aws.secret_access_key", "unknown key"),
])
def test_bad_config_is_one_error_naming_the_key(tmp_path: Path, body: str, key: str, problem: str) -> None:
    """A missing, malformed or unknown AWS key is a ConfigError naming the file and the key."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, body))
    assert caught.value.key == key and problem in str(caught.value)


def test_cloudtrail_bucket_is_optional_when_cloudtrail_does_not_run(tmp_path: Path) -> None:
    """Without aws.cloudtrail in `streams`, no bucket is needed; defaults match DESIGN."""
    settings = load_settings(write(tmp_path, 'streams = ["backup_jobs", "rds_snapshots"]'))
    cfg = settings.connectors["aws"]
    assert isinstance(cfg, AwsConfig)
    assert cfg.regions == ("us-east-1",) and cfg.assume_role_arns == () and cfg.endpoint_url == ""
    assert cfg.backup_lookback.days == 2 and cfg.interval.total_seconds() == 3600
