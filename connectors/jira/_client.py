"""The `jira` package's client, with our per-request retries and typed errors around it."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jira
import requests
from jira.exceptions import JIRAError
from requests.adapters import HTTPAdapter

from connectors.sdk.base import HttpOptions
from connectors.sdk.errors import AuthError, FatalError, ItemError, PaginationError, RetriableError
from connectors.sdk.limits import read_capped_requests
from connectors.sdk.retry import RETRY_STATUSES, emit, retry_wait, unreachable_cause

__all__ = ["SEARCH_FIELDS", "JiraApi", "RetryingAdapter", "asked_wait"]

SEARCH_FIELDS = ("summary", "issuetype", "status", "resolution", "resolutiondate", "reporter",
                 "assignee", "priority", "created", "updated")
"""The issue fields a search asks for: what the evidence needs, nothing more."""

_PAGE = 100  # Jira Cloud's largest page for a search that expands the changelog
_TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                     requests.exceptions.ContentDecodingError)


def asked_wait(headers: Mapping[str, str], status: int, now: float) -> float | None:
    """Seconds Jira asked us to wait: ``Retry-After`` (seconds or an HTTP date), else on a 429
    Jira Cloud's ``X-RateLimit-Reset`` (an ISO 8601 instant); None when it asked nothing."""
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if status == 429 and reset:
        try:
            return max(0.0, datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp() - now)
        except ValueError:
            return None
    return None


