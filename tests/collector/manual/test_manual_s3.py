"""Documents into S3 with Object Lock, as `[files] url = "s3://…"` and `object_lock_days` configure it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from manual_helpers import write_config
from moto import mock_aws

from collector.config import Settings, load_settings
from collector.errors import ConfigError
from collector.manual import DocumentFacts, add_document, open_files
from storage import Store

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@pytest.fixture
def s3() -> Iterator[Any]:
    """moto's S3 with one bucket created with Object Lock and one without."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="evidence-locked", ObjectLockEnabledForBucket=True)
        client.create_bucket(Bucket="evidence-plain")
        yield client


def _settings(tmp_path: Path, bucket: str, days: int) -> Settings:
    extra = f'\n[files]\nurl = "s3://{bucket}/docs"\nobject_lock_days = {days}\n'
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", "")
    config.write_text(config.read_text().replace('[files]\nurl = "files"\n', "") + extra)
    return load_settings(config)


def test_a_document_lands_in_s3_under_compliance_retention(tmp_path: Path, s3: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`evidence add` with an S3 [files] url stores the file as sha256/<hex> under the prefix, with a
    COMPLIANCE retention of object_lock_days, and a delete of that version is refused."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings = _settings(tmp_path, "evidence-locked", 30)
    store = Store.open(settings.storage_url)
    try:
        path = tmp_path / "restore.pdf"
        path.write_bytes(b"%PDF restore")
        added = add_document(settings, store, open_files(settings), path,
                             DocumentFacts("restore-test", ("AV-03",)), now=NOW)
    finally:
        store.close()
    key = f"docs/sha256/{added.sha256}"
    head = s3.head_object(Bucket="evidence-locked", Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(Exception, match="AccessDenied"):
        s3.delete_object(Bucket="evidence-locked", Key=key, VersionId=head["VersionId"])


def test_a_bucket_without_object_lock_is_a_config_error(tmp_path: Path, s3: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Retention asked of a bucket created without Object Lock stops at once, naming files.url."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings = _settings(tmp_path, "evidence-plain", 30)
    with pytest.raises(ConfigError) as error:
        open_files(settings)
    assert error.value.key == "files.url" and "has no Object Lock enabled" in error.value.problem


def test_retention_on_a_local_folder_is_refused_at_load(tmp_path: Path) -> None:
    """object_lock_days with a folder url is a ConfigError: a folder cannot enforce retention."""
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", "")
    config.write_text(config.read_text().replace('url = "files"', 'url = "files"\nobject_lock_days = 7'))
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert error.value.key == "files.object_lock_days"
