"""aws.cloudtrail reads ahead in a bounded pool: the same items in the same order, never more than its depth ahead."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from conftest import BUCKET, REGION, utcnow

from collector.catalog import Catalog, Filing
from collector.pipeline import Pipeline
from connectors.aws.cloudtrail import CloudTrailStream, parse_log_file
from connectors.sdk import Checkpoint, Cursor, ItemFailure, SourceItem
from sandbox.aws_seed import ACCOUNT, event, log_file, log_key, seed_cloudtrail
from storage import Store

FILES = 30


def _seed(s3: Any) -> list[str]:
    """The seeded trail plus ``FILES`` more log files of three events each in one prefix; the
    keys of those files."""
    seed_cloudtrail(s3, BUCKET, utcnow())
    start = (utcnow() - timedelta(days=2)).replace(second=0, microsecond=0)
    keys = []
    for n in range(FILES):
        at = start + timedelta(minutes=5 * n)
        records = [event("CreateAccessKey", at - timedelta(seconds=s), source="iam.amazonaws.com",
                         event_id=f"many-{n:03d}-{s}", params={"userName": f"u{n}"}) for s in range(3)]
        key = log_key(ACCOUNT, "us-west-2", at, unique=f"M{n:03d}")
        s3.put_object(Bucket=BUCKET, Key=key, Body=log_file(records))
        keys.append(key)
    return keys


def _outputs(stream: CloudTrailStream) -> list[tuple[str, Any, Any]]:
    now = utcnow()
    out: list[tuple[str, Any, Any]] = []
    for o in stream.fetch(Cursor(None, now, now - timedelta(days=30))):
        if isinstance(o, SourceItem):
            where = stream.normalise(o).data["source_object"]
            out.append(("item", (o.key, o.raw, o.observed_at), (where["key"], where["sha256"])))
        elif isinstance(o, Checkpoint):
            out.append(("checkpoint", o.cursor, None))
        elif isinstance(o, ItemFailure):
            out.append(("failure", o.key, o.error))
    return out


def test_read_ahead_yields_what_reading_one_object_at_a_time_does(moto_session: Any, make_connector: Any) -> None:
    """With eight readers the stream yields the same items, checkpoints and failures, in the same
    order, as with one; and the items of each file are its parsed records in file order."""
    s3 = moto_session.client("s3", region_name=REGION)
    keys = _seed(s3)
    one = _outputs(make_connector(moto_session, cloudtrail_workers=1).stream("cloudtrail"))
    eight = _outputs(make_connector(moto_session, cloudtrail_workers=8).stream("cloudtrail"))
    assert eight == one and any(kind == "failure" for kind, _, _ in one)
    for key in keys[:3]:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        expected = [raw for _, raw in parse_log_file(body)]
        assert [item[1] for kind, item, where in eight if kind == "item" and where[0] == key] == expected


def test_read_ahead_stores_the_same_records(moto_session: Any, make_connector: Any, tmp_path: Any) -> None:
    """Through the pipeline, one reader and eight readers store the same record ids."""
    _seed(moto_session.client("s3", region_name=REGION))
    stored: list[set[str]] = []
    for workers in (1, 8):
        store = Store.open(f"sqlite:///{tmp_path / f'w{workers}.db'}")
        aws = make_connector(moto_session, cloudtrail_workers=workers)
        Pipeline(store, Filing(Catalog.builtin(), {}), batch_size=7).run(aws.stream("cloudtrail"), aws.config)
        with store.engine.connect() as conn:
            stored.append(set(conn.execute(sa.text("SELECT id FROM evidence")).scalars()))
        store.close()
    assert stored[0] == stored[1] and len(stored[0]) >= 3 * FILES


def _quiet(stats: Any, settled: Any) -> None:
    """Wait until ``settled(stats)`` holds (a safety limit for a slow machine, not a measurement),
    then leave the readers room to start a read past the bound, were there one."""
    deadline = time.monotonic() + 10
    while not settled(stats) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)


def test_read_ahead_never_passes_its_depth(moto_session: Any, make_connector: Any) -> None:
    """While the consumer holds a file, reading runs ahead up to depth files and no further;
    over the whole run no more than depth files are ever read and not yet taken."""
    _seed(moto_session.client("s3", region_name=REGION))
    stream = make_connector(moto_session, cloudtrail_workers=1).stream("cloudtrail")
    assert isinstance(stream, CloudTrailStream) and stream.prefetch_depth == 16 < FILES
    now = utcnow()
    outputs = stream.fetch(Cursor(None, now, now - timedelta(days=30)))
    assert next(o for o in outputs if isinstance(o, SourceItem)).key
    stats = stream.prefetch_stats
    assert stats is not None
    _quiet(stats, lambda st: st.started - st.taken >= st.depth)
    assert stats.started - stats.taken == stats.depth
    rest = list(outputs)
    assert any(isinstance(o, SourceItem) for o in rest)
    assert stats.started == stats.taken > FILES and stats.most_ahead == stats.depth
    assert stats.held_bytes == 0


def test_read_ahead_stops_at_its_byte_budget(moto_session: Any, make_connector: Any) -> None:
    """Once the files read and not yet taken hold the byte budget, no further read starts: with a
    one-byte budget at most one file per reader is ever ahead, and the bytes held never pass
    the budget plus what the readers had in hand."""
    s3 = moto_session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    start = (utcnow() - timedelta(days=2)).replace(second=0, microsecond=0)
    biggest = 0
    for n in range(FILES):
        at = start + timedelta(minutes=5 * n)
        body = log_file([event("CreateAccessKey", at, source="iam.amazonaws.com", event_id=f"b-{n:03d}",
                               params={"userName": f"u{n}"})])
        biggest = max(biggest, sum(len(raw) for _, raw in parse_log_file(body)))
        s3.put_object(Bucket=BUCKET, Key=log_key(ACCOUNT, "us-west-2", at, unique=f"B{n:03d}"), Body=body)
    stream = make_connector(moto_session, cloudtrail_workers=3).stream("cloudtrail")
    assert isinstance(stream, CloudTrailStream)
    stream.prefetch_bytes = 1
    now = utcnow()
    outputs = stream.fetch(Cursor(None, now, now - timedelta(days=30)))
    assert next(o for o in outputs if isinstance(o, SourceItem)).key == "b-000"
    stats = stream.prefetch_stats
    assert stats is not None
    _quiet(stats, lambda st: st.held_bytes >= st.budget)
    assert stats.started - stats.taken <= 3
    keys = [o.key for o in outputs if isinstance(o, SourceItem)]
    assert keys == [f"b-{n:03d}" for n in range(1, FILES)]
    assert stats.most_ahead <= 3 and stats.most_held_bytes <= 1 + 3 * biggest
