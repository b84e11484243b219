"""okta.users takes factor changes from okta.system_log's read of the same log when it has one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.okta import OktaConnector
from connectors.okta._factor_changes import FACTOR_CHANGES, KEEP, FactorChanges
from connectors.sdk import Checkpoint, Cursor, ItemFailure, SourceItem
from sandbox.okta import FakeOkta
from sandbox.okta_data import format_published

Make = Callable[..., OktaConnector]
PUSH = {"id": "opfNEWFACTOR00000002", "factorType": "push", "provider": "OKTA", "status": "ACTIVE",
        "vendorName": "OKTA", "profile": {"credentialId": "new", "deviceType": "SmartPhone_IPhone"}}
T = "2026-12-01T10:00:00.000Z"


def _at(minutes: float) -> str:
    return format_published(datetime(2026, 12, 1, 10, tzinfo=UTC) + timedelta(minutes=minutes))


def _users(connector: OktaConnector, value: Any, ceiling: datetime) -> tuple[dict[str, SourceItem], Any]:
    outputs = list(connector.stream("users").fetch(Cursor(value, ceiling, ceiling - timedelta(days=90))))
    [checkpoint] = [o for o in outputs if isinstance(o, Checkpoint)]
    return {o.key: o for o in outputs if isinstance(o, SourceItem)}, checkpoint.cursor


def _system_log(connector: OktaConnector, ceiling: datetime) -> list[Any]:
    return list(connector.stream("system_log").fetch(Cursor(None, ceiling, ceiling - timedelta(days=90))))


def _factor_reads(fake: FakeOkta) -> list[str]:
    return sorted(r.path.split("/")[4] for r in fake.requests if r.path.endswith("/factors"))


def test_spans_merge_and_answer_only_what_they_cover() -> None:
    """Adjacent or overlapping reads make one span; a user changed inside [since, read_to) is
    named, one before since is not; a since outside the span, or a span ending more than the lag
    before until, is no answer."""
    changes = FactorChanges()
    org = "https://acme.okta.com"
    changes.note(org, _at(0), _at(10), [(_at(2), "u-early"), (_at(8), "u-a")])
    changes.note(org, _at(9), _at(20), [(_at(8), "u-a"), (_at(15), "u-b")])
    assert changes.changed(org, _at(5), _at(20), timedelta(0)) == (_at(20), {"u-a", "u-b"})
    # The span ends at 20: asked up to 25 with 10 minutes of lag allowed, it answers up to 20.
    assert changes.changed(org, _at(5), _at(25), timedelta(minutes=10)) == (_at(20), {"u-a", "u-b"})
    assert changes.changed(org, _at(5), _at(40), timedelta(minutes=10)) is None  # too far behind
    assert changes.changed(org, _at(-1), _at(20), timedelta(0)) is None  # before the span
    assert changes.changed("https://other.okta.com", _at(5), _at(20), timedelta(0)) is None
    # A read after a gap replaces the span: the older one cannot continue any position.
    changes.note(org, _at(30), _at(40), [])
    assert changes.changed(org, _at(5), _at(40), timedelta(0)) is None
    assert changes.changed(org, _at(30), _at(40), timedelta(0)) == (_at(40), set())


def test_spans_keep_at_most_two_days_of_log_time() -> None:
    """A span holds KEEP of log time: an older position is no longer covered, and events before
    the span's start are dropped."""
    changes = FactorChanges()
    org = "https://acme.okta.com"
    changes.note(org, _at(0), _at(60 * 24 * 3), [(_at(1), "u-old"), (_at(60 * 24 * 3 - 1), "u-new")])
    assert changes.changed(org, _at(1), _at(60 * 24 * 3), timedelta(0)) is None
    start = format_published(datetime(2026, 12, 1, 10, tzinfo=UTC) + timedelta(days=3) - KEEP)
    assert changes.changed(org, start, _at(60 * 24 * 3), timedelta(0)) == (_at(60 * 24 * 3), {"u-new"})


def test_users_take_factor_changes_from_the_system_log_read(connector_for: Make, fake: FakeOkta) -> None:
    """After okta.system_log has read the log (and stored the factor event as access_change), okta.users
    reads exactly the changed user's factors and queries no System Log itself; its log position
    is where okta.system_log's read ended."""
    connector = connector_for()
    first_at = datetime.now(UTC) - timedelta(seconds=5)
    _, cursor = _users(connector, None, first_at)
    changed = next(u for u in fake.users if u["status"] == "ACTIVE")
    event = fake.change_factors(changed["id"], [PUSH])
    log_at = datetime.now(UTC) + timedelta(milliseconds=10)  # the log's until is exclusive
    stored = [o for o in _system_log(connector, log_at) if isinstance(o, SourceItem)]
    [factor_event] = [o for o in stored if o.key == event["uuid"]]
    assert connector.stream("system_log").normalise(factor_event).kind == "access_change"
    fake.clear_log()
    second_at = log_at + timedelta(seconds=30)
    second, after = _users(connector, cursor, second_at)
    assert _factor_reads(fake) == [changed["id"]]
    assert fake.count(path_prefix="/api/v1/logs") == 0
    assert after["factors"][0] == format_published(log_at)
    read = connector.stream("users").normalise(second[changed["id"]])
    assert read.data["factors_read_at"] == format_published(second_at)
    assert [f["type"] for f in read.data["factors"]] == ["push"]


def test_users_query_the_log_when_the_system_log_read_is_stale_or_failed(
    connector_for: Make, fake: FakeOkta
) -> None:
    """A system_log read ending more than the interval before okta.users' run, or one that met an
    event it could not place in time, is not used: okta.users asks the log itself."""
    connector = connector_for(interval=timedelta(minutes=15))
    first_at = datetime.now(UTC) - timedelta(hours=2)
    _, cursor = _users(connector, None, first_at)
    _system_log(connector, first_at + timedelta(minutes=1))
    fake.clear_log()
    _users(connector, cursor, first_at + timedelta(minutes=17))  # 16 minutes after the read: stale
    [log] = [r for r in fake.requests if r.path == "/api/v1/logs"]
    assert log.query["since"] == [format_published(first_at)]

    FACTOR_CHANGES.clear()
    now = datetime.now(UTC)
    fake.add_event_at({"uuid": "unplaceable-0001", "published": "2026-09-31T00:00:00.000Z",
                       "eventType": "user.mfa.factor.deactivate"}, now - timedelta(seconds=1))
    outputs = _system_log(connector, now)
    assert any(isinstance(o, ItemFailure) and o.key == "unplaceable-0001" for o in outputs)
    fake.clear_log()
    _users(connector, cursor, now + timedelta(seconds=1))
    assert fake.count(path_prefix="/api/v1/logs") == 1
