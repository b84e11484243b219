"""okta.users reads factors incrementally: full reads at most every factors_full_every, changes from the System Log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from connectors.okta import OktaConnector
from connectors.okta.users import DEPROVISIONED, FACTOR_EVENTS, UsersStream
from connectors.sdk import Checkpoint, Cursor, SourceItem
from connectors.sdk.contract import check_run
from sandbox._http import Status
from sandbox.okta import FakeOkta
from sandbox.okta_data import format_published

Make = Callable[..., OktaConnector]
PUSH = {"id": "opfNEWFACTOR00000001", "factorType": "push", "provider": "OKTA", "status": "ACTIVE",
        "vendorName": "OKTA", "profile": {"credentialId": "new", "deviceType": "SmartPhone_IPhone"}}


def _run(connector: OktaConnector, value: Any, ceiling: datetime) -> tuple[dict[str, SourceItem], Any]:
    """One okta.users fetch: the items by user id and the final cursor."""
    outputs = list(connector.stream("users").fetch(Cursor(value, ceiling, ceiling - timedelta(days=90))))
    [checkpoint] = [o for o in outputs if isinstance(o, Checkpoint)]
    return {o.key: o for o in outputs if isinstance(o, SourceItem)}, checkpoint.cursor


def _factor_reads(fake: FakeOkta) -> list[str]:
    return sorted(r.path.split("/")[4] for r in fake.requests if r.path.endswith("/factors"))


def _signing_in(fake: FakeOkta) -> list[str]:
    return sorted(u["id"] for u in fake.users if u["status"] != "DEPROVISIONED")


def test_a_run_without_factor_changes_reads_no_factors(connector_for: Make, fake: FakeOkta) -> None:
    """Within factors_full_every and with no factor event in the System Log, a run lists the users
    and asks the log once, reads no factors, and still yields one record per user carrying the
    factors read before with the time they were read."""
    connector = connector_for()
    first_at = datetime.now(UTC)
    first, cursor = _run(connector, None, first_at)
    assert _factor_reads(fake) == _signing_in(fake)
    fake.clear_log()
    second_at = first_at + timedelta(minutes=15)
    second, _ = _run(connector, cursor, second_at)
    assert _factor_reads(fake) == []
    assert fake.count(path_prefix="/api/v1/users") == 1  # the listing: one page
    [log] = [r for r in fake.requests if r.path == "/api/v1/logs"]
    assert log.query["filter"] == [FACTOR_EVENTS]
    assert log.query["since"] == [format_published(first_at)]
    assert log.query["until"] == [format_published(second_at)]
    stream = connector.stream("users")
    assert set(second) == set(first)
    for user_id, item in second.items():
        before, after = stream.normalise(first[user_id]), stream.normalise(item)
        assert after.data["factors"] == before.data["factors"] and after.exception == before.exception
        expected = None if before.data["status"] == "DEPROVISIONED" else format_published(first_at)
        assert after.data["factors_read_at"] == before.data["factors_read_at"] == expected
        assert item.observed_at == second_at


def test_changed_and_new_users_are_read_again(connector_for: Make, fake: FakeOkta) -> None:
    """A user the System Log shows with a factor change and a user who is new have their factors
    read (and say so in factors_read_at); nobody else's are."""
    connector = connector_for()
    first_at = datetime.now(UTC) - timedelta(seconds=5)
    _, cursor = _run(connector, None, first_at)
    changed = next(u for u in fake.users if u["status"] == "ACTIVE")
    fake.change_factors(changed["id"], [PUSH])
    newcomer = {**changed, "id": "00unewcomer000000001",
                "profile": {**changed["profile"], "login": "new.person@example.com"}}
    fake.put_user(newcomer, [])
    fake.clear_log()
    second_at = datetime.now(UTC) + timedelta(milliseconds=10)  # the log's until is exclusive
    second, _ = _run(connector, cursor, second_at)
    assert _factor_reads(fake) == sorted([changed["id"], newcomer["id"]])
    stream = connector.stream("users")
    now_read = stream.normalise(second[changed["id"]]).data
    assert now_read["factors"] == [{"id": PUSH["id"], "type": "push", "provider": "OKTA", "status": "ACTIVE"}]
    assert now_read["factors_read_at"] == format_published(second_at)
    fresh = stream.normalise(second[newcomer["id"]])
    assert fresh.data["factors_read_at"] == format_published(second_at)
    assert fresh.exception == "ACTIVE user has no active MFA factor"
    others = {k for k in second if k not in (changed["id"], newcomer["id"])}
    assert {stream.normalise(second[k]).data["factors_read_at"] for k in others} <= {
        format_published(first_at), None}


