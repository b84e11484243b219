"""The fake Jira Cloud: wire behaviour the jira client depends on, auth, faults, and its data set."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jira
import pytest
import requests
from jira.exceptions import JIRAError

from sandbox._jira_data import CHANGE_FLOW
from sandbox.jira import DEFAULT_EMAIL, DEFAULT_TOKEN, FakeJira

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeJira]:
    with FakeJira.seeded(now=NOW) as server:
        yield server


def _client(fake: FakeJira, token: str = DEFAULT_TOKEN, **kw: Any) -> jira.JIRA:
    return jira.JIRA(server=fake.url, basic_auth=(DEFAULT_EMAIL, token), max_retries=0, **kw)


def _all(client: jira.JIRA, jql: str, page: int = 100, **kw: Any) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    token = None
    while True:
        body = client.enhanced_search_issues(jql, nextPageToken=token, maxResults=page,
                                             json_result=True, **kw)
        issues.extend(body["issues"])
        if body["isLast"]:
            assert "nextPageToken" not in body
            return issues
        token = body["nextPageToken"]


def test_the_jira_client_sees_a_cloud_site(fake: FakeJira) -> None:
    """The client's serverInfo call finds deploymentType Cloud, which its enhanced search requires."""
    client = _client(fake)
    assert client.deploymentType == "Cloud"
    assert client.server_info()["versionNumbers"][0] >= 1000
    assert client.myself()["timeZone"] == "UTC"


def test_wrong_credentials_get_401_on_every_endpoint(fake: FakeJira) -> None:
    """A wrong API token is refused with 401, before any data is served."""
    with pytest.raises(JIRAError) as caught:
        _client(fake, token="wrong")
    assert caught.value.status_code == 401
    for path in ("/rest/api/2/search/jql", "/rest/api/2/issue/CHG-1/changelog", "/rest/api/2/field"):
        assert requests.get(fake.url + path, timeout=5).status_code == 401


def test_search_pages_with_next_page_token_until_is_last(fake: FakeJira) -> None:
    """Every matching issue comes exactly once across pages, in ORDER BY updated ASC order."""
    client = _client(fake)
    issues = _all(client, "project = CHG ORDER BY updated ASC", page=7, fields=["updated"])
    keys = [i["key"] for i in issues]
    assert len(keys) == len(set(keys)) == 40
    updated = [i["fields"]["updated"] for i in issues]
    assert [datetime.strptime(u, "%Y-%m-%dT%H:%M:%S.%f%z") for u in updated] == sorted(
        datetime.strptime(u, "%Y-%m-%dT%H:%M:%S.%f%z") for u in updated)
    assert fake.searches() == 6  # 40 issues, 7 a page


def test_a_page_token_from_another_query_is_refused(fake: FakeJira) -> None:
    """A nextPageToken only continues the query that issued it (400 otherwise)."""
    client = _client(fake)
    first = client.enhanced_search_issues("project = CHG", maxResults=5, json_result=True)
    with pytest.raises(JIRAError) as caught:
        client.enhanced_search_issues("project = INC", nextPageToken=first["nextPageToken"],
                                      json_result=True)
    assert caught.value.status_code == 400


def test_without_fields_a_search_returns_ids_only(fake: FakeJira) -> None:
    """Like Cloud's /search/jql, no ``fields`` parameter means no fields; named ones are returned."""
    body = requests.get(fake.url + "/rest/api/2/search/jql", params={"jql": "project = INC"},
                        auth=(DEFAULT_EMAIL, DEFAULT_TOKEN), timeout=5).json()
    assert body["issues"][0]["fields"] == {}
    named = _all(_client(fake), "project = INC", fields=["summary", "status"])
    assert set(named[0]["fields"]) == {"summary", "status"}


def test_the_legacy_search_is_gone(fake: FakeJira) -> None:
    """The removed /rest/api/2/search answers 410 Gone, as Atlassian's does."""
    response = requests.get(fake.url + "/rest/api/2/search", params={"jql": "project = CHG"},
                            auth=(DEFAULT_EMAIL, DEFAULT_TOKEN), timeout=5)
    assert response.status_code == 410
    assert "search/jql" in response.json()["errorMessages"][0]


def test_jql_dates_are_read_in_the_users_time_zone() -> None:
    """A JQL date literal is wall time in the API user's zone, not UTC."""
    with FakeJira.seeded(now=NOW, time_zone="Pacific/Kiritimati") as fake:  # UTC+14
        client = _client(fake)
        key = fake.data.add_issue("CHG", "boundary", reporter="bob@example.com",
                                  created=datetime(2026, 3, 2, 11, 59, tzinfo=UTC))
        # 11:59 UTC is 01:59 on 3 March in Kiritimati.
        after = _all(client, f'key = {key} AND updated >= "2026-03-03 01:59"', fields=["updated"])
        before = _all(client, f'key = {key} AND updated >= "2026-03-02 12:00"', fields=["updated"])
        assert [i["key"] for i in after] == [key] and [i["key"] for i in before] == [key]
        late = _all(client, f'key = {key} AND updated >= "2026-03-03 02:00"', fields=["updated"])
        assert late == []
        assert after[0]["fields"]["updated"].endswith("+1400")