class RetryingAdapter(HTTPAdapter):
    """Retries one request on 429/500/502/503/504, dropped or truncated answers and timeouts,
    with capped exponential back-off and jitter that never waits less than Jira asked, all
    within a per-request deadline.

    The `jira` package's own ``ResilientSession`` retries only 429 and 503, sleeps 20 s and
    more after a connection error, caps a ``Retry-After`` at 60 s (so may retry too early)
    and does not retry a truncated body; the client is built with ``max_retries=0`` and this
    adapter does the retrying instead. The body is read here, so a truncated one is retried.
    """

    def __init__(self, options: HttpOptions, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        super().__init__(max_retries=0)
        self.options = options
        self.origin: tuple[str, str, int] | None = None
        """The configured site's (scheme, host, port): set by ``JiraApi``; a request elsewhere (a
        link or a redirect off the site) is refused before anything is sent."""
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.retries = 0

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        if self.origin is not None and _origin(request.url or "") != self.origin:
            parts = urlsplit(request.url or "")
            raise FatalError(f"jira: a link or redirect points to {parts.scheme}://{parts.netloc}, off the "
                             "configured url: refused (the token is only ever sent to the configured origin)")
        deadline = self._clock() + self.options.deadline
        attempt = 0
        while True:
            attempt += 1
            remaining = max(0.001, deadline - self._clock())
            response: requests.Response | None = None
            emit("request", "jira")
            try:
                response = super().send(request, stream=stream, timeout=min(self.options.timeout, remaining),
                                        verify=verify, cert=cert, proxies=proxies)
                # Read it all now, decoded and capped: a truncated body fails here, and is retried;
                # one past max_response_bytes is ResponseTooLarge, and is not.
                read_capped_requests(response, self.options.max_response_bytes, "jira")
            except _TRANSPORT_ERRORS as exc:
                if response is not None:
                    response.close()
                # A host that does not resolve or refuses connections is not retried (#17).
                if unreachable_cause(exc) is not None or self._give_up(attempt, deadline, None):
                    raise
                continue
            if response.status_code not in RETRY_STATUSES:
                return response
            asked = asked_wait(response.headers, response.status_code, self._clock())
            if self._give_up(attempt, deadline, asked):
                return response  # the caller turns the final 429/5xx into a typed error

    def _give_up(self, attempt: int, deadline: float, asked: float | None) -> bool:
        """Sleep before the next attempt and return False, or return True when out of attempts/time."""
        if attempt >= self.options.max_attempts:
            return True
        wait = retry_wait(attempt, self.options, asked, self._rng)
        if self._clock() + wait > deadline:
            return True
        self.retries += 1
        emit("retry", "jira")
        self._sleep(wait)
        return False


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def _path(url: str | None) -> str:
    """The path of ``url`` only: query strings carry JQL, which may name people."""
    return urlsplit(url or "").path or "?"


class JiraApi:
    """One authenticated Jira Cloud client for a collection; its methods raise only SDK errors."""

    def __init__(self, url: str, email: str, token: str, *, email_env: str, token_env: str,
                 options: HttpOptions, adapter: RetryingAdapter | None = None) -> None:
        self.url = url.rstrip("/")
        self.email_env = email_env
        self.token_env = token_env
        self.adapter = adapter or RetryingAdapter(options)
        self.adapter.origin = _origin(self.url)
        # get_server_info=False: the constructor would otherwise call serverInfo before our
        # adapter is mounted (without our retries); we call it once ourselves below.
        self.client = jira.JIRA(
            server=self.url, basic_auth=(email, token), get_server_info=False, max_retries=0,
            timeout=options.timeout, logging=False,
            options={"check_update": False, "headers": {"User-Agent": "evidence-collector (jira)"}},
        )
        # The package offers no public transport hook; its session is a requests.Session.
        session: requests.Session = self.client._session
        session.mount("https://", self.adapter)
        session.mount("http://", self.adapter)
        self.zone: ZoneInfo | None = None

    def close(self) -> None:
        """Close the HTTP session."""
        self.client.close()  # type: ignore[no-untyped-call]

    @contextmanager
    def _mapped(self, what: str, *, item: str | None = None) -> Iterator[None]:
        """Turn the client's exceptions into the SDK's, by what the caller does next."""
        try:
            yield
        except JIRAError as exc:
            # Not chained: a JIRAError's text carries the request's and response's headers.
            raise self._typed(exc, what, item) from None
        except _TRANSPORT_ERRORS as exc:
            raise RetriableError(f"jira: {type(exc).__name__} on {what}") from exc
        except ValueError as exc:  # a 2xx body that is not JSON
            raise RetriableError(f"jira: invalid JSON from {what}") from exc
        except RecursionError:  # json's C scanner raises it cleanly near 1,000 levels
            raise FatalError(f"jira: the answer to {what} nests too deeply to parse") from None

    def _typed(self, exc: JIRAError, what: str, item: str | None) -> Exception:
        status = exc.status_code
        said = (exc.text or "").strip()[:300]
        if status in (401, 403):
            return AuthError(
                "jira", f"HTTP {status} on {what}: Jira rejected the account email in "
                f"${self.email_env} with the API token in ${self.token_env}", self.token_env,
            )
        if status is None or status in RETRY_STATUSES:
            return RetriableError(f"jira: HTTP {status or 'error'} on {what} after retries: {said}")
        if status == 404 and item is not None:
            return ItemError(f"jira: {item} is gone or not visible (HTTP 404 on {what})")
        if status == 400:
            return FatalError(f"jira: Jira rejected the query (HTTP 400 on {what}): {said}")
        return FatalError(f"jira: HTTP {status} on {what}: {said}")

    def connect(self) -> None:
        """Check the site is Jira Cloud (the enhanced search exists only there) and learn the
        API user's time zone, in which Jira reads JQL dates."""
        with self._mapped("GET /rest/api/2/serverInfo"):
            info = self.client.server_info()
        kind = info.get("deploymentType") if isinstance(info, dict) else None
        if kind != "Cloud":
            raise FatalError(
                f"jira: {self.url} reports deploymentType {kind!r}; this connector needs Jira Cloud "
                "(its /rest/api/2/search/jql)"
            )
        self.client.deploymentType = kind  # what the package's @cloud_api methods check
        with self._mapped("GET /rest/api/2/myself"):
            me = self.client.myself()
        name = me.get("timeZone") if isinstance(me, dict) else None
        try:
            self.zone = ZoneInfo(name) if isinstance(name, str) and name else None
        except (ZoneInfoNotFoundError, ValueError):
            self.zone = None

    def search(self, jql: str) -> Iterator[dict[str, Any]]:
        """Every page of ``jql`` with the changelog expanded, following ``nextPageToken``."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            with self._mapped("GET /rest/api/2/search/jql"):
                page = self.client.enhanced_search_issues(
                    jql, nextPageToken=token, maxResults=_PAGE, fields=list(SEARCH_FIELDS),
                    expand="changelog", json_result=True,
                )
            if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
                raise RetriableError("jira: a search page had no issues list")
            yield page
            token = page.get("nextPageToken")
            if page.get("isLast", not token) or not token:
                return
            if token in seen:
                raise PaginationError("jira: the search returned the same nextPageToken twice")
            seen.add(token)

    def changelog(self, key: str) -> list[dict[str, Any]]:
        """Every changelog history of ``key``, oldest first, from ``/issue/{key}/changelog``."""
        histories: list[dict[str, Any]] = []
        start = 0
        what = "GET /rest/api/2/issue/{key}/changelog"
        while True:
            with self._mapped(what, item=key):
                # No public method reads this endpoint; _get_json is the package's own GET+JSON.
                page = self.client._get_json(f"issue/{key}/changelog",
                                             params={"startAt": start, "maxResults": _PAGE})
            values = page.get("values") if isinstance(page, dict) else None
            if not isinstance(values, list):
                raise RetriableError(f"jira: a changelog page of {key} had no values list")
            histories.extend(values)
            start += len(values)
            total = page.get("total")
            if page.get("isLast") or not values or (isinstance(total, int) and start >= total):
                return histories