def test_an_admin_reset_names_the_target_user(connector_for: Make, fake: FakeOkta) -> None:
    """A factor reset by an admin (actor another user) re-reads the target user's factors."""
    connector = connector_for()
    _, cursor = _run(connector, None, datetime.now(UTC) - timedelta(seconds=5))
    target = [u for u in fake.users if u["status"] == "ACTIVE"][3]
    admin = {"id": "00uadmin000000000001", "type": "User", "alternateId": "admin@example.com",
             "displayName": "Admin"}
    fake.change_factors(target["id"], [], event_type="user.mfa.factor.reset_all", actor=admin)
    fake.clear_log()
    second, _ = _run(connector, cursor, datetime.now(UTC) + timedelta(milliseconds=10))
    assert target["id"] in _factor_reads(fake)
    assert connector.stream("users").normalise(second[target["id"]]).data["factors"] == []


def test_a_full_read_follows_factors_full_every(connector_for: Make, fake: FakeOkta) -> None:
    """Once factors_full_every has passed since the last full read, every user's factors are read
    again, and the next full read is counted from then."""
    connector = connector_for(factors_full_every=timedelta(hours=6))
    start = datetime.now(UTC)
    _, cursor = _run(connector, None, start)
    fake.clear_log()
    _, cursor = _run(connector, cursor, start + timedelta(hours=5, minutes=59))
    assert _factor_reads(fake) == []
    fake.clear_log()
    full, cursor = _run(connector, cursor, start + timedelta(hours=6))
    assert _factor_reads(fake) == _signing_in(fake)
    assert {i.obj["factors_read_at"] for i in full.values()} - {None} == {
        format_published(start + timedelta(hours=6))}
    fake.clear_log()
    _run(connector, cursor, start + timedelta(hours=11))
    assert _factor_reads(fake) == []


def test_zero_full_every_reads_every_factor_each_run(connector_for: Make, fake: FakeOkta) -> None:
    """factors_full_every = 0 makes every run a full read, as before incremental reads."""
    connector = connector_for(factors_full_every=timedelta(0))
    start = datetime.now(UTC)
    _, cursor = _run(connector, None, start)
    fake.clear_log()
    _run(connector, cursor, start + timedelta(minutes=1))
    assert _factor_reads(fake) == _signing_in(fake)


def test_an_unreadable_log_makes_the_run_a_full_read(connector_for: Make, fake: FakeOkta) -> None:
    """When the System Log query is refused (not an auth failure), which factors changed is
    unknown, so every user's factors are read."""
    connector = connector_for()
    start = datetime.now(UTC)
    _, cursor = _run(connector, None, start)
    fake.clear_log()
    fake.faults.push(Status(400, body={"errorCode": "E0000001", "errorSummary": "Api validation failed"}),
                     path_prefix="/api/v1/logs")
    _run(connector, cursor, start + timedelta(minutes=15))
    assert _factor_reads(fake) == _signing_in(fake)


def test_the_cursor_keeps_factor_types_never_profiles_and_only_grows(connector_for: Make, fake: FakeOkta) -> None:
    """The cursor holds each factor's id, type, provider and status (no phone numbers), and the
    incremental runs pass the SDK contract, the cursor only moving forward."""
    connector = connector_for()
    start = datetime.now(UTC) - timedelta(minutes=1)
    _, cursor = _run(connector, None, start)
    text = orjson.dumps(cursor).decode()
    assert "+1-555" not in text and "phoneNumber" not in text and "SmartPhone" not in text
    after = check_run(connector, "users", cursor_value=cursor)
    assert after != cursor and after["factors"][0] > cursor["factors"][0]


def test_an_unreadable_cursor_state_is_a_full_read(connector_for: Make, fake: FakeOkta) -> None:
    """A cursor whose factor state is not in the expected shape costs one full read."""
    connector = connector_for()
    _run(connector, {"factors": ["not a time", {}]}, datetime.now(UTC))
    assert _factor_reads(fake) == _signing_in(fake)


@dataclass
class _Departures:
    """A full read, then one ACTIVE user deprovisioned and another deleted, then a second read."""

    first_at: datetime
    first: dict[str, SourceItem]
    second_at: datetime
    second: dict[str, SourceItem]
    cursor: Any
    gone: str  # DEPROVISIONED already at the full read
    leaver: dict[str, Any]
    deleted: dict[str, Any]


def _departures(connector: OktaConnector, fake: FakeOkta) -> _Departures:
    first_at = datetime.now(UTC) - timedelta(seconds=5)
    first, cursor = _run(connector, None, first_at)
    [gone] = [u["id"] for u in fake.users if u["status"] == "DEPROVISIONED"]
    leaver, deleted = [u for u in fake.users if u["status"] == "ACTIVE"][:2]
    fake.set_status(leaver["profile"]["login"], "DEPROVISIONED", datetime.now(UTC))
    fake.delete_user(deleted["id"])
    fake.clear_log()
    second_at = datetime.now(UTC) + timedelta(milliseconds=10)
    second, cursor = _run(connector, cursor, second_at)
    return _Departures(first_at, first, second_at, second, cursor, gone, leaver, deleted)


