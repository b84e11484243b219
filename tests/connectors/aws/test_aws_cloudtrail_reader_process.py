"""aws.cloudtrail with ``cloudtrail_reader = "process"``: the reads run in a child process, with the same outcome."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import BUCKET, REGION, MotoServer, utcnow

from collector.catalog import Catalog, Filing
from collector.pipeline import Pipeline
from connectors.aws._reader_process import ReadJob, reader_process
from connectors.aws.cloudtrail import CloudTrailStream
from connectors.aws.config import AwsConfig
from connectors.sdk import Checkpoint, Cursor, ItemFailure, SourceItem
from connectors.sdk.errors import FatalError, RetriableError
from connectors.sdk.retry import add_listener, remove_listener
from sandbox.aws_seed import ACCOUNT, event, log_file, log_key, seed_cloudtrail
from storage import Store


def _seed(s3: Any) -> None:
    """The seeded trail (with its truncated file) and twenty more files in one prefix."""
    seed_cloudtrail(s3, BUCKET, utcnow())
    start = (utcnow() - timedelta(days=2)).replace(second=0, microsecond=0)
    for n in range(20):
        at = start + timedelta(minutes=5 * n)
        records = [event("CreateAccessKey", at - timedelta(seconds=s), source="iam.amazonaws.com",
                         event_id=f"p-{n:03d}-{s}", params={"userName": f"u{n}"}) for s in range(3)]
        s3.put_object(Bucket=BUCKET, Key=log_key(ACCOUNT, "us-west-2", at, unique=f"P{n:03d}"),
                      Body=log_file(records))


def _outputs(stream: Any) -> list[tuple[Any, ...]]:
    now = utcnow()
    out: list[tuple[Any, ...]] = []
    for o in stream.fetch(Cursor(None, now, now - timedelta(days=30))):
        if isinstance(o, SourceItem):
            out.append(("item", o.key, o.raw, o.observed_at, stream.normalise(o)))
        elif isinstance(o, Checkpoint):
            out.append(("checkpoint", o.cursor))
        elif isinstance(o, ItemFailure):
            out.append(("failure", o.key, o.error, o.error_class))
    return out


def test_the_reader_process_yields_what_reader_threads_do(moto_server: MotoServer, make_connector: Any) -> None:
    """Read in the child process, the stream yields the same items (events, bytes, object
    hashes), checkpoints and failures (the truncated file's too), in the same order."""
    _seed(moto_server.client("s3"))
    threads = _outputs(make_connector(moto_server.session, endpoint_url=moto_server.url).stream("cloudtrail"))
    process = _outputs(make_connector(moto_server.session, endpoint_url=moto_server.url,
                                      cloudtrail_reader="process").stream("cloudtrail"))
    assert process == threads
    assert any(o[0] == "failure" for o in threads) and sum(o[0] == "item" for o in threads) >= 60


def test_the_reader_process_stores_the_same_records(moto_server: MotoServer, make_connector: Any,
                                                    tmp_path: Any) -> None:
    """Through the pipeline, reader threads and the reader process store the same record ids,
    and the process's GETs are counted in this process's request metrics."""
    _seed(moto_server.client("s3"))
    stored: list[set[str]] = []
    counted: list[str] = []

    def listener(what: str, connector: str) -> None:
        counted.append(what)

    add_listener(listener)
    try:
        for reader in ("threads", "process"):
            counted.clear()
            store = Store.open(f"sqlite:///{tmp_path / f'{reader}.db'}")
            aws = make_connector(moto_server.session, endpoint_url=moto_server.url, cloudtrail_reader=reader)
            Pipeline(store, Filing(Catalog.builtin(), {}), batch_size=7).run(aws.stream("cloudtrail"), aws.config)
            with store.engine.connect() as conn:
                stored.append(set(conn.execute(sa.text("SELECT id FROM evidence")).scalars()))
            store.close()
            if reader == "threads":
                requests = counted.count("request")
    finally:
        remove_listener(listener)
    assert stored[0] == stored[1] and len(stored[0]) >= 60
    assert counted.count("request") == requests > 20


def test_an_s3_error_in_the_child_keeps_its_class(moto_server: MotoServer) -> None:
    """A missing object read by the child raises here the FatalError the threads would have
    raised, naming the key."""
    moto_server.client("s3").create_bucket(Bucket=BUCKET)
    config = AwsConfig(cloudtrail_bucket=BUCKET, endpoint_url=moto_server.url)
    job = ReadJob(config, REGION, ("testing", "testing", None), "aws", BUCKET, "AWSLogs/missing.json.gz")
    with pytest.raises(FatalError, match=re.escape("NoSuchKey on s3:GetObject AWSLogs/missing.json.gz")):
        reader_process().read(job)


def test_a_dead_reader_process_fails_reads_and_is_replaced(moto_server: MotoServer) -> None:
    """When the child dies, a read fails with a RetriableError (one object's failure, retried
    next run) and the next fetch gets a new child that reads."""
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    key = log_key(ACCOUNT, REGION, utcnow(), unique="D")
    s3.put_object(Bucket=BUCKET, Key=key, Body=log_file([event("CreateUser", utcnow(), source="iam.amazonaws.com", event_id="d-1")]))
    config = AwsConfig(cloudtrail_bucket=BUCKET, endpoint_url=moto_server.url)
    job = ReadJob(config, REGION, ("testing", "testing", None), "aws", BUCKET, key)
    child = reader_process()
    child._process.kill()
    child._process.wait(10)
    with pytest.raises(RetriableError, match="reader process"):
        for _ in range(100):  # until the answering thread has seen the pipe close
            child.read(job)
    fresh = reader_process()
    assert fresh is not child
    items, _late, _unreadable, _services, _digest = fresh.read(job)
    assert [item.key for item in items] == ["d-1"]


def test_odd_values_cross_the_pipe_as_the_child_parsed_them(moto_server: MotoServer, make_connector: Any) -> None:
    """Values outside the record profile in the fields a record copies (floats, NaN, -0.0,
    integers past 64 bits, a lone surrogate) reach this process as the child parsed them: the
    same types and values, and the same record failures, as reader threads give."""
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    at = (utcnow() - timedelta(hours=2)).replace(second=0, microsecond=0)
    odd = [event("CreateUser", at, source="iam.amazonaws.com", event_id="odd-1", region=1.5e3,
                 params={"userName": 2**70, "status": -0.0}),
           event("DeleteUser", at, source="iam.amazonaws.com", event_id="odd-2", account=2**64),
           event("UpdateUser", at, source="iam.amazonaws.com", event_id="odd-3", error="caf\u00e9 \ud800")]
    odd[1]["sourceIPAddress"] = float("nan")
    odd[2]["userAgent"] = -0.0
    s3.put_object(Bucket=BUCKET, Key=log_key(ACCOUNT, REGION, at, unique="ODD"), Body=log_file(odd))
    # orjson writes and reads these exactly: this file crosses the pipe as JSON, the first pickled.
    floats = [0.1, 1e-320, 2.2250738585072011e-308, 1.7976931348623157e308, 5e-324, -2.5e-7, 2**64 - 1, -2**63]
    exact = [event("CreateGroup", at, source="iam.amazonaws.com", event_id=f"exact-{n}", region=value)
             for n, value in enumerate(floats)]
    exact[0]["userIdentity"] = {"type": "IAMUser", "sessionContext": {"attributes": {"mfaAuthenticated": 1.0}}}
    s3.put_object(Bucket=BUCKET, Key=log_key(ACCOUNT, REGION, at + timedelta(minutes=5), unique="EXACT"),
                  Body=log_file(exact))
    threads = _outputs(make_connector(moto_server.session, endpoint_url=moto_server.url).stream("cloudtrail"))
    process = _outputs(make_connector(moto_server.session, endpoint_url=moto_server.url,
                                      cloudtrail_reader="process").stream("cloudtrail"))
    assert repr(process) == repr(threads)  # repr: NaN is not equal to itself, and -0.0 == 0
    assert [o[1] for o in threads if o[0] == "item"] == ["odd-1", "odd-2", "odd-3"] + [
        f"exact-{n}" for n in range(len(floats))]
    normalised = [o[4] for o in threads if o[0] == "item"]
    assert [repr(n.data["aws_region"]) for n in normalised[3:]] == [repr(v) for v in floats]
    assert repr(normalised[0].data["aws_region"]) == "1500.0"
    assert repr(normalised[1].data["source_ip"]) == "nan" and normalised[1].data["account"] == 2**64
    assert normalised[2].data["error_code"] == "caf\u00e9 \ud800" and repr(normalised[2].data["user_agent"]) == "-0.0"


def test_the_reader_process_keeps_the_read_ahead_depth(moto_server: MotoServer, make_connector: Any) -> None:
    """With the reads in the child, reading still runs ahead up to depth files while the consumer
    holds one, and no further over the whole run."""
    _seed(moto_server.client("s3"))
    stream = make_connector(moto_server.session, endpoint_url=moto_server.url, cloudtrail_workers=1,
                            cloudtrail_reader="process").stream("cloudtrail")
    assert isinstance(stream, CloudTrailStream) and stream.prefetch_depth == 16
    now = utcnow()
    outputs = stream.fetch(Cursor(None, now, now - timedelta(days=30)))
    assert next(o for o in outputs if isinstance(o, SourceItem)).key
    stats = stream.prefetch_stats
    assert stats is not None
    deadline = time.monotonic() + 20  # a safety limit for a slow machine, not a measurement
    while stats.started - stats.taken < stats.depth and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # room for a read past the bound, were there one
    assert stats.started - stats.taken == stats.depth
    rest = list(outputs)
    assert any(isinstance(o, SourceItem) for o in rest)
    assert stats.started == stats.taken > 20 and stats.most_ahead == stats.depth and stats.held_bytes == 0


@pytest.mark.parametrize(("value", "way"), [
    (0.1, "json"), (5e-324, "json"), (2**64 - 1, "json"), ("caf\u00e9", "json"),
    (float("nan"), "pickle"), (float("inf"), "pickle"), (2**64, "pickle"), ("\ud800", "pickle"),
])
def test_a_file_crosses_the_pipe_as_json_only_where_json_gives_back_the_same(value: Any, way: str) -> None:
    """A file's records cross the pipe as one orjson document when orjson reads back exactly
    what it wrote, and pickled when it would not (NaN, Infinity, integers past 64 bits, lone
    surrogates); either way they arrive with the same values and types."""
    from connectors.aws._reader_process import _pack, _unpack
    from connectors.aws.cloudtrail import TrailEvent, normalise_event

    record = event("CreateUser", utcnow(), source="iam.amazonaws.com", event_id="v-1")
    record["userAgent"] = value
    raw = json.dumps(record, separators=(",", ":")).encode()
    trail = TrailEvent(record, BUCKET, "k.json.gz", "0" * 64)
    trail.normalised = normalise_event(trail, "v-1")
    items = [SourceItem("v-1", utcnow(), raw, trail)]
    packed = _pack(items)
    assert packed[0] == way

    def fields(item: SourceItem) -> str:  # repr: NaN is not equal to itself, its repr is
        obj = item.obj
        return repr((item.key, item.observed_at, item.raw, obj.event, obj.bucket, obj.key,
                     obj.object_sha256, obj.normalised))

    assert [fields(i) for i in _unpack(packed)] == [fields(i) for i in items]


@pytest.mark.parametrize("reader", ["threads", "process"])
def test_an_event_after_the_ceiling_is_not_yielded_and_holds_its_prefix(moto_server: MotoServer,
                                                                        make_connector: Any, reader: str) -> None:
    """A record stamped after the run's ceiling (clock skew) in a file delivered before it is left
    for the next run, which reads the file again: the file's other records are yielded, and the
    prefix's cursor does not pass the file (either reader)."""
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    at = (utcnow() - timedelta(hours=2)).replace(second=0, microsecond=0)
    key = log_key(ACCOUNT, REGION, at, unique="SKEW")
    s3.put_object(Bucket=BUCKET, Key=key, Body=log_file([
        event("CreateUser", at, source="iam.amazonaws.com", event_id="s-now"),
        event("DeleteUser", utcnow() + timedelta(hours=1), source="iam.amazonaws.com", event_id="s-later")]))
    outputs = _outputs(make_connector(moto_server.session, endpoint_url=moto_server.url,
                                      cloudtrail_reader=reader).stream("cloudtrail"))
    assert [o[1] for o in outputs if o[0] == "item"] == ["s-now"]
    assert not [o for o in outputs if o[0] == "checkpoint" and key in o[1].values()]
