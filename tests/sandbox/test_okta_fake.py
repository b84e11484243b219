"""The fake Okta as a real httpx client sees it: auth, rate-limit headers, Link paging, users, seed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from random import Random

import httpx
import pytest

from sandbox.okta import DEFAULT_TOKEN, FakeOkta, RateLimit
from sandbox.okta_data import EXCEPTION_LOGINS, OktaOrg, format_published, make_event, seed_org

NOW = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
ACTOR = {"id": "00uactor000000000001", "alternateId": "a@example.com", "displayName": "A"}


def _links(response: httpx.Response) -> dict[str, str]:
    out = {}
    for value in response.headers.get_list("link"):
        url, rel = value.split(";")
        out[rel.strip().removeprefix('rel="').rstrip('"')] = url.strip()[1:-1]
    return out


@pytest.fixture
def org() -> OktaOrg:
    return seed_org(seed=11, now=NOW, days=10)


@pytest.fixture
def fake(org: OktaOrg) -> Iterator[FakeOkta]:
    with FakeOkta(org) as server:
        yield server


@pytest.fixture
def client(fake: FakeOkta) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, headers={"Authorization": f"SSWS {DEFAULT_TOKEN}"}) as http:
        yield http


def test_seed_is_deterministic_and_holds_the_known_exceptions() -> None:
    """The same seed and anchor give the same org, with users who can sign in without a real active
    factor (ACTIVE, LOCKED_OUT, PASSWORD_EXPIRED, RECOVERY), a DEPROVISIONED user and events
    sharing a millisecond."""
    first, second = seed_org(seed=3, now=NOW), seed_org(seed=3, now=NOW)
    assert first == second
    assert seed_org(seed=4, now=NOW) != first
    assert len(first.users) == 25
    by_login = {u["profile"]["login"]: u for u in first.users}
    for login in EXCEPTION_LOGINS:
        user = by_login[login]
        assert user["status"] in ("ACTIVE", "PASSWORD_EXPIRED", "RECOVERY", "LOCKED_OUT")
        assert not any(f["status"] == "ACTIVE" and f["factorType"] != "question"
                       for f in first.factors[user["id"]])
    assert Counter(u["status"] for u in first.users)["DEPROVISIONED"] == 1
    published = Counter(e["published"] for e in first.events)
    assert any(n > 1 for n in published.values())
    assert all(e["published"] < format_published(NOW) for e in first.events)
    assert first.events[0]["published"] >= format_published(NOW - timedelta(days=60))
    types = {e["eventType"] for e in first.events}
    assert {"user.session.start", "user.authentication.auth_via_mfa", "user.lifecycle.create",
            "group.user_membership.add", "application.user_membership.add"} <= types


def test_bad_token_is_401_with_okta_error_body(fake: FakeOkta) -> None:
    """A wrong or missing SSWS token gets 401 E0000011 and the rate-limit headers."""
    for headers in ({"Authorization": "SSWS wrong"}, {}):
        response = httpx.get(f"{fake.url}/api/v1/users", headers=headers)
        assert response.status_code == 401
        assert response.json()["errorCode"] == "E0000011"
        assert response.json()["errorSummary"] == "Invalid token provided"
        assert "x-rate-limit-reset" in response.headers


def test_every_answer_carries_rate_limit_headers_and_an_empty_bucket_is_429(fake: FakeOkta,
                                                                           client: httpx.Client) -> None:
    """X-Rate-Limit-* count down on every answer; once exhausted the answer is 429 E0000047."""
    fake.limits["users"] = RateLimit(limit=2, window=3600)
    remaining = []
    for _ in range(3):
        response = client.get("/api/v1/users")
        remaining.append(response.headers["x-rate-limit-remaining"])
        assert response.headers["x-rate-limit-limit"] == "2"
        assert int(response.headers["x-rate-limit-reset"]) > datetime.now(UTC).timestamp()
    assert remaining == ["1", "0", "0"]
    assert response.status_code == 429 and response.json()["errorCode"] == "E0000047"
    assert client.get("/api/v1/logs").status_code == 200  # buckets are per endpoint


def test_bounded_log_pages_follow_separate_link_headers_to_a_last_page_without_next(
    fake: FakeOkta, client: httpx.Client, org: OktaOrg
) -> None:
    """A bounded query pages with an opaque after cursor, one Link header per rel, and its
    last page has no next link; the pages hold every event in the window once, in order."""
    since, until = org.events[10]["published"], org.events[60]["published"]
    response = client.get("/api/v1/logs", params={"since": since, "until": until, "limit": 7,
                                                  "sortOrder": "ASCENDING"})
    assert len(response.headers.get_list("link")) == 2
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen.extend(e["uuid"] for e in response.json())
        links = _links(response)
        assert "self" in links
        if "next" not in links:
            break
        assert "after=" in links["next"]
        response = client.get(links["next"])
    expected = [e["uuid"] for e in fake.events if since <= e["published"] < until]
    assert seen == expected and pages == -(-len(expected) // 7)


def test_polling_query_offers_a_next_link_even_on_its_last_page(fake: FakeOkta, client: httpx.Client,
                                                               org: OktaOrg) -> None:
    """Without until the query is a poll: the last page (even an empty one) still has a next link."""
    since = org.events[-3]["published"]
    response = client.get("/api/v1/logs", params={"since": since, "limit": 100})
    assert len(response.json()) >= 3
    following = client.get(_links(response)["next"])
    assert following.json() == [] and "next" in _links(following)


def test_filter_selects_event_types_and_a_single_uuid(fake: FakeOkta, client: httpx.Client,
                                                     org: OktaOrg) -> None:
    """filter supports eventType eq/sw joined by or, and uuid eq; a bad filter is 400 E0000001."""
    window = {"since": org.events[0]["published"], "until": format_published(NOW), "limit": 1000}
    response = client.get("/api/v1/logs", params={
        **window, "filter": 'eventType sw "user.lifecycle." or eventType eq "group.user_membership.add"'})
    types = {e["eventType"] for e in response.json()}
    assert types and all(t.startswith("user.lifecycle.") or t == "group.user_membership.add" for t in types)
    one = org.events[5]
    response = client.get("/api/v1/logs", params={**window, "filter": f'uuid eq "{one["uuid"]}"'})
    assert [e["uuid"] for e in response.json()] == [one["uuid"]]
    bad = client.get("/api/v1/logs", params={**window, "filter": "eventType gt 1"})
    assert bad.status_code == 400 and bad.json()["errorCode"] == "E0000001"


def test_since_is_inclusive_and_until_exclusive(fake: FakeOkta, client: httpx.Client) -> None:
    """An event published exactly at since is returned; one published exactly at until is not."""
    at = NOW + timedelta(hours=1)
    rng = Random(1)
    fake.add_events([make_event(rng, "user.session.start", at, ACTOR),
                     make_event(rng, "user.session.start", at + timedelta(milliseconds=1), ACTOR)])
    response = client.get("/api/v1/logs", params={
        "since": format_published(at), "until": format_published(at + timedelta(milliseconds=1))})
    assert [e["published"] for e in response.json()] == [format_published(at)]


def test_unfiltered_user_list_leaves_out_deprovisioned_users(fake: FakeOkta, client: httpx.Client) -> None:
    """/api/v1/users omits DEPROVISIONED users; search status eq "DEPROVISIONED" lists them."""
    listed = client.get("/api/v1/users").json()
    assert len(listed) == 24 and all(u["status"] != "DEPROVISIONED" for u in listed)
    gone = client.get("/api/v1/users", params={"search": 'status eq "DEPROVISIONED"'}).json()
    assert [u["status"] for u in gone] == ["DEPROVISIONED"]
    assert client.get("/api/v1/users", params={"filter": 'status eq "DEPROVISIONED"'}).json() == gone


def test_user_list_pages_by_after_id(fake: FakeOkta, client: httpx.Client) -> None:
    """The user list pages with limit and after=<last id>; the last page has no next link."""
    response = client.get("/api/v1/users", params={"limit": 10})
    ids: list[str] = []
    while True:
        ids.extend(u["id"] for u in response.json())
        nxt = _links(response).get("next")
        if nxt is None:
            break
        assert f"after={ids[-1]}" in nxt
        response = client.get(nxt)
    assert len(ids) == len(set(ids)) == 24


def test_factors_of_a_user_and_404_for_an_unknown_one(fake: FakeOkta, client: httpx.Client,
                                                      org: OktaOrg) -> None:
    """Factors come back as Okta lists them; an unknown user id is 404 E0000007."""
    user = org.users[0]
    assert client.get(f"/api/v1/users/{user['id']}/factors").json() == org.factors[user["id"]]
    missing = client.get("/api/v1/users/00unobody00000000000/factors")
    assert missing.status_code == 404 and missing.json()["errorCode"] == "E0000007"


def test_events_added_later_are_served_in_published_order(fake: FakeOkta, client: httpx.Client,
                                                          org: OktaOrg) -> None:
    """The event store is mutable: an event added later appears in place, ties in arrival order."""
    at = org.events[-1]["published"]
    late = make_event(Random(2), "user.lifecycle.suspend", datetime.fromisoformat(at), ACTOR)
    fake.add_events([late])
    response = client.get("/api/v1/logs", params={"since": at, "until": format_published(NOW)})
    uuids = [e["uuid"] for e in response.json()]
    assert uuids[-1] == late["uuid"] and org.events[-1]["uuid"] in uuids[:-1]


def test_injected_rate_limit_fault_looks_like_okta(fake: FakeOkta, client: httpx.Client) -> None:
    """rate_limited() builds a 429 with Okta's headers and error body, resetting shortly."""
    fake.faults.push(fake.rate_limited(reset_in=2))
    response = client.get("/api/v1/logs")
    assert response.status_code == 429
    assert response.headers["x-rate-limit-remaining"] == "0"
    assert response.json()["errorCode"] == "E0000047"
    assert 0 < int(response.headers["x-rate-limit-reset"]) - datetime.now(UTC).timestamp() <= 3


def test_set_status_moves_a_user_and_logs_the_lifecycle_event(fake: FakeOkta, client: httpx.Client) -> None:
    """Deactivating a user by login changes its status and statusChanged as the API lists them and
    appends the user.lifecycle.deactivate event naming it; an unknown login is a KeyError."""
    at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    fake.set_status("ada.lovelace@example.com", "DEPROVISIONED", at)
    listed = client.get("/api/v1/users", params={"filter": 'status eq "DEPROVISIONED"'}).json()
    [ada] = [u for u in listed if u["profile"]["login"] == "ada.lovelace@example.com"]
    assert ada["statusChanged"] == format_published(at)
    [event] = [e for e in fake.events if e["published"] == format_published(at)]
    assert event["eventType"] == "user.lifecycle.deactivate"
    assert event["target"][0]["alternateId"] == "ada.lovelace@example.com"
    with pytest.raises(KeyError):
        fake.set_status("nobody@example.com", "SUSPENDED", at)