def test_unknown_fields_and_projects_are_400(fake: FakeJira) -> None:
    """JQL naming an unknown field or project is rejected with Jira's error message."""
    client = _client(fake)
    for jql, phrase in (("colour = red", "does not exist"), ("project = NOPE", "'NOPE' does not exist")):
        with pytest.raises(JIRAError) as caught:
            client.enhanced_search_issues(jql, json_result=True)
        assert caught.value.status_code == 400 and phrase in (caught.value.text or "")


def test_embedded_changelog_is_truncated_and_the_changelog_endpoint_pages(fake: FakeJira) -> None:
    """A long changelog is cut in search results (total > maxResults); /changelog pages it all."""
    key = fake.cases["long_changelog"]
    [issue] = _all(_client(fake), f"key = {key}", fields=["status"], expand="changelog")
    log = issue["changelog"]
    assert log["total"] > log["maxResults"] == len(log["histories"]) == 100
    statuses = [i["toString"] for h in log["histories"] for i in h["items"] if i["field"] == "status"]
    assert "Approved" not in statuses  # the approval is in the part a search leaves out
    pages: list[dict[str, Any]] = []
    start = 0
    while True:
        body = requests.get(f"{fake.url}/rest/api/2/issue/{key}/changelog",
                            params={"startAt": start, "maxResults": 50},
                            auth=(DEFAULT_EMAIL, DEFAULT_TOKEN), timeout=5).json()
        pages.extend(body["values"])
        start += len(body["values"])
        if body["isLast"]:
            break
    assert len(pages) == log["total"]
    assert [h["created"] for h in pages] == sorted(h["created"] for h in pages)  # oldest first


def test_rate_limit_sends_jira_cloud_headers(fake: FakeJira) -> None:
    """An injected rate limit is a 429 with Retry-After, an ISO X-RateLimit-Reset and a reason."""
    fake.rate_limit(retry_after=3)
    response = requests.get(fake.url + "/rest/api/2/serverInfo", auth=(DEFAULT_EMAIL, DEFAULT_TOKEN),
                            timeout=5)
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    reset = datetime.fromisoformat(response.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
    assert timedelta(0) < reset - datetime.now(UTC) <= timedelta(seconds=4)
    assert response.headers["RateLimit-Reason"]


def test_seeded_data_is_deterministic_and_holds_the_known_cases() -> None:
    """The same seed and anchor give the same issues; the known exceptions are there."""
    a, b = FakeJira.seeded(now=NOW), FakeJira.seeded(now=NOW)
    assert [(i.key, i.status, i.updated, len(i.histories)) for i in a.data.snapshot()] == [
        (i.key, i.status, i.updated, len(i.histories)) for i in b.data.snapshot()]
    other = FakeJira.seeded(now=NOW, seed_value=8)
    assert [i.updated for i in other.data.snapshot()] != [i.updated for i in a.data.snapshot()]
    issues = {i.key: i for i in a.data.snapshot()}
    assert all(NOW - timedelta(days=61) < i.created and i.updated < NOW for i in issues.values())
    unapproved = issues[a.cases["unapproved"]]
    assert unapproved.status == "Done"
    assert all(c.to_string != "Approved" for h in unapproved.histories for c in h.items)
    assert issues[a.cases["approved"]].status == "Done"
    assert len(issues[a.cases["long_changelog"]].histories) > 100
    assert {i.project for i in issues.values()} == {"CHG", "INC"}


def test_mutations_show_in_the_next_search(fake: FakeJira) -> None:
    """A transition made between runs changes status, resolution and updated as Jira would."""
    key = fake.cases["open"]
    client = _client(fake)
    at = NOW + timedelta(minutes=1)
    for status in CHANGE_FLOW[2:]:
        at += timedelta(minutes=1)
        fake.data.transition(key, status, by="alice@example.com", at=at)
    [issue] = _all(client, f"key = {key}", fields=["status", "resolution", "resolutiondate", "updated"],
                   expand="changelog")
    assert issue["fields"]["status"]["name"] == "Done"
    assert issue["fields"]["resolution"] == {"name": "Done"}
    assert issue["fields"]["updated"] == issue["fields"]["resolutiondate"] == "2026-03-02T12:04:00.000+0000"
    assert issue["changelog"]["total"] == 4


def test_a_change_closed_as_wont_do_is_served_with_its_resolution(fake: FakeJira) -> None:
    """The seeded not-delivered change is Done with resolution Won't Do, never having passed Approved,
    and a search returns that resolution and its changelog entry."""
    key = fake.cases["not_delivered"]
    [issue] = _all(_client(fake), f"key = {key}", fields=["status", "resolution"], expand="changelog")
    assert issue["fields"]["status"]["name"] == "Done" and issue["fields"]["resolution"] == {"name": "Won't Do"}
    changes = [(i["field"], i["toString"]) for h in issue["changelog"]["histories"] for i in h["items"]]
    assert ("resolution", "Won't Do") in changes and ("status", "Approved") not in changes
