"""An httpx client with per-request retries, vendor rate-limit handling and Link pagination."""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from connectors.sdk.base import HttpOptions
from connectors.sdk.errors import (
    AuthError,
    FatalError,
    NotFoundError,
    PaginationError,
    RetriableError,
    UnreachableError,
)
from connectors.sdk.limits import ResponseTooLarge, capped_body
from connectors.sdk.retry import (
    RETRY_STATUSES,
    Listener,
    add_listener,
    emit,
    remove_listener,
    retry_wait,
    unreachable_cause,
)

# The retry policy and the listeners live in connectors.sdk.retry (no httpx there, for the
# connectors whose vendor SDK brings its own HTTP library); named here too, as they always were.
__all__ = [
    "RETRY_STATUSES",
    "HttpClient",
    "Listener",
    "add_listener",
    "emit",
    "parse_link_header",
    "remove_listener",
    "retry_wait",
]

_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[a-zA-Z]+\s*=\s*"?[^";,]*"?\s*)*)')
_REL = re.compile(r'rel\s*=\s*"?([^";,]*)"?')
_CHUNK = 1 << 16
_RESET_HEADERS = ("x-rate-limit-reset", "x-ratelimit-reset")
_REMAINING_HEADERS = ("x-rate-limit-remaining", "x-ratelimit-remaining")


def parse_link_header(values: list[str]) -> dict[str, str]:
    """Map rel -> URL from one or several ``Link`` header values (Okta sends one per rel)."""
    links: dict[str, str] = {}
    for value in values:
        for match in _LINK.finditer(value):
            for rel in _REL.findall(match.group(2)):
                for name in rel.split():
                    links.setdefault(name, match.group(1))
    return links


def _retry_after(headers: Mapping[str, str], now: float, *, reset: bool = True) -> float | None:
    """Seconds the server asked us to wait, from Retry-After or (when ``reset``) a vendor
    reset header."""
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - now)
    if not reset:
        return None
    for name in _RESET_HEADERS:
        value = headers.get(name)
        if value and value.strip().isdigit():
            return max(0.0, float(value) - now)
    return None


def _exhausted(headers: Mapping[str, str]) -> bool:
    """The vendor says no requests are left in the current rate-limit window."""
    return any(headers.get(name, "").strip() == "0" for name in _REMAINING_HEADERS)


def _is_rate_limited_403(response: httpx.Response) -> bool:
    """GitHub signals primary and secondary limits with 403 plus rate-limit headers."""
    headers = response.headers
    if "retry-after" in headers or _exhausted(headers):
        return True
    return b"rate limit" in response.content[:2000].lower()


