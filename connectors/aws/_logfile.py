"""One CloudTrail log file read with bounds: GET capped, inflated as a stream, nesting checked, parsed."""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

from connectors.sdk.rawjson import check_depth, split_member

__all__ = ["MAX_NESTING", "Unreadable", "get_log_object", "parse_log_file", "read_log_object"]

MAX_NESTING = 128
"""The deepest a log file may nest arrays and objects. CloudTrail's own records nest about ten
levels (a request's parameters inside the record inside ``Records``); the parser recurses once
per level, so a hostile file of 100,000 levels (600 gzipped bytes) is refused before it parses."""

_MIB = 1 << 20
_GZIP = b"\x1f\x8b"


class Unreadable(Exception):
    """A log file that cannot be decompressed or parsed, or that breaks a size or depth bound."""


def _mib(size: int) -> str:
    return f"{size / _MIB:.1f} MiB"


def get_log_object(s3: Any, bucket: str, key: str, max_bytes: int) -> tuple[bytes, str]:
    """GET one log object: its bytes as stored and their SHA-256 (hex).

    An object larger than ``max_bytes`` is ``Unreadable`` naming its size, refused from its
    Content-Length before its body is read, and never read past ``max_bytes + 1`` bytes
    (a log file is never larger gzipped than inflated, so the inflation cap bounds it too).
    S3 errors propagate as botocore raised them (the caller maps them).
    """
    response = s3.get_object(Bucket=bucket, Key=key)
    stream = response["Body"]
    try:
        length = response.get("ContentLength")
        if isinstance(length, int) and length > max_bytes:
            raise Unreadable(f"the object is {_mib(length)}, more than the {_mib(max_bytes)} "
                              "cloudtrail_max_inflated_mib allows")
        body: bytes = stream.read(max_bytes + 1)
    finally:
        stream.close()
    if len(body) > max_bytes:
        raise Unreadable(f"the object is more than the {_mib(max_bytes)} cloudtrail_max_inflated_mib allows")
    return body, hashlib.sha256(body).hexdigest()


def _inflate(body: bytes, cap: int) -> bytes:
    """``body`` gunzipped (every member, as ``gzip.decompress``), as a stream that stops once the
    output passes ``cap`` bytes: a 2 MB bomb costs ``cap`` bytes of memory, never 2 GB."""
    if body[:2] != _GZIP:
        return body
    out: list[bytes] = []
    size = 0
    rest = body
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = rest
        while True:
            chunk = inflater.decompress(pending, cap - size + 1)  # max_length >= 1 (0 means unbounded)
            size += len(chunk)
            if size > cap:
                raise Unreadable(f"it inflates past the {_mib(cap)} cloudtrail_max_inflated_mib allows")
            out.append(chunk)
            if inflater.eof:
                break
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                raise Unreadable("EOFError: the gzip stream ends before its end-of-stream marker")
        rest = inflater.unused_data.lstrip(b"\x00")  # members may be followed by zero padding
    return b"".join(out)


def parse_log_file(body: bytes, *, max_inflated: int = 256 * _MIB,
                   max_depth: int = MAX_NESTING) -> list[tuple[dict[str, Any], bytes]]:
    """Each record of a (gzipped) CloudTrail log file with the exact bytes it occupies in the JSON.

    The span is what ``raw_sha256`` hashes: an auditor who downloads the object named in the
    record, checks its SHA-256 and gunzips it finds these bytes in it. A record need not carry
    an ``eventID`` (eventVersion 1.0 records have none; ``event_key`` keys them); a file that
    is not JSON, whose records are not objects, that inflates past ``max_inflated`` bytes or
    nests deeper than ``max_depth`` is unreadable (``Unreadable``, saying which).
    """
    try:
        content = _inflate(body, max_inflated)
        if len(content) > max_inflated:
            raise Unreadable(f"it is more than the {_mib(max_inflated)} cloudtrail_max_inflated_mib allows")
        check_depth(content, max_depth)
        records = split_member(content, "Records")  # bytes: orjson reads them as they are
    except (OSError, EOFError, zlib.error, ValueError, RecursionError) as exc:
        # RecursionError only if the depth bound and the parser ever disagree.
        raise Unreadable(f"{type(exc).__name__}: {exc}") from exc
    for index, (record, _) in enumerate(records):
        if not isinstance(record, dict):
            raise Unreadable(f"record {index} is not a JSON object")
    return records


def read_log_object(s3: Any, bucket: str, key: str, max_inflated: int
                    ) -> tuple[list[tuple[dict[str, Any], bytes]], str]:
    """GET, hash, inflate and parse one log object (what a reader thread or the reader process
    does): its records with their exact bytes, and the object's SHA-256. ``Unreadable`` for a
    file past ``max_inflated`` bytes (stored or inflated), nested too deeply or not a log file;
    S3 errors as botocore raised them."""
    body, digest = get_log_object(s3, bucket, key, max_inflated)
    return parse_log_file(body, max_inflated=max_inflated), digest
