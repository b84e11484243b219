"""The Okta connector over loopback against the fake: SDK contract, auth, paging, cursor, users."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import httpx
import pytest

from connectors.okta import OktaConfig, OktaConnector, event_kind
from connectors.okta.users import DEPROVISIONED, NO_ACTIVE_FACTOR
from connectors.sdk import AuthError, Checkpoint, Cursor, ItemFailure, RetriableError, SourceItem
from connectors.sdk.base import HttpOptions
from connectors.sdk.contract import check_declared, check_errors_typed, check_run
from connectors.sdk.rawjson import split_array
from sandbox._http import Status
from sandbox.okta import DEFAULT_TOKEN, FakeOkta, RateLimit
from sandbox.okta_data import EXCEPTION_LOGINS, OktaOrg, format_published, make_event

Make = Callable[..., OktaConnector]
FAST = HttpOptions(max_attempts=3, deadline=5.0, backoff=0.01, max_backoff=0.05, timeout=0.5)
ADMIN = {"id": "00uadmin000000000001", "alternateId": "admin@example.com", "displayName": "Admin"}


def _relevant(events: list[dict[str, Any]]) -> list[str]:
    return [e["uuid"] for e in events if event_kind(e["eventType"]) is not None]


def _run(connector: OktaConnector, stream: str, value: Any = None,
         ceiling: datetime | None = None) -> list[Any]:
    now = ceiling or datetime.now(UTC)
    return list(connector.stream(stream).fetch(Cursor(value, now, now - timedelta(days=90))))


def _items(outputs: list[Any]) -> list[SourceItem]:
    return [o for o in outputs if isinstance(o, SourceItem)]


def _last_cursor(outputs: list[Any]) -> Any:
    values = [o.cursor for o in outputs if isinstance(o, SourceItem | Checkpoint)]
    return values[-1] if values else None


# -- the SDK contract ----------------------------------------------------------------------


def test_contract_declared() -> None:
    """The connector's streams are listable offline with declared, known kinds."""
    check_declared(OktaConnector)
    assert OktaConnector.stream_ids() == ("okta.system_log", "okta.users")


@pytest.mark.parametrize("stream", ["system_log", "users"])
def test_contract_run(stream: str, connector_for: Make, org: OktaOrg) -> None:
    """Each stream yields keyed, timestamped items with raw bytes and a cursor that never moves back."""
    last = check_run(connector_for(), stream, backfill=timedelta(days=90))
    if stream == "system_log":
        assert last["position"][0] == max(e["published"] for e in org.events if event_kind(e["eventType"]))
        assert check_run(connector_for(), stream, cursor_value=last) == last  # nothing new, no move


@pytest.mark.parametrize("stream", ["system_log", "users"])
def test_contract_errors_typed(stream: str, connector_for: Make, fake: FakeOkta) -> None:
    """A rejected token and an unreachable org both raise typed connector errors."""
    error = check_errors_typed(lambda: connector_for(env={"OKTA_API_TOKEN": "wrong"}), stream)
    assert isinstance(error, AuthError)
    down = FakeOkta(OktaOrg())
    down.start()
    url = down.url
    down.stop()  # nothing listens on its port any more
    error = check_errors_typed(
        lambda: OktaConnector(OktaConfig(org_url=url), env={"OKTA_API_TOKEN": "x"}, http=FAST), stream
    )
    assert isinstance(error, RetriableError) and "connection refused: 127.0.0.1:" in str(error)


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["system_log", "users"])
def test_401_is_one_auth_error_naming_connector_and_variable(stream: str, connector_for: Make,
                                                              fake: FakeOkta) -> None:
    """A rejected token is an AuthError naming okta and $OKTA_API_TOKEN after exactly one request."""
    with pytest.raises(AuthError) as caught:
        _run(connector_for(env={"OKTA_API_TOKEN": "not-the-token"}), stream)
    message = str(caught.value)
    assert message.startswith("okta:") and "$OKTA_API_TOKEN" in message
    assert "not-the-token" not in message
    assert len(fake.requests) == 1 and fake.requests[0].status == 401


def test_unset_token_variable_is_auth_error_without_a_request(connector_for: Make, fake: FakeOkta) -> None:
    """An unset token variable is an AuthError naming it, raised before any request."""
    with pytest.raises(AuthError, match=r"\$OKTA_API_TOKEN is not set"):
        _run(connector_for(env={}), "system_log")
    assert fake.requests == ()


