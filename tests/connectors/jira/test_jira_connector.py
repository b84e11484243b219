"""The Jira connector with the real `jira` client over loopback against the fake Jira Cloud."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.jira import JiraConfig, JiraConnector
from connectors.jira._client import JiraApi, RetryingAdapter
from connectors.sdk.base import HttpOptions
from connectors.sdk.contract import check_declared, check_errors_typed, check_run
from connectors.sdk.errors import AuthError, FatalError, RetriableError
from connectors.sdk.items import Cursor, ItemFailure, SourceItem
from sandbox._http import Drop, Slow, Status, Truncated
from sandbox.jira import DEFAULT_EMAIL, DEFAULT_TOKEN, FakeJira

MakeConnector = Any
ENV = {"JIRA_EMAIL": DEFAULT_EMAIL, "JIRA_API_TOKEN": DEFAULT_TOKEN}
FAST = HttpOptions(max_attempts=6, deadline=30.0, backoff=0.01, max_backoff=0.05, timeout=5.0)


def _items(connector: JiraConnector, stream: str, value: Any = None) -> list[SourceItem]:
    now = datetime.now(UTC)
    out = list(connector.stream(stream).fetch(Cursor(value, now, now - timedelta(days=90))))
    assert not [o for o in out if isinstance(o, ItemFailure)]
    return [o for o in out if isinstance(o, SourceItem)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_contract_declared_and_run(make_connector: MakeConnector) -> None:
    """Both streams pass the SDK contract: declared offline, items keyed, cursor monotone."""
    check_declared(JiraConnector)
    connector = make_connector()
    for stream in ("change_tickets", "incidents"):
        last = check_run(connector, stream, backfill=timedelta(days=90))
        assert isinstance(last, list) and isinstance(last[0], str)
        assert check_run(connector, stream, cursor_value=last) == last  # nothing new: cursor stays


def test_contract_errors_are_typed(make_connector: MakeConnector, fake: FakeJira) -> None:
    """A rejected token is an AuthError and an unreachable site a RetriableError, never a raw exception."""
    refused = check_errors_typed(lambda: make_connector(env={**ENV, "JIRA_API_TOKEN": "nope"}), "change_tickets")
    assert isinstance(refused, AuthError)
    quick = HttpOptions(max_attempts=2, backoff=0.01, max_backoff=0.01, timeout=2.0, deadline=5.0)
    gone = check_errors_typed(
        lambda: make_connector(url=f"http://127.0.0.1:{_free_port()}", http=quick), "incidents")
    assert isinstance(gone, RetriableError)


def test_401_names_both_env_vars_after_one_request(make_connector: MakeConnector, fake: FakeJira) -> None:
    """A rejected login is one request, and the error names $JIRA_EMAIL and $JIRA_API_TOKEN; the
    second stream does not ask again."""
    connector = make_connector(env={**ENV, "JIRA_API_TOKEN": "expired"})
    for stream in ("change_tickets", "incidents"):
        with pytest.raises(AuthError) as caught:
            _items(connector, stream)
        assert "$JIRA_EMAIL" in str(caught.value) and "$JIRA_API_TOKEN" in str(caught.value)
        assert "expired" not in str(caught.value)
    assert len(fake.requests) == 1 and fake.requests[0].status == 401


def test_change_tickets_carry_transitions_and_the_approval_rule(make_connector: MakeConnector,
                                                               fake: FakeJira) -> None:
    """A change Done without passing Approved is an exception; an approved one is not, with its approver."""
    connector = make_connector()
    stream = connector.stream("change_tickets")
    items = {i.key: i for i in _items(connector, "change_tickets")}
    assert len(items) == 40
    bad = stream.normalise(items[fake.cases["unapproved"]])
    assert bad.exception == "change resolved (Done) without passing the 'Approved' status"
    assert bad.data["approved"] is False and bad.data["approvers"] == []
    assert [t["to"] for t in bad.data["transitions"]] == ["In Progress", "Done"]
    good = stream.normalise(items[fake.cases["approved"]])
    assert good.exception is None and good.data["approved"] is True
    assert [t["to"] for t in good.data["transitions"]] == ["Awaiting Approval", "Approved", "In Progress", "Done"]
    approval = good.data["transitions"][1]
    assert approval["by"] in ("alice@example.com", "frank@example.com") and good.actor == approval["by"]
    assert approval["at"].endswith("Z") and approval["from"] == "Awaiting Approval"
    assert good.source_url == f"{fake.url}/browse/{fake.cases['approved']}"
    waiting = stream.normalise(items[fake.cases["open"]])
    assert waiting.exception is None and waiting.data["approved"] is False  # not resolved yet
    exceptions = [k for k, i in items.items() if stream.normalise(i).exception]
    assert exceptions == [fake.cases["unapproved"]]


def test_approval_status_is_configurable(make_connector: MakeConnector, fake: FakeJira) -> None:
    """With another approval status configured, changes that never reached it are exceptions."""
    connector = make_connector(approval_status="In Progress")
    stream = connector.stream("change_tickets")
    items = {i.key: i for i in _items(connector, "change_tickets")}
    assert stream.normalise(items[fake.cases["unapproved"]]).exception is None
    assert stream.normalise(items[fake.cases["approved"]]).data["approval_status"] == "In Progress"


def test_truncated_changelog_is_fetched_in_full(make_connector: MakeConnector, fake: FakeJira) -> None:
    """A change whose approval lies outside the changelog a search embeds is still seen approved."""
    connector = make_connector()
    key = fake.cases["long_changelog"]
    [item] = [i for i in _items(connector, "change_tickets") if i.key == key]
    evidence = connector.stream("change_tickets").normalise(item)
    assert evidence.exception is None and evidence.data["approved"] is True
    assert len(item.obj["changelog"]["histories"]) == item.obj["changelog"]["total"] > 100
    assert fake.count("GET", f"/rest/api/2/issue/{key}/changelog") == 2  # 100 a page
    assert fake.count(path_prefix="/rest/api/2/issue/") == 2  # only the truncated one


def test_incidents_carry_resolution_and_time_to_resolve(make_connector: MakeConnector) -> None:
    """Incidents are filed with their transitions and seconds to resolve, never as exceptions."""
    connector = make_connector()
    stream = connector.stream("incidents")
    evidence = [stream.normalise(i) for i in _items(connector, "incidents")]
    assert len(evidence) == 12 and all(e.kind == "incident" and e.exception is None for e in evidence)
    resolved = [e for e in evidence if e.data["resolved"]]
    assert resolved and all(e.data["time_to_resolve_seconds"] > 0 for e in resolved)
    assert all(e.data["transitions"][-1]["to"] == "Resolved" for e in resolved)


def test_only_the_enhanced_search_is_used(make_connector: MakeConnector, fake: FakeJira) -> None:
    """Searches go to /search/jql; the removed legacy /search is never called."""
    connector = make_connector()
    _items(connector, "change_tickets")
    _items(connector, "incidents")
    assert fake.searches() == 2
    assert not [r for r in fake.requests if r.path.rstrip("/").endswith("/search")]


def test_boundary_ties_are_neither_lost_nor_repeated(make_connector: MakeConnector, fake: FakeJira) -> None:
    """Issues updated at the same instant as the cursor are skipped if stored, taken if new."""
    connector = make_connector()
    last = check_run(connector, "change_tickets", backfill=timedelta(days=90))
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    first = fake.data.add_issue("CHG", "tie one", reporter="bob@example.com", created=at)
    second = fake.data.add_issue("CHG", "tie two", reporter="bob@example.com", created=at)
    items = _items(connector, "change_tickets", last)
    assert [i.key for i in items] == [first, second]
    assert items[-1].cursor == [at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), first, second]
    third = fake.data.add_issue("CHG", "tie three", reporter="bob@example.com", created=at)
    assert [i.key for i in _items(connector, "change_tickets", items[-1].cursor)] == [third]


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Australia/Lord_Howe"])
def test_incremental_runs_lose_nothing_in_any_user_time_zone(zone: str) -> None:
    """With the API user in UTC+14, UTC-11 or a half-hour DST zone, an update after the cursor is found."""
    with FakeJira.seeded(now=datetime.now(UTC), time_zone=zone) as fake:
        connector = JiraConnector(_config(fake), env=ENV, http=FAST)
        key = fake.cases["open"]
        fake.data.transition(key, "Approved", by="frank@example.com",
                             at=datetime.now(UTC) - timedelta(minutes=3))
        last = check_run(connector, "change_tickets", backfill=timedelta(days=90))
        fake.data.transition(key, "In Progress", by="bob@example.com")  # minutes after the cursor
        fake.clear_log()
        assert [i.key for i in _items(connector, "change_tickets", last)] == [key]
        assert fake.searches() == 1
        connector.close()


def _config(fake: FakeJira) -> JiraConfig:
    return JiraConfig(url=fake.url, email_env="JIRA_EMAIL", token_env="JIRA_API_TOKEN",
                      change_jql="project = CHG")


def _api(fake: FakeJira, options: HttpOptions, slept: list[float]) -> JiraApi:
    adapter = RetryingAdapter(options, sleep=slept.append)
    api = JiraApi(fake.url, DEFAULT_EMAIL, DEFAULT_TOKEN, email_env="JIRA_EMAIL",
                  token_env="JIRA_API_TOKEN", options=options, adapter=adapter)
    api.connect()
    return api


def test_retry_after_and_rate_limit_reset_are_honoured(fake: FakeJira) -> None:
    """A 429's Retry-After, or without it Jira's ISO X-RateLimit-Reset, sets the least wait before retrying."""
    slept: list[float] = []
    api = _api(fake, FAST, slept)
    fake.rate_limit(retry_after=7, path_prefix="/rest/api/2/search/jql")
    reset = (datetime.now(UTC) + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake.faults.push(Status(429, [("X-RateLimit-Reset", reset)]), path_prefix="/rest/api/2/search/jql")
    pages = list(api.search("project = INC"))
    assert len(pages[0]["issues"]) == 12
    assert slept[0] >= 7 and 18 <= slept[1] <= 21
    api.close()


def test_transient_failures_are_retried_per_request(fake: FakeJira) -> None:
    """500/502/503/504, a truncated body, a dropped connection and a slow answer are each retried."""
    slept: list[float] = []
    # Two attempts beyond the queued faults and a 1 s timeout: on a loaded 2-core machine a
    # healthy answer once took longer than 0.5 s, which spent the last attempt (the slow fault
    # below still outlasts the timeout).
    options = HttpOptions(max_attempts=8, deadline=30.0, backoff=0.01, max_backoff=0.05, timeout=1.0)
    api = _api(fake, options, slept)
    prefix = "/rest/api/2/search/jql"
    for fault in (Status(500), Status(502), Status(503), Status(504), Truncated()):
        fake.faults.push(fault, path_prefix=prefix)
    fake.faults.push(Drop(), path_prefix="/rest/api/2/issue/")
    fake.faults.push(Slow(2.0), path_prefix="/rest/api/2/issue/")
    pages = list(api.search("project = CHG"))
    assert len(pages[0]["issues"]) == 40 and fake.searches() == 6
    assert len(api.changelog("CHG-12")) > 100
    assert len(slept) == 7 and fake.faults.pending == 0
    api.close()


def test_retries_are_bounded(fake: FakeJira) -> None:
    """A source that keeps failing is given up after max_attempts requests, as a RetriableError."""
    slept: list[float] = []
    options = HttpOptions(max_attempts=3, deadline=30.0, backoff=0.01, max_backoff=0.05, timeout=2.0)
    api = _api(fake, options, slept)
    fake.faults.push(Status(503), times=10, path_prefix="/rest/api/2/search/jql")
    with pytest.raises(RetriableError, match="503"):
        list(api.search("project = CHG"))
    assert fake.searches() == 3 and len(slept) == 2
    fake.faults.clear()
    fake.rate_limit(retry_after=600, path_prefix="/rest/api/2/search/jql")
    with pytest.raises(RetriableError, match="429"):  # asks for longer than the request deadline
        list(api.search("project = CHG"))
    assert fake.searches() == 4
    api.close()


def test_bad_jql_and_data_center_are_fatal(make_connector: MakeConnector) -> None:
    """JQL Jira rejects is a FatalError quoting Jira; a non-Cloud site is refused before searching."""
    connector = make_connector(change_jql="project = NOPE")
    with pytest.raises(FatalError, match="'NOPE' does not exist") as caught:
        _items(connector, "change_tickets")
    assert not isinstance(caught.value, AuthError)
    with FakeJira(deployment_type="Server") as server:
        config = _config(server)
        dc = JiraConnector(config, env=ENV, http=FAST)
        with pytest.raises(FatalError, match="needs Jira Cloud"):
            _items(dc, "change_tickets")
        assert server.searches() == 0
        dc.close()
