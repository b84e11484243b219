"""Content-addressed, write-once blob store for documents: a local folder or S3 with Object Lock."""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from storage.errors import StoreError

__all__ = [
    "CHUNK_SIZE",
    "S3_SINGLE_PUT_LIMIT",
    "BlobError",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "open_blob_store",
]

CHUNK_SIZE = 1024 * 1024
"""Bytes read, hashed and written per step: the store's memory stays near this, whatever the size."""

S3_SINGLE_PUT_LIMIT = 5 * 1024**3
"""S3's limit for one PutObject request (5 GiB); larger documents are refused with a clear error."""

# A temp object older than this is a leftover of a killed writer, never one still writing: a live
# writer touches its temp file (mtime) on every chunk.
_STALE_TEMP_SECONDS = 6 * 3600
_TEMP_PREFIX = ".tmp-"
_HEX = re.compile(r"[0-9a-f]{64}")
_FILE_MODE = 0o644
_DIR_MODE = 0o755


class BlobError(StoreError):
    """The blob store cannot store or produce a blob; the message names the store and the blob."""


class BlobNotFound(BlobError):
    """No blob with this SHA-256 is in the store."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob: the SHA-256 of its content (lowercase hex) and its size in bytes."""

    sha256: str
    size: int


class BlobStore(Protocol):
    """A write-once store of blobs named by the SHA-256 of their content (``sha256/<hex>``)."""

    url: str

    def put(self, stream: BinaryIO) -> BlobInfo:
        """Store the stream's bytes in bounded memory; storing the same bytes again changes nothing."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """The blob's bytes; reading to the end raises `BlobError` if they no longer hash to ``sha256``.

        Raises `BlobNotFound` when the store holds no such blob.
        """
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the store holds a blob with this SHA-256."""
        ...


def open_blob_store(url: str, *, object_lock_days: int = 0, s3_client: Any = None) -> BlobStore:
    """The blob store at ``url``: a folder path, a ``file://`` URL or ``s3://bucket[/prefix]``.

    ``object_lock_days > 0`` (S3 only) gives every upload a COMPLIANCE-mode retention of that many
    days; the bucket must have Object Lock enabled, checked here so a wrong bucket fails at start.
    ``s3_client`` is a boto3 S3 client (default: one built from the environment).
    """
    if object_lock_days < 0:
        raise BlobError(f"blob store {url}: object_lock_days must be 0 or more, not {object_lock_days}")
    if url.startswith("s3://"):
        return S3BlobStore.connect(url, object_lock_days=object_lock_days, client=s3_client)
    if object_lock_days:
        raise BlobError(
            f"blob store {url}: object_lock_days needs an s3:// bucket with Object Lock; "
            "a local folder cannot enforce retention"
        )
    if url.startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise BlobError(f"blob store {url}: a file:// URL must name a local path (file:///path)")
        return LocalBlobStore(Path(unquote(parts.path)))
    if "://" in url:
        raise BlobError(f"blob store {url}: use a folder path, file:///path or s3://bucket/prefix")
    return LocalBlobStore(Path(url))


def _check_hex(sha256: str) -> str:
    # The name becomes a path or an object key: only a well-formed digest may reach either.
    if not isinstance(sha256, str) or not _HEX.fullmatch(sha256):
        raise BlobError(f"not a SHA-256 (64 lowercase hex digits): {sha256!r}")
    return sha256


def _copy_hashing(stream: BinaryIO, out: BinaryIO) -> BlobInfo:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK_SIZE):
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
    return BlobInfo(digest.hexdigest(), size)