def test_requests_carry_the_ssws_token(connector_for: Make, fake: FakeOkta) -> None:
    """Every request authenticates with Authorization: SSWS <token>."""
    _run(connector_for(), "users")
    assert {r.headers["authorization"] for r in fake.requests} == {f"SSWS {DEFAULT_TOKEN}"}


# -- system log: bounds, kinds, boundaries ---------------------------------------------------


@pytest.mark.parametrize(("event_type", "kind"), [
    ("user.session.start", "access_log"),
    ("user.authentication.auth_via_mfa", "access_log"),
    ("user.authentication.sso", "access_log"),
    ("user.lifecycle.create", "user_lifecycle"),
    ("user.lifecycle.deactivate", "user_lifecycle"),
    ("group.user_membership.add", "access_change"),
    ("application.user_membership.remove", "access_change"),
    ("user.account.privilege.grant", "access_change"),
    ("policy.evaluate_sign_on", None),
    ("user.session.end", None),
    ("user.session.startx", None),
])
def test_event_type_to_kind(event_type: str, kind: str | None) -> None:
    """Sign-ins are access_log, user.lifecycle.* user_lifecycle, memberships access_change, others dropped."""
    assert event_kind(event_type) == kind


def test_first_run_reads_a_bounded_window_of_relevant_events(connector_for: Make, fake: FakeOkta,
                                                             org: OktaOrg) -> None:
    """The first run asks for [floor, ceiling) oldest first, filtered to stored types, and stores
    every relevant event exactly once."""
    now = datetime.now(UTC)
    outputs = _run(connector_for(), "system_log", ceiling=now)
    assert [i.key for i in _items(outputs)] == _relevant(org.events)
    first = fake.requests[0].query
    assert first["since"] == [format_published(now - timedelta(days=90))]
    assert first["until"] == [format_published(now)]
    assert first["sortOrder"] == ["ASCENDING"]
    assert "eventType sw \"user.lifecycle.\"" in first["filter"][0]
    assert all("until" in r.query for r in fake.requests)  # never an open-ended poll


def test_shared_millisecond_across_page_and_run_boundaries(connector_for: Make, fake: FakeOkta,
                                                           org: OktaOrg, anchor: datetime) -> None:
    """Events sharing a published millisecond, split across pages and arriving across runs,
    are each yielded exactly once."""
    rng = Random(5)
    connector = connector_for(page_size=3)
    start = _last_cursor(_run(connector_for(), "system_log"))
    at = anchor + timedelta(minutes=1)
    burst = [make_event(rng, "group.user_membership.add", at, ADMIN) for _ in range(7)]
    fake.add_events(burst)
    first = _run(connector, "system_log", start)
    assert [i.key for i in _items(first)] == [e["uuid"] for e in burst]
    assert fake.count(path_prefix="/api/v1/logs") > 3  # the burst spans several pages
    cursor = _last_cursor(first)
    assert cursor["position"][0] == format_published(at)
    late = [make_event(rng, "group.user_membership.remove", at, ADMIN) for _ in range(4)]
    later = [make_event(rng, "user.lifecycle.suspend", at + timedelta(milliseconds=1), ADMIN)]
    fake.add_events(late + later)
    second = _run(connector, "system_log", cursor)
    assert [i.key for i in _items(second)] == [e["uuid"] for e in late + later]
    assert _items(_run(connector, "system_log", _last_cursor(second))) == []


def test_a_rerun_with_no_new_events_costs_one_request_and_keeps_the_cursor(connector_for: Make,
                                                                          fake: FakeOkta) -> None:
    """From a committed cursor with nothing new, one request returns only already-read events."""
    cursor = _last_cursor(_run(connector_for(), "system_log"))
    fake.clear_log()
    outputs = _run(connector_for(), "system_log", cursor)
    assert outputs == [] and fake.count() == 1


def test_cursor_at_or_past_the_ceiling_reads_nothing(connector_for: Make, fake: FakeOkta) -> None:
    """A cursor already at the run's ceiling makes no request at all."""
    now = datetime.now(UTC)
    assert _run(connector_for(), "system_log", {"position": [format_published(now), []]}, now) == []
    assert fake.requests == ()


