"""The fake GitHub API as real PyGithub sees it: pagination, rate-limit headers, auth, faults, seeding."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import github
import pytest
import requests
from github.GithubException import BadCredentialsException, GithubException
from github.Requester import Requester

from sandbox.github import FakeGithub, secondary_rate_limit, too_many_requests
from sandbox.github_seed import SeededOrg, seed_org

TOKEN = "ghp_fake_token"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used",
                "x-ratelimit-resource")


@pytest.fixture
def seeded() -> SeededOrg:
    return seed_org(seed=3, now=NOW)


@pytest.fixture
def fake(seeded: SeededOrg) -> Iterator[FakeGithub]:
    with FakeGithub(seeded.org, token=TOKEN) as server:
        yield server


def _client(fake: FakeGithub, per_page: int = 100, token: str = TOKEN) -> github.Github:
    return github.Github(auth=github.Auth.Token(token), base_url=fake.url, per_page=per_page,
                         retry=None, seconds_between_requests=None, seconds_between_writes=None)


def test_seeding_is_deterministic_and_holds_the_known_exceptions() -> None:
    """The same seed and anchor give the same org; the known failures are in it."""
    a, b = seed_org(seed=5, now=NOW), seed_org(seed=5, now=NOW)
    assert a.org == b.org and a.known == b.known
    assert seed_org(seed=6, now=NOW).org != a.org
    api = a.org.repos["api"]
    unreviewed = next(p for p in api.pulls if f"acme/api#{p.number}" == a.known.pr_unreviewed)
    assert unreviewed.merged_at is not None and unreviewed.reviews == []
    assert "docs" in a.org.repos and a.org.repos["docs"].protection == {}
    assert a.org.repos["web"].protection["main"].required_approvals == 0
    assert a.org.two_factor_requirement_enabled is False and a.org.members["mallory"] is False
    merged = [p for r in a.org.repos.values() for p in r.pulls if p.merged_at]
    assert len(merged) > 100
    assert all(NOW - timedelta(days=61) <= p.updated_at < NOW for r in a.org.repos.values() for p in r.pulls)


def test_pulls_page_with_link_next_and_last(fake: FakeGithub) -> None:
    """Listing pulls pages by per_page with Link rel=next/last, sorted by updated descending."""
    repo = _client(fake, per_page=10).get_repo("acme/api")
    fake.clear_log()
    pulls = list(repo.get_pulls(state="closed", sort="updated", direction="desc"))
    closed = [p for p in fake.org.repos["api"].pulls if p.state == "closed"]
    assert len(pulls) == len(closed)
    stamps = [p.updated_at for p in pulls]
    assert stamps == sorted(stamps, reverse=True)
    assert fake.count("GET", "/repos/acme/api/pulls") == -(-len(closed) // 10)
    response = requests.get(f"{fake.url}/repos/acme/api/pulls?state=closed&per_page=10&page=2",
                            headers={"Authorization": f"token {TOKEN}"}, timeout=5)
    assert 'rel="next"' in response.headers["Link"] and 'rel="last"' in response.headers["Link"]
    assert 'rel="prev"' in response.headers["Link"]
    last = -(-len(closed) // 10)
    assert f"page={last}>; rel=\"last\"" in response.headers["Link"]


def test_list_items_leave_out_merged_by_and_the_detail_has_it(fake: FakeGithub) -> None:
    """Like GitHub, the list endpoint omits merged_by; the single-pull endpoint carries it."""
    listed = requests.get(f"{fake.url}/repos/acme/api/pulls?state=closed",
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).json()
    assert listed and all("merged_by" not in p for p in listed)
    merged = next(p for p in listed if p["merged_at"])
    pull = _client(fake).get_repo("acme/api").get_pull(merged["number"])
    assert pull.merged and pull.merged_by is not None


def test_every_response_carries_rate_limit_headers(fake: FakeGithub) -> None:
    """200, 401 and 404 answers all carry the five X-RateLimit headers; Used counts up."""
    auth = {"Authorization": f"token {TOKEN}"}
    first = requests.get(f"{fake.url}/orgs/acme", headers=auth, timeout=5)
    missing = requests.get(f"{fake.url}/repos/acme/nope", headers=auth, timeout=5)
    denied = requests.get(f"{fake.url}/orgs/acme", headers={"Authorization": "token wrong"}, timeout=5)
    for response in (first, missing, denied):
        assert all(name in response.headers for name in RATE_HEADERS)
    assert missing.status_code == 404 and missing.json()["message"] == "Not Found"
    assert int(missing.headers["X-RateLimit-Used"]) > int(first.headers["X-RateLimit-Used"])
    assert denied.status_code == 401


def test_wrong_token_is_bad_credentials_for_pygithub(fake: FakeGithub) -> None:
    """A wrong token gets 401 Bad credentials, which PyGithub raises as BadCredentialsException."""
    with pytest.raises(BadCredentialsException):
        _client(fake, token="ghp_wrong").get_organization("acme")
    assert [r.status for r in fake.requests] == [401]


def test_org_2fa_and_members_with_2fa_disabled(fake: FakeGithub) -> None:
    """The org shows its 2FA requirement and the 2fa_disabled filter lists only those members."""
    org = _client(fake).get_organization("acme")
    assert org.two_factor_requirement_enabled is False
    assert [m.login for m in org.get_members(filter_="2fa_disabled")] == ["mallory"]
    assert len(list(org.get_members())) == len(fake.org.members)


def test_branch_protection_and_not_protected(fake: FakeGithub) -> None:
    """A protected branch returns its rule; an unprotected one 404s with "Branch not protected"."""
    gh = _client(fake)
    rule = gh.get_repo("acme/web").get_branch("main").get_protection()
    assert rule.required_pull_request_reviews.required_approving_review_count == 0
    with pytest.raises(GithubException) as info:
        gh.get_repo("acme/docs").get_branch("main").get_protection()
    assert info.value.status == 404 and info.value.data["message"] == "Branch not protected"


def test_pulls_added_between_reads_are_listed_first(fake: FakeGithub) -> None:
    """The org is mutable: a pull added after a read is the newest by updated_at on the next."""
    repo = _client(fake).get_repo("acme/infra")
    with fake.lock:
        added = fake.org.add_pull("infra", author="bob", merged_at=datetime.now(UTC),
                                  reviews=[("alice", "APPROVED")])
    newest = repo.get_pulls(state="closed", sort="updated", direction="desc")[0]
    assert newest.number == added.number
    assert [(r.user.login, r.state) for r in newest.get_reviews()] == [("alice", "APPROVED")]


def test_rate_limit_faults_look_like_github(fake: FakeGithub) -> None:
    """The secondary-limit 403 and the 429 carry Retry-After and messages PyGithub recognises."""
    fake.faults.push(secondary_rate_limit(retry_after=7))
    fake.faults.push(too_many_requests(retry_after=3))
    auth = {"Authorization": f"token {TOKEN}"}
    secondary = requests.get(f"{fake.url}/orgs/acme", headers=auth, timeout=5)
    limited = requests.get(f"{fake.url}/orgs/acme", headers=auth, timeout=5)
    assert secondary.status_code == 403 and secondary.headers["Retry-After"] == "7"
    assert Requester.isSecondaryRateLimitError(secondary.json()["message"])
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert all(name in limited.headers for name in RATE_HEADERS)
    assert [r.fault for r in fake.requests] == ["status:403", "status:429"]


def test_github_retry_rides_out_a_secondary_limit(fake: FakeGithub) -> None:
    """PyGithub's own GithubRetry retries the fake's secondary-limit 403 and then succeeds."""
    fake.faults.push(secondary_rate_limit(retry_after=0))
    gh = github.Github(auth=github.Auth.Token(TOKEN), base_url=fake.url,
                       retry=github.GithubRetry(total=3, backoff_factor=0.01, secondary_rate_wait=0.01),
                       seconds_between_requests=None)
    assert gh.get_organization("acme").login == "acme"
    assert [r.status for r in fake.requests] == [403, 200]


def test_dismissals_are_issue_events_and_reviews_name_their_commit(fake: FakeGithub, seeded: SeededOrg) -> None:
    """A dismissed review is listed DISMISSED, and the pull's issue events hold its review_dismissed
    event with the time and what it had been; a review of an earlier commit names that commit."""
    api = _client(fake).get_repo("acme/api")
    number = int(seeded.known.pr_dismissed_after_merge.rsplit("#", 1)[1])
    pull = api.get_pull(number)
    [review] = list(pull.get_reviews())
    assert review.state == "DISMISSED" and review.commit_id == pull.head.sha
    events = [e for e in pull.get_issue_events() if e.event == "review_dismissed"]
    [event] = events
    assert event.dismissed_review["review_id"] == review.id and event.dismissed_review["state"] == "approved"
    assert event.created_at > pull.merged_at
    earlier = api.get_pull(int(seeded.known.pr_approved_earlier_commit.rsplit("#", 1)[1]))
    assert [r.commit_id for r in earlier.get_reviews()] != [earlier.head.sha]


def test_protection_in_the_older_shape_has_no_review_count(fake: FakeGithub) -> None:
    """api's protection requires reviews without stating required_approving_review_count."""
    response = requests.get(f"{fake.url}/repos/acme/api/branches/main/protection",
                            headers={"Authorization": f"token {TOKEN}"}, timeout=5)
    reviews = response.json()["required_pull_request_reviews"]
    assert "required_approving_review_count" not in reviews and reviews["dismiss_stale_reviews"] is True


