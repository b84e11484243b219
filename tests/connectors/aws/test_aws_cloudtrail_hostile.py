"""aws.cloudtrail against hostile log files: a decompression bomb and a deeply nested file are one failed item each."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from typing import Any

import pytest
from conftest import BUCKET, REGION, utcnow
from hypothesis import given
from hypothesis import strategies as st

from connectors.aws.cloudtrail import MAX_NESTING, parse_log_file
from connectors.sdk import Cursor, ItemFailure, SourceItem
from connectors.sdk.rawjson import check_depth
from sandbox.aws_seed import ACCOUNT, event, log_file, log_key
from storage import Store

_MIB = 1 << 20


def bomb(inflated_mib: int) -> bytes:
    """A gzip file that inflates to ``inflated_mib`` MiB of JSON whitespace from about 1 KB per 1 MiB:
    1 MiB members, concatenated, as ``gzip.decompress`` reads them."""
    member = gzip.compress(b'{"Records":[' + b" " * (_MIB - 14) + b"]}", mtime=0)
    return member * inflated_mib


def nested(levels: int) -> bytes:
    """A gzip file whose one record nests ``levels`` arrays (100,000 levels: about 600 bytes)."""
    return gzip.compress(b'{"Records":[{"eventName":"ConsoleLogin","x":' + b"[" * levels + b"]" * levels
                         + b"}]}", mtime=0)


def _login(when: Any, event_id: str) -> dict[str, Any]:
    return event("CreateUser", when, source="iam.amazonaws.com", event_id=event_id, params={"userName": event_id})


def test_bomb_and_nested_files_are_two_failed_items_and_every_other_file_is_stored(
        moto_session: Any, make_connector: Any, pipeline: Any, store: Store) -> None:
    """A prefix holding a decompression bomb (2 GiB from 2 MB, with the default cap) and a file
    nesting 100,000 arrays still stores every other file's events; the run is partial and
    names exactly those two objects."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    when = utcnow() - timedelta(days=1)
    keys = [log_key(ACCOUNT, REGION, when + timedelta(minutes=n), unique=f"H{n}") for n in range(4)]
    other = log_key(ACCOUNT, "eu-west-1", when, unique="OTHER")
    s3.put_object(Bucket=BUCKET, Key=keys[0], Body=log_file([_login(when, "e-before")]))
    s3.put_object(Bucket=BUCKET, Key=keys[1], Body=bomb(2048))
    s3.put_object(Bucket=BUCKET, Key=keys[2], Body=nested(100_000))
    s3.put_object(Bucket=BUCKET, Key=keys[3], Body=log_file([_login(when, "e-after")]))
    s3.put_object(Bucket=BUCKET, Key=other, Body=log_file([_login(when, "e-other")]))
    aws = make_connector(moto_session)
    result = pipeline.run(aws.stream("cloudtrail"), aws.config)
    assert result.status == "partial" and result.failures == 2
    assert result.error is not None
    assert keys[1] in result.error and "inflates past the 256.0 MiB" in result.error
    assert keys[2] in result.error and f"deeper than {MAX_NESTING} levels" in result.error
    assert keys[0] not in result.error and keys[3] not in result.error
    assert store.record_counts() == {"aws.cloudtrail": 3}


def test_a_lower_cap_from_the_config_refuses_a_file_it_would_have_read(moto_session: Any,
                                                                       make_connector: Any) -> None:
    """``cloudtrail_max_inflated_mib`` is the bound: a 3 MiB file is read under the default and one
    failed item naming its key under a 2 MiB cap, whether gzipped or stored plain."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    when = utcnow() - timedelta(days=1)
    padding = "x" * (3 * _MIB)
    records = [{**_login(when, "e-big"), "userAgent": padding}]
    gz_key = log_key(ACCOUNT, REGION, when, unique="GZ")
    plain_key = log_key(ACCOUNT, REGION, when + timedelta(minutes=1), unique="PLAIN").removesuffix(".gz")
    s3.put_object(Bucket=BUCKET, Key=gz_key, Body=log_file(records))
    s3.put_object(Bucket=BUCKET, Key=plain_key, Body=json.dumps({"Records": records}).encode())
    now = utcnow()

    def outputs(**config: Any) -> list[Any]:
        aws = make_connector(moto_session, **config)
        return list(aws.stream("cloudtrail").fetch(Cursor(None, now, now - timedelta(days=90))))

    assert sum(isinstance(o, SourceItem) for o in outputs()) == 2
    capped = outputs(cloudtrail_max_inflated_mib=2)
    failed = {o.key: o.error for o in capped if isinstance(o, ItemFailure)}
    assert not any(isinstance(o, SourceItem) for o in capped)
    assert "inflates past the 2.0 MiB cloudtrail_max_inflated_mib allows" in failed[gz_key]
    assert "the object is 3.0 MiB, more than the 2.0 MiB" in failed[plain_key]


def test_the_cap_is_a_config_problem_outside_its_range(make_connector: Any) -> None:
    """A cap of 0 or beyond 4 GiB is reported by key before any source is contacted."""
    for value in (0, 4097):
        problems = dict(make_connector(cloudtrail_max_inflated_mib=value).config.problems())
        assert "between 1 and 4096" in problems["cloudtrail_max_inflated_mib"]


def test_inflating_in_a_stream_reads_what_gzip_reads() -> None:
    """Multi-member files, zero padding after a member, and plain JSON parse as before; a
    truncated gzip is unreadable."""
    body = gzip.compress(b'{"Records":[{"a":1},', mtime=0) + gzip.compress(b'{"b":2}]}', mtime=0) + b"\x00" * 8
    assert [r for r, _ in parse_log_file(body)] == [{"a": 1}, {"b": 2}]
    assert [r for r, _ in parse_log_file(b'{"Records":[{"c":3}]}')] == [{"c": 3}]
    whole = gzip.compress(b'{"Records":[]}', mtime=0)
    with pytest.raises(Exception, match="EOFError"):
        parse_log_file(whole[:-6])
    with pytest.raises(Exception, match=r"incorrect header check|invalid"):
        parse_log_file(whole + b"junk")
    # The cap counts every member together.
    with pytest.raises(Exception, match="inflates past"):
        parse_log_file(bomb(3), max_inflated=2 * _MIB)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.text(alphabet=st.sampled_from('abx[]{}"\\\n\t/ufé\u2028\x00')),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(alphabet=st.sampled_from('k[]{}"\\'), max_size=3), inner, max_size=3),
    max_leaves=12,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@given(_JSON, st.booleans())
def test_the_depth_scan_agrees_with_the_parsed_depth(value: Any, ascii_only: bool) -> None:
    """Brackets, quotes, backslashes and every escape inside strings never move the count: a
    document passes exactly at its real depth and fails one level below it."""
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth = _depth(value)
    check_depth(data, depth)
    if depth:
        with pytest.raises(ValueError, match=f"deeper than {depth - 1} levels"):
            check_depth(data, depth - 1)