def test_events_outside_the_stored_types_never_become_items(connector_for: Make, fake: FakeOkta,
                                                           anchor: datetime,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An irrelevant event type is not stored even if the source sends it; it still moves the cursor."""
    at = anchor + timedelta(minutes=2)
    noise = make_event(Random(9), "user.session.end", at, ADMIN)
    start = _last_cursor(_run(connector_for(), "system_log"))
    # Bypass the server-side filter to see what the client does with an unexpected type.
    fake.add_events([noise])
    monkeypatch.setattr("connectors.okta.system_log.EVENT_FILTER", 'eventType sw "user."')
    outputs = _run(connector_for(), "system_log", start)
    assert _items(outputs) == [] and outputs[-1] == Checkpoint({"position": [noise["published"],
                                                                             [noise["uuid"]]]})


def test_unreadable_event_is_an_item_failure(connector_for: Make, fake: FakeOkta, anchor: datetime) -> None:
    """An event without a published time is reported as an ItemFailure, not a crash, after a
    checkpoint that marks it read, so the next run neither stops at it nor reports it again."""
    start = _last_cursor(_run(connector_for(), "system_log"))
    broken = make_event(Random(3), "user.lifecycle.create", anchor + timedelta(minutes=3), ADMIN)
    fake.add_events([broken])
    broken["published"] = "yesterday"
    outputs = _run(connector_for(), "system_log", start)
    published, seen = start["position"]
    assert outputs == [Checkpoint({"position": [published, [*seen, broken["uuid"]]]}),
                       ItemFailure(broken["uuid"], outputs[1].error)]
    assert _run(connector_for(), "system_log", outputs[0].cursor) == []


# -- normalised evidence -------------------------------------------------------------------


def test_source_url_fetches_the_same_event_bytes(connector_for: Make, fake: FakeOkta) -> None:
    """An event's source_url, fetched with a token, returns exactly the bytes whose hash was recorded."""
    connector = connector_for()
    items = _items(_run(connector, "system_log"))
    for item in (items[0], items[len(items) // 2], items[-1]):
        evidence = connector.stream("system_log").normalise(item)
        assert evidence.source_url is not None and evidence.source_url.startswith(fake.url)
        response = httpx.get(evidence.source_url, headers={"Authorization": f"SSWS {DEFAULT_TOKEN}"})
        [(event, raw)] = split_array(response.content)
        assert event["uuid"] == item.key
        assert hashlib.sha256(raw).digest() == hashlib.sha256(item.raw).digest()


def test_normalised_events_hold_who_what_whom_and_outcome_only(connector_for: Make) -> None:
    """Events normalise to actor, type, outcome, targets and IP, without geolocation or session ids."""
    connector = connector_for()
    stream = connector.stream("system_log")
    by_kind: dict[str, Any] = {}
    for item in _items(_run(connector, "system_log")):
        evidence = stream.normalise(item)
        by_kind.setdefault(evidence.kind, (item, evidence))
        assert evidence.exception is None
    assert set(by_kind) == {"access_log", "user_lifecycle", "access_change"}
    item, evidence = by_kind["access_change"]
    assert evidence.actor == item.obj["actor"]["alternateId"]
    assert {t["type"] for t in evidence.data["targets"]} >= {"User"}
    assert evidence.data["outcome"] == "SUCCESS"
    for _, evidence in by_kind.values():
        text = repr(evidence.data)
        assert "geolocation" not in text and "externalSessionId" not in text and "lat" not in text


# -- users ---------------------------------------------------------------------------------


def test_users_include_deprovisioned_and_flag_active_users_without_an_active_factor(
    connector_for: Make, fake: FakeOkta, org: OktaOrg
) -> None:
    """Every user is read (DEPROVISIONED too) at the run's ceiling, and exactly the ACTIVE users
    with no ACTIVE factor are exceptions."""
    connector = connector_for()
    now = datetime.now(UTC)
    items = _items(_run(connector, "users", ceiling=now))
    assert sorted(i.key for i in items) == sorted(u["id"] for u in org.users)
    assert {i.observed_at for i in items} == {now}
    stream = connector.stream("users")
    evidence = {i.key: stream.normalise(i) for i in items}
    flagged = {e.actor for e in evidence.values() if e.exception}
    assert flagged == set(EXCEPTION_LOGINS)
    assert {e.exception for e in evidence.values() if e.exception} == {
        NO_ACTIVE_FACTOR, "PASSWORD_EXPIRED user has no active MFA factor",
        "RECOVERY user has no active MFA factor",
        "LOCKED_OUT user's only active MFA factors are weak (question)",
        "ACTIVE user's only active MFA factors are weak (question)"}
    [gone] = [e for e in evidence.values() if e.data["status"] == "DEPROVISIONED"]
    assert gone.data["factors"] is None and gone.exception is None
    # A first read is a full read: two listings (unfiltered, then the DEPROVISIONED filter
    # query) and one factors read per other user.
    listings = [r for r in fake.requests if r.path == "/api/v1/users"]
    assert [r.query.get("filter") for r in listings] == [None, [DEPROVISIONED]]
    assert fake.count(path_prefix="/api/v1/users") == 2 + 24
    assert fake.count() == 26


def test_user_evidence_leaves_out_profiles_and_factor_details(connector_for: Make) -> None:
    """User data holds login, email, status and factor types/statuses, never phone numbers or names."""
    connector = connector_for()
    stream = connector.stream("users")
    for item in _items(_run(connector, "users")):
        data = stream.normalise(item).data
        text = repr(data)
        assert "phoneNumber" not in text and "+1-555" not in text and "firstName" not in text
        assert set(data) <= {"user_id", "login", "email", "status", "last_login", "status_changed",
                             "factors", "factors_note", "active_factors", "factors_read_at",
                             "status_read_at"}
        assert data["email"] == data["login"]  # the seed's users sign in with their email
        for factor in data["factors"] or []:
            assert set(factor) == {"id", "type", "provider", "status"}


def test_user_that_vanishes_before_its_factors_are_read_is_an_item_failure(
    connector_for: Make, fake: FakeOkta, org: OktaOrg
) -> None:
    """A 404 on one user's factors is an ItemFailure for that user; the others are still read."""
    victim = org.users[3]["id"]
    fake.faults.push(Status(404, body={"errorCode": "E0000007"}), path_prefix=f"/api/v1/users/{victim}/")
    outputs = _run(connector_for(), "users")
    failures = [o for o in outputs if isinstance(o, ItemFailure)]
    assert [f.key for f in failures] == [victim] and failures[0].error_class == "NotFoundError"
    assert len(_items(outputs)) == 24


def test_user_pages_follow_the_link_header(connector_for: Make, fake: FakeOkta, org: OktaOrg) -> None:
    """With a small page size the user list is read across pages, each user once."""
    items = _items(_run(connector_for(page_size=4), "users"))
    assert sorted(i.key for i in items) == sorted(u["id"] for u in org.users)
    assert fake.count(path_prefix="/api/v1/users", method="GET") - 24 == 6 + 1


# -- rate limits ----------------------------------------------------------------------------


def test_low_remaining_backs_off_before_the_limit_is_hit(connector_for: Make, fake: FakeOkta,
                                                          anchor: datetime) -> None:
    """With low_remaining set, the connector waits for the reset instead of running into a 429."""
    start = _last_cursor(_run(connector_for(), "system_log"))
    at = anchor + timedelta(minutes=4)
    fresh = [make_event(Random(4), "user.lifecycle.create", at + timedelta(milliseconds=n), ADMIN)
             for n in range(10)]
    fake.add_events(fresh)
    fake.limits["logs"] = RateLimit(limit=4, window=1.0)
    fake.clear_log()
    # Default retry policy: the pre-emptive pause is capped by max_backoff, which FAST keeps tiny.
    items = _items(_run(connector_for(page_size=2, low_remaining=1, http=None), "system_log", start))
    assert [i.key for i in items] == [e["uuid"] for e in fresh]
    assert fake.count() >= 5  # more requests than one window allows
    assert [r.status for r in fake.requests] == [200] * len(fake.requests)


def test_settle_leaves_the_newest_events_for_the_next_run() -> None:
    """With ``settle``, a run reads only up to its ceiling minus the settle time, never an event after it."""
    from datetime import UTC, datetime, timedelta

    from connectors.okta import OktaConfig, OktaConnector
    from connectors.sdk import Cursor, SourceItem
    from sandbox.okta import FakeOkta
    from sandbox.okta_data import seed_org

    now = datetime.now(UTC)
    with FakeOkta(seed_org(now=now, days=2)) as fake:
        config = OktaConfig(org_url=fake.url, settle=timedelta(hours=6))
        connector = OktaConnector(config, env={"OKTA_API_TOKEN": fake.token})
        stream = connector.stream("system_log")
        items = [o for o in stream.fetch(Cursor(None, now, now - timedelta(days=3)))
                 if isinstance(o, SourceItem)]
        connector.close()
    assert items and max(i.observed_at for i in items) < now - timedelta(hours=6)
