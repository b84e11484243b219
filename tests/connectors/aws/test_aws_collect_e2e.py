"""End to end: a config file, moto and the fake Backup API on loopback, `collect` into SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from conftest import BUCKET, utcnow

from collector.collect import collect
from collector.config import load_settings
from sandbox.aws_backup import FakeBackup, demo_jobs
from sandbox.aws_seed import seed_all
from storage import Store


def test_collect_all_aws_streams_from_a_config_file(tmp_path: Path, moto_server: Any,
                                                    fake_backup: FakeBackup) -> None:
    """Every AWS stream collects through the real CLI path; the truncated trail file makes
    aws.cloudtrail partial with its key; a second collection stores no event twice."""
    seeded = seed_all(moto_server.session, bucket=BUCKET, endpoint_url=moto_server.url)
    for job in demo_jobs(utcnow()):
        fake_backup.add(job)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "evidence.db"}"\n'
        f'[connectors.aws]\nregions = ["us-east-1"]\nendpoint_url = "{moto_server.url}"\n'
        f'service_endpoints = ["backup={fake_backup.url}"]\ncloudtrail_bucket = "{BUCKET}"\n'
    )
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    try:
        first = {r.stream: r for r in collect(settings, store)}
        assert list(first) == ["aws.cloudtrail", "aws.iam_credential_report", "aws.backup_jobs",
                               "aws.rds_snapshots", "aws.iam_users"]
        trail = first["aws.cloudtrail"]
        assert trail.status == "partial" and seeded["cloudtrail"].truncated_key in (trail.error or "")
        assert trail.records_new == len(seeded["cloudtrail"].relevant)
        assert all(first[s].status == "ok" for s in list(first)[1:]), {s: r.error for s, r in first.items()}
        assert first["aws.iam_credential_report"].records_new == 3
        assert first["aws.backup_jobs"].records_new == 6
        assert first["aws.rds_snapshots"].records_new == 4
        exceptions = [orjson.loads(r.body)["exception_reason"] for r in store.iter_records()
                      if orjson.loads(r.body)["status"] == "exception"]
        assert len(exceptions) == 4 + 1 + 3 + 1
        second = {r.stream: r for r in collect(settings, store)}
        assert second["aws.cloudtrail"].records_new == 0 and second["aws.backup_jobs"].records_new == 0
        assert second["aws.rds_snapshots"].records_new == 2  # retention is read again, snapshots dedupe
        assert store.filing_counts()["A1.2"] == 6 + 4 + 2
    finally:
        store.close()
