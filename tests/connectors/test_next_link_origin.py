"""Next-page links and redirects are followed only on the configured origin: the token never leaves it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.sdk.base import HttpOptions
from connectors.sdk.errors import ConnectorError, PaginationError
from connectors.sdk.http import HttpClient
from sandbox._http import FakeServer, Response

FAST = HttpOptions(max_attempts=2, deadline=10.0, backoff=0.01, max_backoff=0.01, timeout=5.0)


@pytest.fixture
def elsewhere() -> Iterator[FakeServer]:
    """Another origin (same host, another port): it must never hear a request."""
    fake = FakeServer()
    fake.route("GET", r"^/.*", lambda r: Response(200, []))
    with fake:
        yield fake


@pytest.fixture
def home(elsewhere: FakeServer) -> Iterator[FakeServer]:
    """The configured origin: its first pages link or redirect to ``elsewhere``."""
    fake = FakeServer()
    out = elsewhere.url
    fake.route("GET", r"^/api/v1/logs$", lambda r: Response(
        200, [{"uuid": "e1"}], [("Link", f'<{r.base_url}/api/v1/logs?after=e1>; rel="self"'),
                                ("Link", f'<{out}/api/v1/logs?after=e1>; rel="next"')]))
    fake.route("GET", r"^/api/v1/users$", lambda r: Response(200, []) if r.query else Response(
        200, [{"id": "u1"}], [("Link", '</api/v1/users?after=u1>; rel="next"')]))
    fake.route("GET", r"^/orgs/acme$", lambda r: Response(200, {"login": "acme", "id": 1,
                                                                 "url": f"{r.base_url}/orgs/acme"}))
    fake.route("GET", r"^/orgs/acme/repos$", lambda r: Response(
        200, [{"id": 7, "name": "api", "full_name": "acme/api"}],
        [("Link", f'<{out}/orgs/acme/repos?page=2>; rel="next"')]))
    fake.route("GET", r"^/rest/api/2/serverInfo$", lambda r: Response(
        302, b"", [("Location", f"{out}/rest/api/2/serverInfo")]))
    with fake:
        yield fake


def test_httpx_pages_refuse_a_next_link_to_another_origin(home: FakeServer, elsewhere: FakeServer) -> None:
    """Okta's paginator yields the page, then refuses a next link on another origin, naming it;
    a relative next link on the configured origin is followed."""
    with HttpClient("okta", home.url, options=FAST, headers={"Authorization": "SSWS t0ken"}) as client:
        assert [b for b, _ in client.pages("/api/v1/users")] == [[{"id": "u1"}], []]
        pages = client.pages("/api/v1/logs")
        assert next(pages)[0] == [{"uuid": "e1"}]
        with pytest.raises(PaginationError, match=f"points to {elsewhere.url}, not the configured {home.url}"):
            next(pages)
    assert elsewhere.requests == ()


def test_pygithub_refuses_a_next_link_to_another_origin(home: FakeServer, elsewhere: FakeServer) -> None:
    """GitHub's paginated list stops with a typed error at a next link off base_url; the other
    origin hears nothing (PyGithub alone would send the token to any host it deems GitHub's)."""
    from connectors.github._client import GithubClient

    client = GithubClient(home.url, "t0ken", "GITHUB_TOKEN", options=FAST, spacing=0)
    try:
        org = client.call(lambda: client.api.get_organization("acme"), "GET /orgs/acme")
        with pytest.raises(ConnectorError, match=f"points to {elsewhere.url}, off the configured base_url"):
            list(client.each(org.get_repos(), "GET /orgs/acme/repos"))
    finally:
        client.close()
    assert elsewhere.requests == ()


def test_jira_refuses_a_redirect_to_another_origin(home: FakeServer, elsewhere: FakeServer) -> None:
    """Jira's transport refuses any request off the configured url, a redirect included."""
    from connectors.jira._client import JiraApi

    api = JiraApi(home.url, "a@b.c", "t0ken", email_env="JIRA_EMAIL", token_env="JIRA_API_TOKEN", options=FAST)
    try:
        with pytest.raises(ConnectorError, match=f"points to {elsewhere.url}, off the configured url"):
            api.connect()
    finally:
        api.close()
    assert elsewhere.requests == ()
