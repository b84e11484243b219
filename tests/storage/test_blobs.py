"""The blob store: content-addressed, write-once, bounded memory; a local folder and S3 with Object Lock."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from storage.blobs import (
    CHUNK_SIZE,
    BlobError,
    BlobInfo,
    BlobNotFound,
    LocalBlobStore,
    S3BlobStore,
    open_blob_store,
)

REPO = Path(__file__).resolve().parents[2]
LOCKED = "evidence-locked"
PLAIN = "evidence-plain"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _CountingStream(io.RawIOBase):
    """A readable stream of `size` pseudo-random bytes that records the largest read asked of it."""

    def __init__(self, size: int) -> None:
        self.data = os.urandom(size)
        self.pos = 0
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.largest_read = max(self.largest_read, n if n >= 0 else len(self.data))
        chunk = self.data[self.pos : self.pos + n] if n >= 0 else self.data[self.pos :]
        self.pos += len(chunk)
        return chunk


# ---------------------------------------------------------------- local folder


def test_local_put_then_open_returns_the_bytes(tmp_path: Path) -> None:
    """A put creates the folder, returns the content's SHA-256 and size, and open gives the bytes back."""
    store = open_blob_store(str(tmp_path / "data" / "blobs"))
    data = b"Information security policy v3\n" * 1000
    info = store.put(io.BytesIO(data))
    assert info == BlobInfo(_sha(data), len(data))
    assert (tmp_path / "data" / "blobs" / "sha256" / info.sha256).read_bytes() == data
    assert store.exists(info.sha256)
    with store.open(info.sha256) as blob:
        assert blob.read() == data


def test_local_put_reads_in_bounded_chunks(tmp_path: Path) -> None:
    """A put never asks the input for more than one chunk at a time, however large the input."""
    store = open_blob_store(str(tmp_path))
    stream = _CountingStream(5 * CHUNK_SIZE + 3)
    info = store.put(stream)  # type: ignore[arg-type]
    assert info == BlobInfo(_sha(stream.data), len(stream.data))
    assert 0 < stream.largest_read <= CHUNK_SIZE


def test_local_put_is_idempotent(tmp_path: Path) -> None:
    """Putting the same bytes again leaves the stored file untouched and no temp file behind."""
    store = open_blob_store(str(tmp_path))
    first = store.put(io.BytesIO(b"restore test report"))
    path = tmp_path / "sha256" / first.sha256
    before = path.stat()
    second = store.put(io.BytesIO(b"restore test report"))
    after = path.stat()
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in (tmp_path / "sha256").iterdir()) == [first.sha256]


def test_local_empty_stream_is_a_blob(tmp_path: Path) -> None:
    """An empty input is stored as the empty blob with its well-known SHA-256."""
    store = open_blob_store(str(tmp_path))
    info = store.put(io.BytesIO(b""))
    assert info == BlobInfo("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0)
    with store.open(info.sha256) as blob:
        assert blob.read() == b""


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_local_permissions_ignore_the_umask(tmp_path: Path, umask: int) -> None:
    """Blobs are 0644 and the store's folders 0755, whatever the process umask."""
    old = os.umask(umask)
    try:
        store = open_blob_store(str(tmp_path / "blobs"))
        info = store.put(io.BytesIO(b"vendor review"))
    finally:
        os.umask(old)
    assert (tmp_path / "blobs").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "blobs" / "sha256").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "blobs" / "sha256" / info.sha256).stat().st_mode & 0o777 == 0o644


def test_local_file_url_names_the_same_folder(tmp_path: Path) -> None:
    """A file:// URL and the plain path open the same store."""
    info = open_blob_store(f"file://{tmp_path}").put(io.BytesIO(b"board minutes"))
    assert open_blob_store(str(tmp_path)).exists(info.sha256)