def _listing_filters(fake: FakeOkta) -> list[Any]:
    return [r.query.get("filter") for r in fake.requests if r.path == "/api/v1/users"]


def _reads_by_id(fake: FakeOkta) -> list[str]:
    return sorted(r.path for r in fake.requests
                  if r.path.startswith("/api/v1/users/") and not r.path.endswith("/factors"))


def _login_of(fake: FakeOkta, user_id: str) -> str:
    """The login of the fake's user ``user_id``."""
    return str(next(u for u in fake.users if u["id"] == user_id)["profile"]["login"])


def test_between_full_reads_deprovisioned_users_are_carried_and_leavers_read_by_id(
    connector_for: Make, fake: FakeOkta
) -> None:
    """Between full reads only the unfiltered listing is read: a user DEPROVISIONED at the full read
    is carried with the time its status was read; a user deprovisioned since is read by id and
    says DEPROVISIONED now; a deleted user has no record; a reactivated one is listed again."""
    connector = connector_for()
    run = _departures(connector, fake)
    gone, leaver, deleted = run.gone, run.leaver, run.deleted
    assert _listing_filters(fake) == [None]  # no DEPROVISIONED listing
    assert _reads_by_id(fake) == sorted([f"/api/v1/users/{leaver['id']}", f"/api/v1/users/{deleted['id']}"])
    assert set(run.second) == set(run.first) - {deleted["id"]}
    stream = connector.stream("users")
    carried = stream.normalise(run.second[gone])
    assert carried.data["status"] == "DEPROVISIONED"
    assert carried.data["status_read_at"] == format_published(run.first_at)
    assert carried.data["login"] == stream.normalise(run.first[gone]).data["login"]
    assert run.second[gone].raw != run.first[gone].raw  # the carried record hashes what the cursor held
    left = stream.normalise(run.second[leaver["id"]])
    assert left.data["status"] == "DEPROVISIONED" and left.data["factors"] is None
    assert left.data["status_read_at"] == format_published(run.second_at)
    assert stream.normalise(run.second[next(iter(set(run.second) - {gone, leaver["id"]}))]).data[
        "status_read_at"] == format_published(run.second_at)

    # Reactivated: listed again, read like any listed user (factors included: it is new to the cursor).
    fake.set_status(_login_of(fake, gone), "ACTIVE", datetime.now(UTC))
    fake.clear_log()
    third_at = datetime.now(UTC) + timedelta(milliseconds=20)
    third, _ = _run(connector, run.cursor, third_at)
    back = stream.normalise(third[gone])
    assert back.data["status"] == "ACTIVE" and back.data["status_read_at"] == format_published(third_at)
    assert gone in _factor_reads(fake)
    assert stream.normalise(third[leaver["id"]]).data["status_read_at"] == format_published(run.second_at)


def test_a_cursor_without_deprovisioned_users_makes_a_full_read(connector_for: Make, fake: FakeOkta) -> None:
    """A cursor written before DEPROVISIONED users were kept in it cannot say who they are: the run
    is a full read (both listings, every factor), never a read missing them."""
    connector = connector_for()
    first_at = datetime.now(UTC) - timedelta(seconds=5)
    _, cursor = _run(connector, None, first_at)
    position, state = cursor["factors"]
    del state["deprovisioned"]
    fake.clear_log()
    second, _ = _run(connector, {"factors": [position, state]}, first_at + timedelta(minutes=15))
    assert _listing_filters(fake) == [None, ['status eq "DEPROVISIONED"']]
    assert _factor_reads(fake) == _signing_in(fake)
    assert len(second) == len(fake.users)


def test_many_leavers_at_once_are_read_by_the_deprovisioned_listing(
    connector_for: Make, fake: FakeOkta, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When more users left than by_id_max, the run reads the DEPROVISIONED listing instead of each
    by id: every DEPROVISIONED user (the earlier one too) is read now, a deleted one has no record."""
    monkeypatch.setattr(UsersStream, "by_id_max", 1)
    connector = connector_for()
    run = _departures(connector, fake)
    assert _listing_filters(fake) == [None, [DEPROVISIONED]]
    assert _reads_by_id(fake) == []
    assert set(run.second) == set(run.first) - {run.deleted["id"]}
    stream = connector.stream("users")
    for user_id in (run.gone, run.leaver["id"]):
        record = stream.normalise(run.second[user_id])
        assert record.data["status"] == "DEPROVISIONED"
        assert record.data["status_read_at"] == format_published(run.second_at)