def test_members_by_role_outside_collaborators_and_removal(fake: FakeGithub) -> None:
    """role=admin lists the owners, outside collaborators have their own listing, and a removed
    member is in neither listing nor the SAML identities afterwards."""
    org = _client(fake).get_organization("acme")
    assert [m.login for m in org.get_members(role="admin")] == sorted(fake.org.admins)
    assert [m.login for m in org.get_outside_collaborators()] == ["contractor-kim"]
    fake.remove_member("dmr")
    assert "dmr" not in [m.login for m in org.get_members()]
    assert fake.org.saml_emails is not None and "dmr" not in fake.org.saml_emails
    with pytest.raises(KeyError):
        fake.remove_member("dmr")


def test_saml_query_pages_and_refuses_a_non_owner(fake: FakeGithub) -> None:
    """The SAML identities page by an opaque cursor; a non-owner's token gets a FORBIDDEN error
    (PyGithub raises it), an org without SAML a null provider."""
    requester = _client(fake).requester
    query = "query { organization { samlIdentityProvider { externalIdentities { nodes { user { login } } } } } }"
    _, page = requester.graphql_query(query, {"org": "acme", "first": 5, "after": None})
    identities = page["data"]["organization"]["samlIdentityProvider"]["externalIdentities"]
    assert len(identities["nodes"]) == 5 and identities["pageInfo"]["hasNextPage"] is True
    _, rest = requester.graphql_query(query, {"org": "acme", "first": 5,
                                              "after": identities["pageInfo"]["endCursor"]})
    tail = rest["data"]["organization"]["samlIdentityProvider"]["externalIdentities"]
    assert len(identities["nodes"]) + len(tail["nodes"]) == len(fake.org.saml_emails or {})
    fake.org.owner_token = False
    with pytest.raises(GithubException) as info:
        requester.graphql_query(query, {"org": "acme", "first": 5, "after": None})
    assert info.value.data["errors"][0]["type"] == "FORBIDDEN"
    with pytest.raises(GithubException) as refused:
        list(_client(fake).get_organization("acme").get_members(filter_="2fa_disabled"))
    assert refused.value.status == 422
    fake.org.owner_token, fake.org.saml_emails = True, None
    _, none = requester.graphql_query(query, {"org": "acme", "first": 5, "after": None})
    assert none["data"]["organization"]["samlIdentityProvider"] is None
