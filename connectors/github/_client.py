"""PyGithub wired for collection: a tuned GithubRetry, typed errors, per-request transport retries,
and the reads the streams share (the org, its repositories, a branch's protection, the org's SAML
identities through GraphQL).

Importing this module imports PyGithub; the connector imports it only when it opens its session,
so listing streams or loading the config does not pay for it.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import github
import requests
import structlog
from github.Branch import Branch
from github.BranchProtection import BranchProtection
from github.GithubException import (
    BadAttributeException,
    BadCredentialsException,
    GithubException,
    RateLimitExceededException,
)
from github.GithubObject import GithubObject
from github.IssueEvent import IssueEvent
from github.Organization import Organization
from github.PaginatedList import PaginatedList
from github.Repository import Repository
from urllib3.exceptions import MaxRetryError

from connectors.sdk.base import HttpOptions
from connectors.sdk.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    ItemError,
    PaginationError,
    RetriableError,
)
from connectors.sdk.limits import requests_cap_hook
from connectors.sdk.retry import RETRY_STATUSES, emit, unreachable_cause

__all__ = ["SAML_QUERY", "GithubClient", "GraphqlUnavailable", "build_retry", "translate"]

T = TypeVar("T")
G = TypeVar("G", bound=GithubObject)

NAME = "github"

SAML_QUERY = """
query($org: String!, $first: Int!, $after: String) {
  organization(login: $org) {
    samlIdentityProvider {
      externalIdentities(first: $first, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes { guid samlIdentity { nameId emails { value } } user { login } }
      }
    }
  }
}
"""
"""The org's SAML identities (owner only): each linked GitHub login with its IdP name id and emails."""
_SAML_PAGES = 1000  # 100,000 identities: a cursor that never ends is a bug, not an org

log = structlog.get_logger("connectors.github")

_NO_GRAPHQL: set[str] = set()
"""GraphQL endpoints that answered 404 in this process: asked once, then read through REST."""
_NO_GRAPHQL_LOCK = threading.Lock()


class GraphqlUnavailable(Exception):
    """The server has no GraphQL API (GitHub answered 404 on ``/graphql``): read through REST."""


# urllib3 retries connection failures, 5xx, 429 and rate-limit 403s inside one request. A
# body cut short after the headers arrived surfaces later, from requests, as one of these:
# the request is sent again here, so it is still one request's retry, never a stream's.
_TRANSPORT = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class _CountedRetry(github.GithubRetry):
    """GithubRetry that tells the process-wide HTTP listeners (metrics) about each retry it grants."""

    def increment(self, *args: Any, **kwargs: Any) -> Any:
        error = kwargs.get("error")
        if isinstance(error, Exception) and unreachable_cause(error) is not None:
            # A host that does not resolve or refuses connections is not retried (#17).
            pool: Any = kwargs.get("_pool")  # urllib3 always passes its pool
            raise MaxRetryError(pool, kwargs.get("url") or "", error) from error
        granted = super().increment(*args, **kwargs)  # raises when no retry is left
        emit("retry", NAME)
        return granted


def build_retry(options: HttpOptions) -> github.GithubRetry:
    """GithubRetry with the SDK's policy: ≥5 retries, exponential back-off with jitter, Retry-After
    honoured (capped by ``max_backoff``), secondary-limit 403s retried, 401 never retried."""
    return _CountedRetry(
        total=max(5, options.max_attempts - 1),
        backoff_factor=options.backoff,
        backoff_max=options.max_backoff,
        backoff_jitter=options.backoff / 2,
        retry_after_max=int(options.max_backoff),
        status_forcelist=sorted(RETRY_STATUSES),
        respect_retry_after_header=True,
        # GraphQL reads are POSTs: urllib3 leaves POST out of its retried methods by default.
        allowed_methods=github.GithubRetry.DEFAULT_ALLOWED_METHODS | {"POST"},
        raise_on_status=False,
        secondary_rate_wait=min(60.0, options.max_backoff),
        max_rate_limit_wait=options.max_backoff,
    )


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])[:200]
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):  # a GraphQL answer
        return str(errors[0].get("message") or errors[0].get("type") or "")[:200]
    return ""


def translate(exc: Exception, what: str, env_var: str) -> ConnectorError:
    """The SDK error for a PyGithub or requests failure of request ``what``."""
    if isinstance(exc, BadCredentialsException):
        return AuthError(NAME, f"HTTP 401 Bad credentials on {what}", env_var)
    if isinstance(exc, RateLimitExceededException):
        return RetriableError(f"{NAME}: rate limit exceeded on {what}; the next run retries")
    if isinstance(exc, GithubException):
        status, message = exc.status, _message(exc)
        detail = f"HTTP {status} on {what}" + (f": {message}" if message else "")
        if status in (401, 403):
            return AuthError(NAME, detail, env_var)
        if status in RETRY_STATUSES:
            return RetriableError(f"{NAME}: {detail} after retries")
        return FatalError(f"{NAME}: {detail}")
    if isinstance(exc, requests.exceptions.RequestException):
        return RetriableError(f"{NAME}: {type(exc).__name__} on {what} after retries")
    return FatalError(f"{NAME}: {type(exc).__name__} on {what}: {exc}")


