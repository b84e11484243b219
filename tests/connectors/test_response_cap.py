"""A vendor answer that inflates past the per-response cap is one clear error naming the path and the cap, for every client."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest

from connectors.sdk.base import HttpOptions
from connectors.sdk.errors import ConnectorError
from connectors.sdk.http import HttpClient
from connectors.sdk.limits import ResponseTooLarge
from sandbox._http import FakeServer, Response

_MIB = 1 << 20
CAPPED = HttpOptions(max_attempts=2, deadline=10.0, backoff=0.01, max_backoff=0.01, timeout=5.0,
                     max_response_bytes=2 * _MIB)


def _bomb(mib: int) -> Response:
    """A JSON answer, gzip-encoded on the wire: ``mib`` MiB decoded from a few KB sent."""
    body = b'{"pad":"' + b" " * (mib * _MIB) + b'"}'
    return Response(200, gzip.compress(body, mtime=0),
                    [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A loopback server whose answers are gzip bombs of 3 MiB, and 1 MiB on /small."""
    fake = FakeServer()
    fake.route("GET", r"^/small$", lambda r: _bomb(1))
    fake.route("GET", r"^/plain$", lambda r: Response(200, b"x" * (3 * _MIB)))
    fake.route("GET", r"^/.*", lambda r: _bomb(3))
    with fake:
        yield fake


def test_httpx_client_refuses_a_body_that_inflates_past_the_cap(server: FakeServer) -> None:
    """HttpClient (Okta) reads the body decoded and stops past max_response_bytes, naming the path,
    not the query, and the cap; an answer under the cap reads whole."""
    with HttpClient("okta", server.url, options=CAPPED) as client:
        body, _ = client.get_json("/small")
        assert len(body["pad"]) == _MIB
        with pytest.raises(ResponseTooLarge, match=r"^okta: the answer to GET /api/v1/logs is larger than 2 MiB"):
            client.get_json("/api/v1/logs?since=secret-query")
    assert "secret-query" not in str(ResponseTooLarge("okta", "GET", f"{server.url}/x?since=secret-query", 1))


def test_an_answer_declaring_a_bigger_length_is_refused_before_it_is_read(server: FakeServer) -> None:
    """A plain answer whose Content-Length passes the cap is refused from its header."""
    with HttpClient("okta", server.url, options=CAPPED) as client, \
            pytest.raises(ResponseTooLarge, match="GET /plain is larger than 2 MiB"):
        client.request("GET", "/plain")


def test_pygithub_client_refuses_a_body_that_inflates_past_the_cap(server: FakeServer) -> None:
    """GitHub's PyGithub client reads through the same cap: a typed error naming the path."""
    from connectors.github._client import GithubClient

    client = GithubClient(server.url, "t0ken", "GITHUB_TOKEN", options=CAPPED, spacing=0)
    try:
        with pytest.raises(ConnectorError, match="github: the answer to GET /orgs/acme is larger than 2 MiB"):
            client.call(lambda: client.api.get_organization("acme"), "GET /orgs/acme")
    finally:
        client.close()


def test_jira_client_refuses_a_body_that_inflates_past_the_cap(server: FakeServer) -> None:
    """Jira's client reads through the same cap in its retrying adapter: a typed error naming the path."""
    from connectors.jira._client import JiraApi

    api = JiraApi(server.url, "a@b.c", "t0ken", email_env="JIRA_EMAIL", token_env="JIRA_API_TOKEN",
                  options=CAPPED)
    try:
        with pytest.raises(ConnectorError, match="jira: the answer to GET /rest/api/2/serverInfo is larger"):
            api.connect()
    finally:
        api.close()


def _nested() -> Response:
    return Response(200, b"[" * 100_000 + b"]" * 100_000, [("Content-Type", "application/json")])


def test_an_answer_nested_too_deeply_is_a_typed_error_for_every_client() -> None:
    """100,000 nested arrays in an answer (200 KB) are a FatalError naming the path, never a
    RecursionError that fails the run as a connector bug."""
    from connectors.github._client import GithubClient
    from connectors.jira._client import JiraApi

    fake = FakeServer()
    fake.route("GET", r"^/.*", lambda r: _nested())
    with fake:
        with HttpClient("okta", fake.url, options=CAPPED) as client, \
                pytest.raises(ConnectorError, match="okta: the answer to GET /api/v1/users nests too deeply"):
            client.get_json("/api/v1/users")
        github = GithubClient(fake.url, "t0ken", "GITHUB_TOKEN", options=CAPPED, spacing=0)
        with pytest.raises(ConnectorError, match="github: the answer to GET /orgs/acme nests too deeply"):
            github.call(lambda: github.api.get_organization("acme").login, "GET /orgs/acme")
        github.close()
        api = JiraApi(fake.url, "a@b.c", "t0ken", email_env="JIRA_EMAIL", token_env="JIRA_API_TOKEN",
                      options=CAPPED)
        with pytest.raises(ConnectorError, match="jira: the answer to GET /rest/api/2/serverInfo nests too"):
            api.connect()
        api.close()
