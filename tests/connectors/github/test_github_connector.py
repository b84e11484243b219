"""The GitHub connector with real PyGithub over loopback against the fake: contract, rules, faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.github import GithubConnector
from connectors.github.streams import UNREVIEWED
from connectors.sdk.base import HttpOptions
from connectors.sdk.contract import check_declared, check_errors_typed, check_run
from connectors.sdk.errors import AuthError, RetriableError
from connectors.sdk.items import KEEP, Checkpoint, Cursor, ItemFailure, SourceItem
from sandbox._http import Drop, Slow, Status, Truncated
from sandbox.github import FakeGithub, internal_error, secondary_rate_limit, too_many_requests
from sandbox.github_seed import SeededOrg

MakeConnector = Callable[..., GithubConnector]
FAST = HttpOptions(max_attempts=6, backoff=0.01, max_backoff=0.05, timeout=5.0)  # as in conftest.py


def _cursor(value: Any = None, ceiling: datetime | None = None, backfill: timedelta = timedelta(days=365)) -> Cursor:
    ceiling = ceiling or datetime.now(UTC)
    return Cursor(value, ceiling, ceiling - backfill)


def _outputs(connector: GithubConnector, stream: str, cursor: Cursor | None = None) -> list[Any]:
    return list(connector.stream(stream).fetch(cursor or _cursor()))


def _items(connector: GithubConnector, stream: str, cursor: Cursor | None = None) -> list[SourceItem]:
    return [o for o in _outputs(connector, stream, cursor) if isinstance(o, SourceItem)]


def _exceptions(connector: GithubConnector, stream: str, cursor: Cursor | None = None) -> dict[str, str]:
    s = connector.stream(stream)
    found = {}
    for item in _items(connector, stream, cursor):
        reason = s.normalise(item).exception
        if reason:
            found[item.key] = reason
    return found


def _last_cursor(outputs: list[Any]) -> Any:
    values = [o.cursor for o in outputs if isinstance(o, Checkpoint | SourceItem) and o.cursor is not KEEP]
    return values[-1] if values else None


# -- the SDK contract ------------------------------------------------------------------


def test_streams_are_declared_as_the_design_names_them() -> None:
    """The connector declares the four built-in stream IDs with their kinds, offline."""
    check_declared(GithubConnector)
    assert GithubConnector.stream_ids() == (
        "github.pull_requests", "github.branch_protection", "github.org_settings", "github.members",
    )


@pytest.mark.parametrize("stream", ["pull_requests", "branch_protection", "org_settings", "members"])
def test_each_stream_passes_the_contract_run(make_connector: MakeConnector, stream: str) -> None:
    """Each stream yields keyed, tz-aware, byte-carrying items of its kinds with a monotone cursor."""
    last = check_run(make_connector(), stream)
    if stream == "pull_requests":
        assert set(last) == {"acme/api", "acme/infra", "acme/web", "acme/docs"}


def test_errors_from_a_broken_source_are_typed(make_connector: MakeConnector) -> None:
    """A wrong token gives AuthError naming the variable; an unreachable API gives RetriableError."""
    auth = check_errors_typed(lambda: make_connector(token="ghp_wrong"), "pull_requests")
    assert isinstance(auth, AuthError) and auth.env_var == "GITHUB_TOKEN"

    def unreachable() -> GithubConnector:
        return make_connector(base_url="http://127.0.0.1:9")

    assert isinstance(check_errors_typed(unreachable, "org_settings"), RetriableError)


# -- auth ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["pull_requests", "branch_protection", "org_settings"])
def test_bad_credentials_fail_once_with_the_variable_named(
    make_connector: MakeConnector, fake: FakeGithub, stream: str
) -> None:
    """A 401 is an AuthError naming $GITHUB_TOKEN after exactly one request: no retry loop."""
    with pytest.raises(AuthError) as info:
        _outputs(make_connector(token="ghp_wrong"), stream)
    assert "$GITHUB_TOKEN" in str(info.value) and "github" in str(info.value)
    assert [r.status for r in fake.requests] == [401]


def test_forbidden_protection_read_is_an_auth_error_not_retried(
    make_connector: MakeConnector, fake: FakeGithub
) -> None:
    """A plain 403 (token lacks Administration read) is an AuthError after one request to it."""
    path = "/repos/acme/api/branches/main/protection"
    fake.faults.push(Status(403, body={"message": "Resource not accessible by personal access token"}),
                     path_prefix=path)
    with pytest.raises(AuthError) as info:
        _outputs(make_connector(), "branch_protection")
    assert "Resource not accessible" in str(info.value) and "$GITHUB_TOKEN" in str(info.value)
    assert fake.count("GET", path) == 1


def test_missing_token_is_an_auth_error_before_any_request(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """An unset token variable is reported by name and nothing is sent."""
    connector = make_connector(token="")
    with pytest.raises(AuthError, match=r"\$GITHUB_TOKEN is not set"):
        _outputs(connector, "org_settings")
    assert fake.requests == ()


# -- pull requests ---------------------------------------------------------------------


def test_pull_request_exceptions_are_exactly_the_seeded_ones(make_connector: MakeConnector, seeded: SeededOrg) -> None:
    """Unreviewed, self-approved and withdrawn-approval merges, a merge after its approval was
    dismissed and one approved only after it are exceptions; nothing else is."""
    found = _exceptions(make_connector(), "pull_requests")
    known = seeded.known
    assert found == {
        known.pr_unreviewed: UNREVIEWED,
        known.pr_self_approved: UNREVIEWED,
        known.pr_approval_withdrawn: UNREVIEWED,
        known.pr_dismissed_before_merge: UNREVIEWED,
        known.pr_approved_after_merge: UNREVIEWED,
    }


def test_merged_pulls_carry_reviews_merger_and_approvers(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """Every merged pull is one item with its reviews, merger, merge time and approvers; no open or
    unmerged pull is."""
    connector = make_connector()
    items = _items(connector, "pull_requests")
    merged = {f"acme/{r.name}#{p.number}": p for r in fake.org.repos.values() for p in r.pulls if p.merged_at}
    assert {i.key for i in items} == set(merged)
    stream = connector.stream("pull_requests")
    for item in items:
        pull = merged[item.key]
        evidence = stream.normalise(item)
        assert item.observed_at == pull.merged_at
        assert evidence.actor == pull.merged_by == evidence.data["merged_by"]
        assert evidence.data["author"] == pull.author
        assert [(r["user"], r["state"]) for r in evidence.data["reviews"]] == [(r.user, r.state) for r in pull.reviews]
        assert evidence.source_url == f"https://github.example/{item.key.replace('#', '/pull/')}"
    release = [i for i in items if merged[i.key].base == "release"]
    assert release and all(stream.normalise(i).exception is None for i in release)
    assert all(not stream.normalise(i).data["approvers"] for i in release)


def _pull_item(author: str, reviews: list[tuple[str, str]], base: str = "main") -> SourceItem:
    pull = {"number": 1, "title": "t", "user": {"login": author}, "merged_by": {"login": author},
            "merged_at": "2026-11-01T00:00:00Z", "base": {"ref": base}, "head": {"sha": "a" * 40},
            "html_url": "https://github.example/acme/api/pull/1"}
    review_list = [{"user": {"login": u}, "state": s, "submitted_at": "2026-10-31T00:00:00Z"} for u, s in reviews]
    obj = {"pull": pull, "reviews": review_list, "repo": "acme/api", "default_branch": "main"}
    return SourceItem("acme/api#1", datetime(2026, 11, 1, tzinfo=UTC), b"{}", obj)


@pytest.mark.parametrize(
    ("reviews", "base", "failing"),
    [
        ([], "main", True),
        ([("erin", "APPROVED")], "main", True),  # the author's own approval
        ([("bob", "APPROVED"), ("bob", "CHANGES_REQUESTED")], "main", True),
        ([("bob", "APPROVED"), ("bob", "DISMISSED")], "main", True),
        ([("bob", "COMMENTED")], "main", True),
        ([("bob", "PENDING")], "main", True),
        ([("bob", "APPROVED")], "main", False),
        ([("bob", "CHANGES_REQUESTED"), ("bob", "APPROVED")], "main", False),
        ([("bob", "APPROVED"), ("bob", "COMMENTED")], "main", False),  # a comment keeps the approval
        ([("erin", "APPROVED"), ("carol", "APPROVED")], "main", False),
        ([], "release", False),  # not the default branch
    ],
)
def test_review_rule(make_connector: MakeConnector, reviews: list[tuple[str, str]], base: str, failing: bool) -> None:
    """A merge to the default branch needs a reviewer other than the author whose latest
    decisive review is APPROVED."""
    evidence = make_connector().stream("pull_requests").normalise(_pull_item("erin", reviews, base))
    assert (evidence.exception == UNREVIEWED) is failing
    assert evidence.kind == "code_change"


def test_second_run_costs_one_list_request_per_repository(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """With nothing new, a run from the cursor reads one page per repository plus the org listing."""
    connector = make_connector(api="rest")
    cursor = check_run(connector, "pull_requests")
    fake.clear_log()
    assert _items(connector, "pull_requests", _cursor(cursor)) == []
    paths = sorted(r.path for r in fake.requests)
    assert paths == sorted(["/orgs/acme", "/orgs/acme/repos"] + [f"/repos/acme/{n}/pulls" for n in fake.org.repos])


def test_new_pull_between_runs_is_the_only_item(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """A pull merged after a run is the next run's only item; only its repository's cursor moves."""
    connector = make_connector()
    first = check_run(connector, "pull_requests")
    with fake.lock:
        added = fake.org.add_pull("infra", author="carol", merged_at=datetime.now(UTC) - timedelta(minutes=5),
                                  reviews=[("dave", "APPROVED")])
    outputs = _outputs(connector, "pull_requests", _cursor(first))
    assert [o.key for o in outputs if isinstance(o, SourceItem)] == [f"acme/infra#{added.number}"]
    second = _last_cursor(outputs)
    assert second["acme/infra"] > first["acme/infra"]
    assert {k: v for k, v in second.items() if k != "acme/infra"} == {k: v for k, v in first.items() if k != "acme/infra"}


def test_items_are_oldest_first_and_the_cursor_moves_after_each_repository(make_connector: MakeConnector) -> None:
    """Within a repository items come oldest update first with no cursor of their own; a
    checkpoint after the repository's items carries its newest updated_at."""
    outputs = _outputs(make_connector(), "pull_requests")
    seen: set[str] = set()
    current: list[SourceItem] = []
    for output in outputs:
        if isinstance(output, SourceItem):
            assert output.cursor is KEEP
            current.append(output)
            continue
        repo = (set(output.cursor) - seen).pop()
        seen.add(repo)
        stamps = [i.obj["pull"]["updated_at"] for i in current]
        assert all(i.key.startswith(f"{repo}#") for i in current)
        assert stamps == sorted(stamps) and output.cursor[repo] >= stamps[-1]
        current = []
    assert current == [] and len(seen) == 4


