"""The access object the AWS streams share: it builds a boto3 client only when a stream needs it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
from conftest import utcnow

from connectors.sdk.items import Cursor


def test_only_the_running_stream_builds_a_client(moto_session: boto3.Session, make_connector: Any) -> None:
    """Building, checking and declaring every stream builds no client; running one builds its own only."""
    built: list[str] = []
    moto_session.events.register("creating-client-class",
                                 lambda event_name, **_: built.append(event_name.rsplit(".", 1)[1]))
    aws = make_connector(moto_session)
    aws.check()
    streams = {name: aws.stream(name) for name in aws.stream_names()}
    assert built == []
    now = utcnow()
    assert list(streams["rds_snapshots"].fetch(Cursor(None, now, now - timedelta(days=1)))) == []
    assert built == ["rds"]
    aws.close()