class HttpClient:
    """One connector's HTTP client; every request is retried on its own, never a whole stream."""

    def __init__(
        self,
        connector: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        options: HttpOptions | None = None,
        token_env: str | None = None,
        low_remaining: int = 0,
        listener: Listener | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.connector = connector
        self.options = options or HttpOptions()
        self.token_env = token_env
        self.low_remaining = low_remaining
        self._listener = listener
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._pause_until = 0.0
        self._unreachable: UnreachableError | None = None
        self._client = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=self.options.timeout,
            follow_redirects=True,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _emit(self, event: str) -> None:
        if self._listener is not None:
            self._listener(event, self.connector)
        emit(event, self.connector)

    def _describe(self, method: str, url: str) -> str:
        # The path only: query strings may carry tokens or personal data.
        return f"{method} {httpx.URL(url).path or url}"

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request with retries; return a 2xx/3xx response or raise a typed error.

        A host that does not resolve or refuses connections is not retried: UnreachableError
        with that cause, and every later request of this client raises it without sending
        (the connector's other streams fail at once; the next run opens a new client).
        """
        if self._unreachable is not None:
            raise UnreachableError(self.connector, self._unreachable.cause)
        started = self._clock()
        deadline = started + self.options.deadline
        what = self._describe(method, url)
        attempt = 0
        while True:
            attempt += 1
            self._honour_pause(deadline)
            asked: float | None = None
            # One slow attempt must not outlive the request's deadline.
            remaining = max(0.001, deadline - self._clock())
            timeout = {"timeout": min(self.options.timeout, remaining)}
            try:
                self._emit("request")
                response = self._read(method, url, {**timeout, **kwargs})
            except httpx.TransportError as exc:
                cause = unreachable_cause(exc)
                if cause is not None:
                    self._unreachable = UnreachableError(self.connector, cause)
                    raise self._unreachable from exc
                problem = f"{type(exc).__name__}"
            else:
                self._note_remaining(response.headers)
                status = response.status_code
                if status < 400:
                    return response
                if status in (401, 403) and not (status == 403 and _is_rate_limited_403(response)):
                    raise AuthError(self.connector, f"HTTP {status} on {what}", self.token_env)
                if status == 404:
                    raise NotFoundError(f"{self.connector}: HTTP {status} on {what}")
                if status not in RETRY_STATUSES and status != 403:
                    raise FatalError(f"{self.connector}: HTTP {status} on {what}")
                problem = f"HTTP {status}"
                # Okta and GitHub send their reset header on every response, 5xx included;
                # it is a wait request only when the answer is a rate limit.
                limited = status in (403, 429) or _exhausted(response.headers)
                asked = _retry_after(response.headers, self._clock(), reset=limited)
            if attempt >= self.options.max_attempts:
                raise RetriableError(
                    f"{self.connector}: {problem} on {what} after {attempt} attempts"
                )
            wait = retry_wait(attempt, self.options, asked, self._rng)
            if self._clock() + wait > deadline:
                raise RetriableError(
                    f"{self.connector}: {problem} on {what}; retrying would pass the "
                    f"{self.options.deadline:g}s request deadline"
                )
            self._emit("retry")
            self._sleep(wait)

    def _read(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        """Send one attempt and read its body, decoded, up to ``max_response_bytes``; a bigger
        one is ResponseTooLarge naming the path and the cap (never retried: it would be again)."""
        limit = self.options.max_response_bytes
        response = self._client.send(self._client.build_request(method, url, **kwargs), stream=True)
        try:
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            declared = response.headers.get("content-length") if encoding in ("", "identity") else None
            fail = ResponseTooLarge(self.connector, method, str(response.url), limit)
            body = capped_body(response.iter_bytes(_CHUNK), declared, limit, fail)
        finally:
            response.close()
        response._content = body  # what ``response.content``/``json()`` read from now on
        return response

    def _note_remaining(self, headers: httpx.Headers) -> None:
        """Pause before the next request when the vendor says we are about to hit the limit."""
        if self.low_remaining <= 0:
            return
        for name in _REMAINING_HEADERS:
            remaining = headers.get(name, "").strip()
            if remaining.isdigit() and int(remaining) <= self.low_remaining:
                wait = _retry_after({k: v for k, v in headers.items() if k != "retry-after"},
                                    self._clock())
                if wait:
                    self._pause_until = self._clock() + min(wait, self.options.max_backoff)
                return

    def _honour_pause(self, deadline: float) -> None:
        pause = self._pause_until - self._clock()
        if pause > 0:
            self._pause_until = 0.0
            self._sleep(min(pause, max(0.0, deadline - self._clock())))

    def get_json(self, url: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        """GET and parse JSON; a body that is not valid JSON is retried like a dropped connection,
        one nesting deeper than the parser recurses is a FatalError naming the path."""
        for attempt in range(1, self.options.max_attempts + 1):
            response = self.request("GET", url, **kwargs)
            try:
                return response.json(), response
            except RecursionError:  # json's C scanner raises it cleanly near 1,000 levels
                raise FatalError(f"{self.connector}: the answer to {self._describe('GET', url)} nests "
                                 "too deeply to parse") from None
            except ValueError:
                if attempt == self.options.max_attempts:
                    break
                self._emit("retry")
                self._sleep(retry_wait(attempt, self.options, None, self._rng))
        raise RetriableError(f"{self.connector}: invalid JSON from {self._describe('GET', url)}")

    def pages(self, url: str, **kwargs: Any) -> Iterator[tuple[Any, httpx.Response]]:
        """Follow ``Link: rel="next"`` from ``url``; refuse a next URL already visited, and one on
        another origin than the client's base URL (the client's headers carry its token)."""
        seen: set[str] = set()
        next_url: str | None = url
        first = True
        while next_url is not None:
            if next_url in seen:
                raise PaginationError(f"{self.connector}: pagination returned a page twice")
            seen.add(next_url)
            body, response = self.get_json(next_url, **(kwargs if first else {}))
            first = False
            yield body, response
            next_url = parse_link_header(response.headers.get_list("link")).get("next")
            if next_url is not None:
                self._check_origin(next_url)

    def _check_origin(self, url: str) -> None:
        """PaginationError unless ``url`` (absolute, or relative to the base URL) is on the base URL's
        scheme, host and port."""
        base = self._client.base_url
        target = base.join(url)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise PaginationError(
                f"{self.connector}: a next-page link points to {target.scheme}://{target.host}"
                f"{'' if target.port is None else f':{target.port}'}, not the configured "
                f"{base.scheme}://{base.host}{'' if base.port is None else f':{base.port}'}: refused "
                "(the token is only ever sent to the configured origin)")