def test_pulls_updated_in_or_after_the_run_second_wait_for_the_next_run(
    make_connector: MakeConnector, fake: FakeGithub
) -> None:
    """A pull updated after the run's ceiling is left out and its repository's cursor stays before it."""
    connector = make_connector()
    early = datetime.now(UTC) - timedelta(minutes=30)
    with fake.lock:
        late = fake.org.add_pull("web", author="bob", merged_at=datetime.now(UTC) - timedelta(minutes=10),
                                 reviews=[("carol", "APPROVED")])
    outputs = _outputs(connector, "pull_requests", _cursor(ceiling=early))
    assert f"acme/web#{late.number}" not in {o.key for o in outputs if isinstance(o, SourceItem)}
    cursor = _last_cursor(outputs)
    later = _items(connector, "pull_requests", _cursor(cursor))
    assert [i.key for i in later] == [f"acme/web#{late.number}"]


def test_first_run_reads_back_only_to_the_backfill_floor(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """A first run takes only pulls updated within the backfill."""
    now = datetime.now(UTC)
    items = _items(make_connector(), "pull_requests", _cursor(ceiling=now, backfill=timedelta(days=10)))
    floor = (now - timedelta(days=10)).replace(microsecond=0)
    expected = {f"acme/{r.name}#{p.number}" for r in fake.org.repos.values() for p in r.pulls
                if p.merged_at and p.updated_at >= floor}
    assert {i.key for i in items} == expected and 0 < len(expected)


def test_configured_repositories_only(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """With ``repos`` set only those repositories are read, without listing the org."""
    connector = make_connector(repos=("api", "acme/docs"))
    keys = {i.key.split("#")[0] for i in _items(connector, "pull_requests")}
    assert keys == {"acme/api", "acme/docs"}
    assert fake.count("GET", "/orgs/acme/repos") == 0


# -- branch protection and org settings -------------------------------------------------


def test_branch_protection_rules(make_connector: MakeConnector, seeded: SeededOrg, fake: FakeGithub) -> None:
    """An unprotected default branch and one needing zero approvals are exceptions; the others pass."""
    connector = make_connector()
    stream = connector.stream("branch_protection")
    evidence = {i.key: stream.normalise(i) for i in _items(connector, "branch_protection")}
    assert {k: e.exception for k, e in evidence.items() if e.exception} == {
        seeded.known.unprotected_branch: "default branch is not protected",
        seeded.known.zero_approvals_branch: "default branch protection requires no approving review",
    }
    assert evidence["acme/api@main"].data["required_approving_review_count"] == 1
    assert evidence["acme/infra@main"].data["required_approving_review_count"] == 2
    assert evidence["acme/docs@main"].data["protected"] is False
    with fake.lock:
        fake.org.repos["web"].protection["main"].required_approvals = 1
    assert all(stream.normalise(i).exception != "default branch protection requires no approving review"
               for i in _items(connector, "branch_protection"))


def test_branch_protection_is_read_at_the_ceiling_each_run(make_connector: MakeConnector) -> None:
    """A state read is stamped with the run's ceiling, so each run is new evidence."""
    ceiling = datetime(2030, 1, 1, tzinfo=UTC)
    items = _items(make_connector(), "branch_protection", _cursor(ceiling=ceiling))
    assert {i.observed_at for i in items} == {ceiling}


def test_org_2fa_rules(make_connector: MakeConnector, seeded: SeededOrg, fake: FakeGithub) -> None:
    """2FA not required and a member without 2FA are exceptions; once fixed, one passing org record."""
    connector = make_connector()
    assert set(_exceptions(connector, "org_settings")) == {seeded.known.org, seeded.known.member_2fa_disabled}
    with fake.lock:
        fake.org.two_factor_requirement_enabled = True
        fake.org.members["mallory"] = True
    items = _items(connector, "org_settings")
    assert [i.key for i in items] == ["acme"]
    evidence = connector.stream("org_settings").normalise(items[0])
    assert evidence.exception is None and evidence.data["two_factor_requirement_enabled"] is True


def test_unreadable_2fa_requirement_is_an_exception(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """A token that cannot see the 2FA requirement (not an owner) gives no false assurance."""
    with fake.lock:
        fake.org.two_factor_requirement_enabled = None
    connector = make_connector()
    org_item = _items(connector, "org_settings")[0]
    assert "cannot read" in (connector.stream("org_settings").normalise(org_item).exception or "")


def test_members_filter_refused_keeps_the_org_record(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """A token that may not filter members by 2FA still records the org; the refusal is an item failure."""
    fake.faults.push(Status(422, body={"message": "Only owners can use this filter."}),
                     path_prefix="/orgs/acme/members")
    outputs = _outputs(make_connector(), "org_settings")
    assert [o.key for o in outputs if isinstance(o, SourceItem)] == ["acme"]
    [failure] = [o for o in outputs if isinstance(o, ItemFailure)]
    assert failure.key == "acme/members" and "Only owners" in failure.error
    assert fake.count("GET", "/orgs/acme/members") == 1


# -- faults ------------------------------------------------------------------------------


def _keys_and_raw(connector: GithubConnector) -> list[tuple[str, bytes]]:
    return [(i.key, i.raw) for i in _items(connector, "pull_requests")]


_REST = "rest"


@pytest.mark.parametrize(
    ("fault", "path"),
    [
        (secondary_rate_limit(retry_after=1), "/repos/acme/api/pulls"),
        (secondary_rate_limit(retry_after=None), "/orgs/acme/repos"),
        (too_many_requests(retry_after=1), "/repos/acme/infra/pulls/"),
        (internal_error(502), "/repos/acme/web/pulls"),
        (internal_error(503), "/orgs/acme"),
        (Drop(), "/repos/acme/docs/pulls"),
        (Drop(), "/repos/acme/api/pulls/"),
        (Truncated(), "/repos/acme/api/pulls"),
        (Truncated(), "/repos/acme/infra/pulls/"),
    ],
    ids=lambda v: getattr(v, "label", v),
)
def test_a_fault_is_survived_with_identical_items(
    make_connector: MakeConnector, fake: FakeGithub, fault: Any, path: str
) -> None:
    """Each fault (twice in a row) is retried within its request; the items equal a clean read's."""
    clean = _keys_and_raw(make_connector(api=_REST))
    fake.clear_log()
    fake.faults.push(fault, times=2, path_prefix=path)
    assert _keys_and_raw(make_connector(api=_REST)) == clean
    assert fake.faults.pending == 0
    assert sum(1 for r in fake.requests if r.fault) == 2


def test_a_slow_answer_past_the_timeout_is_retried(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """A response slower than the timeout is abandoned and the request sent again."""
    fake.faults.push(Slow(2.5), path_prefix="/orgs/acme")
    connector = make_connector(http=HttpOptions(max_attempts=6, backoff=0.01, max_backoff=0.05, timeout=1.0))
    assert [i.key for i in _items(connector, "org_settings")] == ["acme", "acme/mallory"]
    assert fake.count("GET", "/orgs/acme") >= 2


@pytest.mark.parametrize(
    "fault", [internal_error(500), too_many_requests(retry_after=0), Truncated(), Drop()],
    ids=lambda v: v.label,
)
def test_a_fault_that_outlasts_the_retries_is_retriable(
    make_connector: MakeConnector, fake: FakeGithub, fault: Any
) -> None:
    """A fault that persists ends in RetriableError after a bounded number of attempts."""
    fake.faults.push(fault, times=50, path_prefix="/orgs/acme")
    with pytest.raises(RetriableError):
        _outputs(make_connector(), "org_settings")
    assert FAST.max_attempts <= fake.count("GET", "/orgs/acme") <= 2 * FAST.max_attempts