def _guard_transport(api: github.Github, base_url: str, limit: int) -> None:
    """Read every answer of ``api`` with the per-response cap (``ResponseTooLarge`` past it), and
    refuse any request off the base URL's origin (a next-page link or a redirect elsewhere).

    PyGithub builds its own ``requests`` sessions, one per connection, and offers no transport
    hook but a process-wide class swap; this swaps the connection classes of this client's
    requester only. It opens a connection of its "custom" classes only for a URL whose scheme,
    host or port differ from the base URL's, and would send the token there (it checks only
    that the host ends in github.com, by an ``assert``): those classes refuse instead.
    """
    requester: Any = api._Github__requester  # type: ignore[attr-defined]
    hook = requests_cap_hook(limit, NAME)
    base: type[Any] = requester._Requester__connectionClass

    class Capped(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.session.hooks["response"].append(hook)

    class OffOrigin:
        def __init__(self, host: str, port: int | None = None, **_: Any) -> None:
            where = f"{host}:{port}" if port else host
            raise PaginationError(f"{NAME}: a link or redirect points to {where}, off the configured "
                                  "base_url: refused (the token is only ever sent to the configured origin)")

    home = _origin(base_url)
    allowed = requester._Requester__assertUrlAllowed

    def same_origin_only(url: str) -> None:
        # PyGithub calls this (name-mangled, so an instance attribute wins) for every absolute URL
        # before it opens a connection: next-page links, redirects, upload URLs.
        if _origin(url) != home:
            parts = urlsplit(url)
            raise PaginationError(f"{NAME}: a link or redirect points to {parts.scheme}://{parts.netloc}, "
                                  "off the configured base_url: refused (the token is only ever sent "
                                  "to the configured origin)")
        allowed(url)

    requester._Requester__assertUrlAllowed = same_origin_only
    requester._Requester__connectionClass = Capped
    requester._Requester__httpConnectionClass = OffOrigin
    requester._Requester__httpsConnectionClass = OffOrigin


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


class GithubClient:
    """One PyGithub client; every call goes through ``call`` or ``each`` so errors come out typed."""

    def __init__(
        self,
        base_url: str,
        token: str,
        env_var: str,
        *,
        options: HttpOptions,
        per_page: int = 100,
        spacing: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.env_var = env_var
        self.options = options
        self.per_page = per_page
        self._sleep = sleep
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self.api = github.Github(
            auth=github.Auth.Token(token),
            base_url=base_url.rstrip("/"),
            timeout=max(1, round(options.timeout)),
            per_page=per_page,
            retry=build_retry(options),
            seconds_between_requests=spacing or None,
            seconds_between_writes=spacing or None,
        )
        _guard_transport(self.api, base_url, options.max_response_bytes)

    def close(self) -> None:
        """Close the connection pool."""
        self.api.close()

    def _backoff(self, attempt: int) -> None:
        ceiling = min(self.options.max_backoff, self.options.backoff * (2 ** (attempt - 1)))
        self._sleep(self._rng.uniform(ceiling / 2, ceiling))

    def call(self, fn: Callable[[], T], what: str) -> T:
        """Run one PyGithub request; resend it when its body was cut short; raise SDK errors."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except _TRANSPORT as exc:
                if attempt >= self.options.max_attempts:
                    raise translate(exc, what, self.env_var) from exc
                self._backoff(attempt)
            except (GithubException, requests.exceptions.RequestException) as exc:
                raise translate(exc, what, self.env_var) from exc
            except RecursionError:
                raise FatalError(f"{NAME}: the answer to {what} nests too deeply to parse") from None

    def each(self, pages: PaginatedList[G], what: str) -> Iterator[G]:
        """Iterate a paginated list, resending a page whose body was cut short; raise SDK errors.

        PaginatedList keeps the elements it already has and its next-page URL when a fetch
        fails, so iterating it again resumes at the failed page.
        """
        done = 0
        attempt = 0
        while True:
            try:
                for index, element in enumerate(pages):
                    if index < done:
                        continue
                    done += 1
                    attempt = 0
                    yield element
                return
            except _TRANSPORT as exc:
                attempt += 1
                if attempt >= self.options.max_attempts:
                    raise translate(exc, what, self.env_var) from exc
                self._backoff(attempt)
            except (GithubException, requests.exceptions.RequestException) as exc:
                raise translate(exc, what, self.env_var) from exc
            except RecursionError:
                raise FatalError(f"{NAME}: the answer to {what} nests too deeply to parse") from None

    def converted(self, fn: Callable[[], T], what: str) -> T:
        """Read attributes of an object PyGithub already holds; a value it cannot convert is an
        ItemError naming the value (cut short), for the caller to report against its item."""
        try:
            return fn()
        except BadAttributeException as exc:
            raise ItemError(f"{NAME}: unreadable {what} field value {str(exc.actual_value)[:80]!r}") from exc

    def graphql(self, query: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        """The ``data`` of one GraphQL query, through PyGithub's requester (so the same token,
        retries and spacing); GraphqlUnavailable when the server has no GraphQL API, logged
        once per process and endpoint; a GraphQL RATE_LIMITED error is retriable."""
        url = self.api.requester.graphql_url
        if url in _NO_GRAPHQL:
            raise GraphqlUnavailable(url)
        try:
            _, body = self.call(lambda: self.api.requester.graphql_query(query, variables), what)
        except ConnectorError as exc:
            cause = exc.__cause__
            data = cause.data if isinstance(cause, GithubException) else None
            errors = data.get("errors") if isinstance(data, dict) else None
            if isinstance(cause, GithubException) and cause.status == 404 and not errors:
                with _NO_GRAPHQL_LOCK:
                    first = url not in _NO_GRAPHQL
                    _NO_GRAPHQL.add(url)
                if first:
                    log.warning("github_graphql_unavailable", endpoint=url, fallback="rest")
                raise GraphqlUnavailable(url) from exc
            if isinstance(errors, list) and any(
                    isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in errors):
                raise RetriableError(f"{NAME}: GraphQL rate limit exceeded on {what}; "
                                     "the next run retries") from exc
            if isinstance(errors, list) and errors and not isinstance(exc, AuthError):
                first_error = errors[0] if isinstance(errors[0], dict) else {}
                message = str(first_error.get("message") or "")[:200]
                raise FatalError(f"{NAME}: GraphQL error on {what}: {message}") from exc
            raise
        data = body.get("data")
        if not isinstance(data, dict):
            raise FatalError(f"{NAME}: {what} answered without data")
        return data

    def organization(self, org: str) -> Organization:
        """The organisation ``org`` (one request)."""
        return self.call(lambda: self.api.get_organization(org), f"GET /orgs/{org}")

    def saml_identities(self, org: str) -> list[dict[str, Any]] | None:
        """Every external identity node of ``org``'s SAML provider (GraphQL, ``per_page`` a page), or
        None when the org has no SAML provider; a GraphQL error (not an owner, no SAML on the
        plan) is a FatalError naming it."""
        nodes: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(_SAML_PAGES):
            variables = {"org": org, "first": self.per_page, "after": after}
            _, answer = self.call(functools.partial(self.api.requester.graphql_query, SAML_QUERY, variables),
                                  "POST /graphql organization.samlIdentityProvider")
            provider = ((answer.get("data") or {}).get("organization") or {}).get("samlIdentityProvider")
            if provider is None:
                return None
            page = provider.get("externalIdentities") or {}
            nodes.extend(n for n in page.get("nodes") or [] if isinstance(n, dict))
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return nodes
            if not info.get("endCursor") or info.get("endCursor") == after:
                raise FatalError(f"{NAME}: the SAML identities page cursor did not advance ({after!r})")
            after = str(info["endCursor"])
        raise FatalError(f"{NAME}: more than {_SAML_PAGES} pages of SAML identities")

    def repositories(self, org: str, repos: tuple[str, ...] = ()) -> Iterator[Repository]:
        """The repositories named in ``repos`` (``<repo>`` or ``<org>/<repo>``), else every
        repository of ``org``, in listing order."""
        if repos:
            for entry in repos:
                full = f"{org}/{entry.rpartition('/')[2]}"
                yield self.call(functools.partial(self.api.get_repo, full), f"GET /repos/{full}")
            return
        organization = self.organization(org)
        yield from self.each(organization.get_repos(), f"GET /orgs/{org}/repos")

    def issue_events(self, repo: Repository, number: int) -> PaginatedList[IssueEvent]:
        """The events of pull ``number``'s issue (``GET /repos/{o}/{r}/issues/{n}/events``), where
        GitHub records when a review was dismissed and what it had been; built from the repository's
        URL, so no request is spent on the issue itself."""
        return PaginatedList(IssueEvent, repo._requester, f"{repo.url}/issues/{number}/events", None)

    def protection(self, branch: Branch, what: str) -> BranchProtection | None:
        """The branch's protection, or None when GitHub answers that the branch is not protected."""
        try:
            return self.call(branch.get_protection, what)
        except FatalError as exc:
            cause = exc.__cause__
            if isinstance(exc, AuthError) or not (
                isinstance(cause, GithubException) and cause.status == 404
                and "not protected" in str((cause.data or {}).get("message", "")).lower()
            ):
                raise
            return None