class _VerifyingReader(io.RawIOBase):
    """Reads a blob and checks, at its end, that the bytes hash to the name they were stored under."""

    def __init__(self, read: Callable[[int], bytes], close: Callable[[], None], sha256: str, where: str):
        super().__init__()
        self._read = read
        self._close = close
        self._expected = sha256
        self._where = where
        self._digest = hashlib.sha256()
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._read(len(view))
        except BlobError:
            raise
        except Exception as exc:
            raise BlobError(f"{self._where}: reading failed: {exc}") from exc
        if not data:
            self._verify()
            return 0
        view[: len(data)] = data
        self._digest.update(data)
        return len(data)

    def _verify(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = self._digest.hexdigest()
        if actual != self._expected:
            raise BlobError(f"{self._where} is corrupt: its content hashes to {actual}")

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._close()
        super().close()


def _verifying(read: Callable[[int], bytes], close: Callable[[], None], sha256: str, where: str) -> BinaryIO:
    return io.BufferedReader(_VerifyingReader(read, close, sha256, where), CHUNK_SIZE)


class LocalBlobStore:
    """Blobs as files ``<root>/sha256/<hex>`` (0644, folders 0755), published atomically.

    A blob is written to a temp file in the same folder, fsynced, then hard-linked to its name
    (``os.link`` never replaces an existing file), and the folder is fsynced. A kill -9 at any
    point leaves either no blob or the whole blob, plus at most a ``.tmp-*`` file that is never
    read as a blob and is removed once stale.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)
        self._dir = root / "sha256"
        self._swept = False

    def _where(self, sha256: str) -> str:
        return f"blob sha256/{sha256} in {self.url}"

    def _ensure_dirs(self) -> None:
        for folder in (self.root, self._dir):
            try:
                folder.mkdir(parents=folder is self.root)
            except FileExistsError:
                if not folder.is_dir():
                    raise BlobError(f"blob store {self.url}: {folder} is not a folder") from None
                continue
            except OSError as exc:
                raise BlobError(f"blob store {self.url}: cannot create {folder}: {exc.strerror}") from exc
            # mkdir's mode is filtered by the umask; the store's layout is not.
            os.chmod(folder, _DIR_MODE)

    def put(self, stream: BinaryIO) -> BlobInfo:
        """Store the stream's bytes as ``sha256/<hex>``; an existing blob is left as it is."""
        self._ensure_dirs()
        if not self._swept:
            self._swept = True
            self.sweep()
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=self._dir)
        except OSError as exc:
            raise BlobError(f"blob store {self.url}: cannot write in {self._dir}: {exc.strerror}") from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), _FILE_MODE)
                info = _copy_hashing(stream, out)
                out.flush()
                os.fsync(out.fileno())
            self._publish(tmp, info)
        except OSError as exc:
            raise BlobError(f"blob store {self.url}: cannot store a blob: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def _publish(self, tmp: Path, info: BlobInfo) -> None:
        final = self._dir / info.sha256
        try:
            os.link(tmp, final)
        except FileExistsError:
            self._check_existing(final, info)
            return
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # No hard links on this file system: a rename, refusing to replace what is there.
            if final.exists():
                self._check_existing(final, info)
                return
            os.rename(tmp, final)
        self._fsync_dir()

    def _check_existing(self, final: Path, info: BlobInfo) -> None:
        # Same name means same SHA-256, so same bytes, unless someone changed the file under us.
        if final.stat().st_size != info.size:
            raise BlobError(
                f"{self._where(info.sha256)} exists with {final.stat().st_size} bytes, not {info.size}: "
                "the stored file was changed; it is left as it is"
            )

    def _fsync_dir(self) -> None:
        fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def open(self, sha256: str) -> BinaryIO:
        """The blob's bytes, checked against ``sha256`` when read to the end."""
        path = self._dir / _check_hex(sha256)
        try:
            raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the returned reader
        except FileNotFoundError:
            raise BlobNotFound(f"{self._where(sha256)}: not found") from None
        except OSError as exc:
            raise BlobError(f"{self._where(sha256)}: cannot read: {exc.strerror}") from exc
        return _verifying(raw.read, raw.close, sha256, self._where(sha256))

    def exists(self, sha256: str) -> bool:
        """Whether ``sha256/<hex>`` is a file in the store."""
        return (self._dir / _check_hex(sha256)).is_file()

    def sweep(self, *, older_than: float = _STALE_TEMP_SECONDS) -> int:
        """Remove temp files left by killed writers (older than ``older_than`` seconds); the count."""
        if not self._dir.is_dir():
            return 0
        cutoff = time.time() - older_than
        removed = 0
        for tmp in self._dir.glob(f"{_TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
        return removed


class S3BlobStore:
    """Blobs as objects ``<prefix>/sha256/<hex>`` in one bucket, optionally under Object Lock.

    The key is the content's hash, which is only known once every byte has been read, so `put`
    first spools the stream to a local temp file while hashing it (1 MiB at a time), then makes one
    PutObject with that key. One request carries the key, the COMPLIANCE retention, ``If-None-Match:
    *`` (S3 itself refuses to overwrite) and the whole object's SHA-256, which S3 checks against the
    bytes it received. The alternative, a multipart upload to a temporary key then a copy, would
    leave a second locked object behind under a default retention and loses the whole-object
    SHA-256 (S3 keeps only per-part SHA-256 for multipart uploads). Cost: a temp file the size of
    the document (in ``$TMPDIR``); limit: one PutObject takes at most 5 GiB.

    Permissions used: s3:PutObject and s3:PutObjectRetention (upload with retention),
    s3:GetObject and s3:GetObjectVersion (read), s3:ListBucket and s3:ListBucketVersions
    (existence, and finding a version hidden by a delete marker),
    s3:GetBucketObjectLockConfiguration (the check at start).
    """

    def __init__(self, client: Any, bucket: str, prefix: str, object_lock_days: int, url: str) -> None:
        self.url = url
        self.bucket = bucket
        self.prefix = prefix
        self.object_lock_days = object_lock_days
        self._client = client

    @classmethod
    def connect(cls, url: str, *, object_lock_days: int = 0, client: Any = None) -> S3BlobStore:
        """The store at ``s3://bucket[/prefix]``; refuses a bucket without Object Lock if lock is asked."""
        parts = urlsplit(url)
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if not bucket or parts.query or parts.fragment:
            raise BlobError(f"blob store {url}: expected s3://bucket or s3://bucket/prefix")
        if client is None:
            import boto3  # only an S3 store pays for importing boto3

            client = boto3.client("s3")
        store = cls(client, bucket, prefix, object_lock_days, url)
        if object_lock_days:
            store._require_object_lock()
        return store

    def _key(self, sha256: str) -> str:
        name = f"sha256/{_check_hex(sha256)}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _where(self, sha256: str) -> str:
        return f"blob sha256/{sha256} in {self.url}"

    def _require_object_lock(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            reply = self._client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            code = _code(exc)
            if code == "ObjectLockConfigurationNotFoundError":
                raise BlobError(
                    f"S3 bucket {self.bucket} has no Object Lock enabled, but object_lock_days = "
                    f"{self.object_lock_days} needs it: use a bucket created with Object Lock, "
                    "or set object_lock_days = 0"
                ) from None
            raise BlobError(
                f"S3 bucket {self.bucket}: cannot read its Object Lock configuration: {code}"
            ) from exc
        except BotoCoreError as exc:
            raise BlobError(f"S3 bucket {self.bucket}: cannot reach it: {exc}") from exc
        if reply.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise BlobError(
                f"S3 bucket {self.bucket} has no Object Lock enabled, but object_lock_days = "
                f"{self.object_lock_days} needs it"
            )

    def put(self, stream: BinaryIO) -> BlobInfo:
        """Store the stream under its SHA-256; an object already there is left as it is."""
        from botocore.exceptions import BotoCoreError, ClientError

        with tempfile.TemporaryFile(prefix="blob-") as spool:
            info = _copy_hashing(stream, spool)
            if info.size > S3_SINGLE_PUT_LIMIT:
                raise BlobError(
                    f"blob store {self.url}: a document of {info.size} bytes exceeds the 5 GiB "
                    "an S3 upload can take"
                )
            key = self._key(info.sha256)
            try:
                if self._head(key, forbidden_is_absent=True):
                    return info
                spool.seek(0)
                self._client.put_object(**self._put_args(key, info, spool))
            except ClientError as exc:
                if _code(exc) in ("PreconditionFailed", "412"):
                    return info  # another writer stored the same bytes first: the same blob
                raise BlobError(f"{self._where(info.sha256)}: upload failed: {_code(exc)}") from exc
            except BotoCoreError as exc:
                raise BlobError(f"{self._where(info.sha256)}: upload failed: {exc}") from exc
        return info

    def _put_args(self, key: str, info: BlobInfo, body: BinaryIO) -> dict[str, Any]:
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentLength": info.size,
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": base64.b64encode(bytes.fromhex(info.sha256)).decode("ascii"),
            "IfNoneMatch": "*",
        }
        if self.object_lock_days:
            args["ObjectLockMode"] = "COMPLIANCE"
            args["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=self.object_lock_days)
        return args

    def _head(self, key: str, *, forbidden_is_absent: bool = False) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            # Without s3:ListBucket, S3 answers 403 for a missing key; the conditional PutObject
            # that follows still refuses to overwrite, so an upload may go ahead.
            if forbidden_is_absent and code in ("403", "AccessDenied", "Forbidden"):
                return False
            raise
        return True

    def _hidden_version(self, key: str) -> str | None:
        # A plain DELETE on a versioned (Object Lock) bucket only adds a delete marker: the locked
        # version is still there, and the store still produces it.
        reply = self._client.list_object_versions(Bucket=self.bucket, Prefix=key)
        versions = [v for v in reply.get("Versions", []) if v.get("Key") == key]
        if not versions:
            return None
        latest = max(versions, key=lambda v: v["LastModified"])
        return str(latest["VersionId"])

    def open(self, sha256: str) -> BinaryIO:
        """The blob's bytes (the newest stored version if a delete marker hides it), checked at the end."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(sha256)
        where = self._where(sha256)
        try:
            try:
                reply = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) not in ("NoSuchKey", "404"):
                    raise
                version = self._hidden_version(key)
                if version is None:
                    raise BlobNotFound(f"{where}: not found") from None
                reply = self._client.get_object(Bucket=self.bucket, Key=key, VersionId=version)
        except ClientError as exc:
            raise BlobError(f"{where}: cannot read: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise BlobError(f"{where}: cannot read: {exc}") from exc
        body = reply["Body"]
        return _verifying(body.read, body.close, sha256, where)

    def exists(self, sha256: str) -> bool:
        """Whether the bucket holds the blob (also when only a delete marker hides it)."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(sha256)
        try:
            return self._head(key) or self._hidden_version(key) is not None
        except ClientError as exc:
            raise BlobError(f"{self._where(sha256)}: cannot check it: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise BlobError(f"{self._where(sha256)}: cannot check it: {exc}") from exc


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))