def test_local_concurrent_puts_store_one_blob(tmp_path: Path) -> None:
    """Eight writers putting the same bytes at once all succeed and leave exactly one blob."""
    store = open_blob_store(str(tmp_path))
    data = os.urandom(3 * CHUNK_SIZE)
    results: list[BlobInfo] = []
    threads = [threading.Thread(target=lambda: results.append(store.put(io.BytesIO(data)))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [BlobInfo(_sha(data), len(data))] * 8
    assert [p.name for p in (tmp_path / "sha256").iterdir()] == [_sha(data)]


def test_local_kill_9_mid_write_leaves_no_blob(tmp_path: Path) -> None:
    """A writer killed mid-put leaves no blob, only a temp file that is never read and is swept."""
    script = (
        "import sys; from storage.blobs import open_blob_store; "
        f"open_blob_store({str(tmp_path)!r}).put(sys.stdin.buffer)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, cwd=REPO)
    assert proc.stdin is not None
    data = os.urandom(3 * CHUNK_SIZE)
    proc.stdin.write(data)
    proc.stdin.flush()
    deadline = time.monotonic() + 20
    temps: list[Path] = []
    while time.monotonic() < deadline:
        temps = list((tmp_path / "sha256").glob(".tmp-*")) if (tmp_path / "sha256").is_dir() else []
        if temps and temps[0].stat().st_size >= 2 * CHUNK_SIZE:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    assert len(temps) == 1 and temps[0].exists()
    store = LocalBlobStore(tmp_path)
    assert not store.exists(_sha(data))
    assert store.put(io.BytesIO(data)) == BlobInfo(_sha(data), len(data))
    assert store.sweep(older_than=0) == 1
    assert [p.name for p in (tmp_path / "sha256").iterdir()] == [_sha(data)]


def test_local_fresh_temp_files_are_not_swept(tmp_path: Path) -> None:
    """Sweeping keeps a temp file a live writer may still be filling (younger than the threshold)."""
    store = LocalBlobStore(tmp_path)
    store.put(io.BytesIO(b"x"))
    live = tmp_path / "sha256" / ".tmp-live"
    live.write_bytes(b"partial")
    assert store.sweep() == 0
    assert live.exists()


def test_local_changed_blob_is_named_when_read(tmp_path: Path) -> None:
    """Reading a blob whose file was altered raises BlobError naming its SHA-256."""
    store = open_blob_store(str(tmp_path))
    data = b"pen-test report, final"
    info = store.put(io.BytesIO(data))
    path = tmp_path / "sha256" / info.sha256
    path.write_bytes(b"pen-test report, FINAL")
    with store.open(info.sha256) as blob, pytest.raises(BlobError, match=f"sha256/{info.sha256}.*corrupt"):
        blob.read()


def test_local_put_refuses_to_replace_a_changed_blob(tmp_path: Path) -> None:
    """A put finding its name taken by a file of another size leaves that file alone and says so."""
    store = open_blob_store(str(tmp_path))
    info = store.put(io.BytesIO(b"policy"))
    path = tmp_path / "sha256" / info.sha256
    path.write_bytes(b"tampered with")
    with pytest.raises(BlobError, match="was changed"):
        store.put(io.BytesIO(b"policy"))
    assert path.read_bytes() == b"tampered with"


def test_local_missing_and_malformed_names(tmp_path: Path) -> None:
    """Opening an absent blob raises BlobNotFound; a name that is not a SHA-256 is refused before any I/O."""
    store = open_blob_store(str(tmp_path))
    with pytest.raises(BlobNotFound, match="0" * 64):
        store.open("0" * 64)
    for bad in ("../../etc/passwd", "A" * 64, "0" * 63):
        with pytest.raises(BlobError, match="not a SHA-256"):
            store.exists(bad)


def test_open_blob_store_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    """Object Lock on a folder, unknown schemes, remote file:// hosts and negative days are refused."""
    with pytest.raises(BlobError, match="object_lock_days needs an s3:// bucket"):
        open_blob_store(str(tmp_path), object_lock_days=30)
    with pytest.raises(BlobError, match="use a folder path"):
        open_blob_store("gs://bucket/x")
    with pytest.raises(BlobError, match="local path"):
        open_blob_store("file://server/share")
    with pytest.raises(BlobError, match="0 or more"):
        open_blob_store("s3://bucket", object_lock_days=-1)


# ---------------------------------------------------------------- S3 (moto)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A moto S3 with one bucket created with Object Lock and one without; no real AWS is reachable."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
        client.create_bucket(Bucket=PLAIN)
        yield client


def _versions(client: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    reply = client.list_object_versions(Bucket=bucket, Prefix=key)
    return [v for v in reply.get("Versions", []) if v["Key"] == key]


def test_s3_every_object_gets_compliance_retention(s3: Any) -> None:
    """Each upload carries COMPLIANCE retention for object_lock_days and the whole object's SHA-256."""
    store = open_blob_store(f"s3://{LOCKED}/evidence", object_lock_days=30, s3_client=s3)
    start = datetime.now(UTC)
    infos = [store.put(io.BytesIO(f"document {n}".encode() * 100)) for n in range(3)]
    listed = s3.list_objects_v2(Bucket=LOCKED)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"evidence/sha256/{i.sha256}" for i in infos)
    for info in infos:
        head = s3.head_object(Bucket=LOCKED, Key=f"evidence/sha256/{info.sha256}", ChecksumMode="ENABLED")
        assert head["ObjectLockMode"] == "COMPLIANCE"
        until = head["ObjectLockRetainUntilDate"]
        assert start + timedelta(days=30) - timedelta(seconds=5) <= until <= datetime.now(UTC) + timedelta(days=30)
        assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(info.sha256)).decode()
        assert head["ContentLength"] == info.size


def test_s3_put_open_and_idempotence(s3: Any) -> None:
    """Putting the same bytes twice makes one object version, and open streams the bytes back."""
    store = open_blob_store(f"s3://{LOCKED}", object_lock_days=1, s3_client=s3)
    data = os.urandom(2 * CHUNK_SIZE + 17)
    first = store.put(io.BytesIO(data))
    second = store.put(io.BytesIO(data))
    assert first == second == BlobInfo(_sha(data), len(data))
    assert len(_versions(s3, LOCKED, f"sha256/{first.sha256}")) == 1
    assert store.exists(first.sha256)
    with store.open(first.sha256) as blob:
        assert blob.read() == data


def test_s3_delete_of_the_locked_version_is_refused(s3: Any) -> None:
    """Deleting the locked version is AccessDenied, even with the governance bypass; the blob stays readable."""
    store = open_blob_store(f"s3://{LOCKED}", object_lock_days=30, s3_client=s3)
    info = store.put(io.BytesIO(b"signed acknowledgements"))
    key = f"sha256/{info.sha256}"
    (version,) = _versions(s3, LOCKED, key)
    for extra in ({}, {"BypassGovernanceRetention": True}):
        with pytest.raises(ClientError) as refused:
            s3.delete_object(Bucket=LOCKED, Key=key, VersionId=version["VersionId"], **extra)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with store.open(info.sha256) as blob:
        assert blob.read() == b"signed acknowledgements"


def test_s3_delete_marker_does_not_hide_a_document(s3: Any) -> None:
    """A plain DELETE only adds a delete marker (as S3 does); the store still finds and produces the blob."""
    store = open_blob_store(f"s3://{LOCKED}", object_lock_days=30, s3_client=s3)
    info = store.put(io.BytesIO(b"incident report"))
    key = f"sha256/{info.sha256}"
    assert s3.delete_object(Bucket=LOCKED, Key=key)["DeleteMarker"] is True
    assert store.exists(info.sha256)
    with store.open(info.sha256) as blob:
        assert blob.read() == b"incident report"


def test_s3_overwrite_is_refused_or_named(s3: Any) -> None:
    """A conditional overwrite is refused (412); a forced one adds a version, leaves the locked one intact, and is named when read."""
    store = open_blob_store(f"s3://{LOCKED}", object_lock_days=30, s3_client=s3)
    info = store.put(io.BytesIO(b"risk assessment"))
    key = f"sha256/{info.sha256}"
    (original,) = _versions(s3, LOCKED, key)
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=LOCKED, Key=key, Body=b"forged", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    s3.put_object(Bucket=LOCKED, Key=key, Body=b"forged")
    kept = s3.get_object(Bucket=LOCKED, Key=key, VersionId=original["VersionId"])
    assert kept["Body"].read() == b"risk assessment"
    with store.open(info.sha256) as blob, pytest.raises(BlobError, match=f"sha256/{info.sha256}.*corrupt"):
        blob.read()


def test_s3_bucket_without_object_lock_is_refused(s3: Any) -> None:
    """Asking for retention on a bucket without Object Lock fails at once with one line naming the bucket."""
    with pytest.raises(BlobError) as refused:
        open_blob_store(f"s3://{PLAIN}/docs", object_lock_days=30, s3_client=s3)
    message = str(refused.value)
    assert PLAIN in message and "no Object Lock" in message and "\n" not in message
    with pytest.raises(BlobError, match="no-such-bucket"):
        open_blob_store("s3://no-such-bucket", object_lock_days=30, s3_client=s3)


def test_s3_without_retention_on_a_plain_bucket(s3: Any) -> None:
    """With object_lock_days = 0 a plain bucket works and objects carry no retention."""
    store = open_blob_store(f"s3://{PLAIN}/a/b/", s3_client=s3)
    assert isinstance(store, S3BlobStore)
    info = store.put(io.BytesIO(b"training export"))
    head = s3.head_object(Bucket=PLAIN, Key=f"a/b/sha256/{info.sha256}")
    assert "ObjectLockMode" not in head
    with pytest.raises(BlobNotFound, match="1" * 64):
        store.open("1" * 64)
    assert not store.exists("1" * 64)
