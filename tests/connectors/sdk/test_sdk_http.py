"""HttpClient over loopback against FakeServer: retries, rate limits, deadlines, auth, pagination."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from random import Random
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.sdk.base import HttpOptions
from connectors.sdk.errors import AuthError, FatalError, PaginationError, RetriableError
from connectors.sdk.http import HttpClient, parse_link_header, retry_wait
from sandbox._http import Drop, FakeServer, Fault, Request, Response, Slow, Status, Truncated

START = 1_700_000_000.0


class FakeTime:
    """A clock that only moves when the client sleeps, recording every wait."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.route("GET", r"^/api/v1/ping$", lambda r: Response(body={"ok": True}))
    with fake:
        yield fake


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(
    server: FakeServer,
    fake_time: FakeTime | None,
    *,
    low_remaining: int = 0,
    listener: Any = None,
    **options: Any,
) -> HttpClient:
    policy: dict[str, Any] = {"max_attempts": 6, "deadline": 120.0, "backoff": 0.5, "max_backoff": 60.0}
    policy.update(options)
    timing: dict[str, Any] = {}
    if fake_time is not None:
        timing = {"sleep": fake_time.sleep, "clock": fake_time.clock}
    return HttpClient(
        "okta",
        server.url,
        options=HttpOptions(timeout=5.0, **policy),
        token_env="OKTA_API_TOKEN",
        low_remaining=low_remaining,
        listener=listener,
        rng=Random(1),
        **timing,
    )


@pytest.fixture
def client(server: FakeServer, fake_time: FakeTime) -> Iterator[HttpClient]:
    with make_client(server, fake_time) as http:
        yield http


# -- retries ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retriable_status_is_retried(
    status: int, server: FakeServer, client: HttpClient, fake_time: FakeTime
) -> None:
    """A 429 or 5xx answer is retried until the source answers, with a back-off between tries."""
    server.faults.push(Status(status), times=2)
    body, _ = client.get_json("/api/v1/ping")
    assert body == {"ok": True}
    assert server.count("GET", "/api/v1/ping") == 3
    assert len(fake_time.sleeps) == 2
    assert all(wait > 0 for wait in fake_time.sleeps)


def test_backoff_grows_within_jitter_and_cap(server: FakeServer, fake_time: FakeTime) -> None:
    """Waits double per attempt, jittered within the upper half, and never exceed max_backoff."""
    server.faults.push(Status(503), times=5)
    with make_client(server, fake_time, backoff=1.0, max_backoff=4.0) as http:
        http.request("GET", "/api/v1/ping")
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(fake_time.sleeps) == 5
    for wait, ceiling in zip(fake_time.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


def test_dropped_connection_is_retried(server: FakeServer, client: HttpClient, fake_time: FakeTime) -> None:
    """A connection closed without an answer is retried like a 5xx."""
    server.faults.push(Drop(), times=2)
    assert client.get_json("/api/v1/ping")[0] == {"ok": True}
    assert [e.fault for e in server.requests] == ["drop", "drop", None]


def test_truncated_body_is_retried(server: FakeServer, client: HttpClient, fake_time: FakeTime) -> None:
    """A body cut short of its Content-Length is retried, and the full body is returned."""
    server.faults.push(Truncated())
    assert client.get_json("/api/v1/ping")[0] == {"ok": True}
    assert [e.fault for e in server.requests] == ["truncated", None]
    assert len(fake_time.sleeps) == 1


def test_invalid_json_is_retried(server: FakeServer, client: HttpClient) -> None:
    """A 200 whose body is not JSON is fetched again; a persistently bad body is retriable."""
    answers = iter([b'{"ok": tr', b'{"ok": true}'])
    server.route("GET", r"^/json$", lambda r: Response(body=next(answers, b"<html>")))
    assert client.get_json("/json")[0] == {"ok": True}
    assert server.count(path_prefix="/json") == 2
    with pytest.raises(RetriableError, match="invalid JSON"):
        client.get_json("/json")


def test_gives_up_after_max_attempts(server: FakeServer, fake_time: FakeTime) -> None:
    """After max_attempts failures the client raises RetriableError and stops asking."""
    server.faults.push(Status(503), times=20)
    with (
        make_client(server, fake_time, max_attempts=4) as http,
        pytest.raises(RetriableError, match="HTTP 503 on GET /api/v1/ping after 4 attempts"),
    ):
        http.request("GET", "/api/v1/ping")
    assert server.count() == 4
    assert len(fake_time.sleeps) == 3


def test_gives_up_on_persistent_transport_errors(server: FakeServer, fake_time: FakeTime) -> None:
    """A connection that keeps dropping ends in RetriableError naming the transport error."""
    server.faults.push(Drop(), times=20)
    with (
        make_client(server, fake_time, max_attempts=3) as http,
        pytest.raises(RetriableError, match="RemoteProtocolError"),
    ):
        http.request("GET", "/api/v1/ping")
    assert server.count() == 3


def test_error_messages_leave_out_the_query(server: FakeServer, fake_time: FakeTime) -> None:
    """Errors name the method and path only, never a query string that may hold secrets."""
    server.faults.push(Status(500), times=20)
    with make_client(server, fake_time, max_attempts=2) as http, pytest.raises(RetriableError) as caught:
        http.request("GET", "/api/v1/ping?token=s3cret")
    assert "s3cret" not in str(caught.value)
    assert "/api/v1/ping" in str(caught.value)


def test_listener_sees_requests_and_retries(server: FakeServer, fake_time: FakeTime) -> None:
    """The listener hears one "request" per attempt and one "retry" per back-off."""
    events: list[tuple[str, str]] = []
    server.faults.push(Status(502), times=2)
    with make_client(server, fake_time, listener=lambda e, c: events.append((e, c))) as http:
        http.request("GET", "/api/v1/ping")
    assert [e for e, _ in events] == ["request", "retry", "request", "retry", "request"]
    assert {c for _, c in events} == {"okta"}


# -- what the server asked for ---------------------------------------------------------


def test_honours_retry_after_seconds(server: FakeServer, client: HttpClient, fake_time: FakeTime) -> None:
    """A Retry-After in seconds is waited out in full before the retry."""
    server.faults.push(Status(503, [("Retry-After", "7")]))
    client.request("GET", "/api/v1/ping")
    assert len(fake_time.sleeps) == 1
    assert fake_time.sleeps[0] >= 7


def test_honours_retry_after_http_date(server: FakeServer, client: HttpClient, fake_time: FakeTime) -> None:
    """A Retry-After given as an HTTP-date is waited out until that instant."""
    when = email.utils.formatdate(START + 25, usegmt=True)
    server.faults.push(Status(429, [("Retry-After", when)]))
    client.request("GET", "/api/v1/ping")
    assert fake_time.sleeps[0] >= 25


def test_honours_okta_rate_limit_reset(server: FakeServer, client: HttpClient, fake_time: FakeTime) -> None:
    """An Okta 429 is retried after its X-Rate-Limit-Reset epoch second."""
    okta_headers = [
        ("X-Rate-Limit-Limit", "600"),
        ("X-Rate-Limit-Remaining", "0"),
        ("X-Rate-Limit-Reset", str(int(START) + 42)),
    ]
    server.faults.push(Status(429, okta_headers, {"errorCode": "E0000047"}))
    client.request("GET", "/api/v1/ping")
    assert fake_time.sleeps[0] >= 42
    assert server.count() == 2


def test_honours_github_rate_limit_reset(server: FakeServer, client: HttpClient, fake_time: FakeTime) -> None:
    """A GitHub 429 is retried after its X-RateLimit-Reset epoch second."""
    github_headers = [("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", str(int(START) + 30))]
    server.faults.push(Status(429, github_headers))
    client.request("GET", "/api/v1/ping")
    assert fake_time.sleeps[0] >= 30


def test_5xx_ignores_a_routine_vendor_reset_header(
    server: FakeServer, client: HttpClient, fake_time: FakeTime
) -> None:
    """A 5xx carrying the reset header every GitHub answer has is retried with plain back-off."""
    routine = [("X-RateLimit-Remaining", "4999"), ("X-RateLimit-Reset", str(int(START) + 3000))]
    server.faults.push(Status(502, routine))
    client.request("GET", "/api/v1/ping")
    assert server.count() == 2
    assert fake_time.sleeps[0] <= client.options.backoff


def test_wait_past_the_deadline_gives_up_at_once(server: FakeServer, fake_time: FakeTime) -> None:
    """When the server asks for a wait beyond the deadline, the client raises without waiting."""
    server.faults.push(Status(503, [("Retry-After", "100")]), times=5)
    with (
        make_client(server, fake_time, deadline=30.0) as http,
        pytest.raises(RetriableError, match="deadline"),
    ):
        http.request("GET", "/api/v1/ping")
    assert server.count() == 1
    assert fake_time.sleeps == []


def test_backoff_stays_within_the_deadline(server: FakeServer, fake_time: FakeTime) -> None:
    """Many cheap failures end in RetriableError before the waits add up past the deadline."""
    server.faults.push(Status(500), times=50)
    with (
        make_client(server, fake_time, max_attempts=50, backoff=1.0, max_backoff=8.0, deadline=20.0) as http,
        pytest.raises(RetriableError, match="deadline"),
    ):
        http.request("GET", "/api/v1/ping")
    assert sum(fake_time.sleeps) <= 20.0
    assert server.count() < 50


def test_slow_attempt_is_cut_at_the_deadline(server: FakeServer) -> None:
    """A source that stalls cannot hold one request past its deadline (real clock)."""
    server.faults.push(Slow(5.0), times=10)
    started = time.monotonic()
    with make_client(server, None, deadline=0.5, backoff=0.05) as http, pytest.raises(RetriableError):
        http.request("GET", "/api/v1/ping")
    assert time.monotonic() - started < 2.0


# -- auth and other client errors ------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_names_the_token_and_is_not_retried(
    status: int, server: FakeServer, client: HttpClient, fake_time: FakeTime
) -> None:
    """401 and a plain 403 raise AuthError naming the token's variable, after one request."""
    server.faults.push(Status(status, body={"errorCode": "E0000011"}))
    with pytest.raises(AuthError) as caught:
        client.request("GET", "/api/v1/ping")
    assert caught.value.env_var == "OKTA_API_TOKEN"
    assert "$OKTA_API_TOKEN" in str(caught.value)
    assert f"HTTP {status}" in str(caught.value)
    assert server.count() == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", str(int(START) + 20))], None),
        ([("Retry-After", "20")], None),
        ([], {"message": "You have exceeded a secondary rate limit."}),
    ],
    ids=["remaining-0", "retry-after", "body-message"],
)
def test_rate_limited_403_is_retried(
    headers: list[tuple[str, str]],
    body: object,
    server: FakeServer,
    client: HttpClient,
    fake_time: FakeTime,
) -> None:
    """A GitHub 403 that signals a rate limit is retried, waiting what the server asked."""
    server.faults.push(Status(403, headers, body))
    assert client.get_json("/api/v1/ping")[0] == {"ok": True}
    assert server.count() == 2
    if headers:
        assert fake_time.sleeps[0] >= 20


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_4xx_is_fatal_and_not_retried(status: int, server: FakeServer, client: HttpClient) -> None:
    """Any other 4xx raises FatalError (not AuthError) after a single request."""
    server.faults.push(Status(status))
    with pytest.raises(FatalError) as caught:
        client.request("GET", "/api/v1/ping")
    assert not isinstance(caught.value, AuthError)
    assert f"HTTP {status}" in str(caught.value)
    assert server.count() == 1


# -- pre-emptive pause -----------------------------------------------------------------


def _limited_route(fake_time: FakeTime, remaining: int, reset_in: int) -> Any:
    def handler(request: Request) -> Response:
        return Response(
            body={"ok": True},
            headers=[
                ("X-Rate-Limit-Remaining", str(remaining)),
                ("X-Rate-Limit-Reset", str(int(fake_time.now) + reset_in)),
            ],
        )

    return handler


def test_low_remaining_pauses_before_the_next_request(server: FakeServer, fake_time: FakeTime) -> None:
    """When remaining drops to low_remaining, the next request waits for the window reset."""
    server.route("GET", r"^/limited$", _limited_route(fake_time, remaining=3, reset_in=15))
    with make_client(server, fake_time, low_remaining=10) as http:
        http.request("GET", "/limited")
        assert fake_time.sleeps == []
        http.request("GET", "/limited")
    assert fake_time.sleeps == [15]


def test_remaining_above_threshold_does_not_pause(server: FakeServer, fake_time: FakeTime) -> None:
    """Plenty of remaining requests means no pause at all."""
    server.route("GET", r"^/limited$", _limited_route(fake_time, remaining=500, reset_in=15))
    with make_client(server, fake_time, low_remaining=10) as http:
        for _ in range(3):
            http.request("GET", "/limited")
    assert fake_time.sleeps == []


def test_low_remaining_pause_is_capped(server: FakeServer, fake_time: FakeTime) -> None:
    """A pre-emptive pause never exceeds max_backoff, however far away the reset is."""
    server.route("GET", r"^/limited$", _limited_route(fake_time, remaining=0, reset_in=3600))
    with make_client(server, fake_time, low_remaining=10, max_backoff=60.0) as http:
        http.request("GET", "/limited")
        http.request("GET", "/limited")
    assert fake_time.sleeps == [60.0]


# -- pagination ------------------------------------------------------------------------


def _okta_logs(request: Request) -> Response:
    pages = {None: ["e1", "e2"], "c2": ["e3", "e4"], "c3": ["e5"]}
    following = {None: "c2", "c2": "c3", "c3": None}
    after = request.arg("after")
    since = request.arg("since")
    base = f"{request.base_url}/api/v1/logs?since={since}"
    headers = [("Link", f'<{base}{f"&after={after}" if after else ""}>; rel="self"')]
    if following[after] is not None:
        headers.append(("Link", f'<{base}&after={following[after]}>; rel="next"'))
    return Response(body=[{"uuid": u} for u in pages[after]], headers=headers)


def _github_repos(request: Request) -> Response:
    page = int(request.arg("page") or "1")
    url = f"{request.base_url}/orgs/acme/repos"
    links = []
    if page < 3:
        links.append(f'<{url}?page={page + 1}>; rel="next"')
        links.append(f'<{url}?page=3>; rel="last"')
    if page > 1:
        links.append(f'<{url}?page={page - 1}>; rel="prev"')
        links.append(f'<{url}?page=1>; rel="first"')
    return Response(body=[{"name": f"repo{page}"}], headers=[("Link", ", ".join(links))])


def test_pages_follow_separate_link_headers(server: FakeServer, client: HttpClient) -> None:
    """Okta-style pagination (one Link header per rel) is followed to the last page."""
    server.route("GET", r"^/api/v1/logs$", _okta_logs)
    bodies = [b for b, _ in client.pages("/api/v1/logs", params={"since": "2026-11-01"})]
    assert [e["uuid"] for body in bodies for e in body] == ["e1", "e2", "e3", "e4", "e5"]
    assert [(e.query.get("after"), e.query["since"]) for e in server.requests] == [
        (None, ["2026-11-01"]),
        (["c2"], ["2026-11-01"]),
        (["c3"], ["2026-11-01"]),
    ]


def test_pages_follow_a_comma_joined_link_header(server: FakeServer, client: HttpClient) -> None:
    """GitHub-style pagination (one Link header listing every rel) is followed to the end."""
    server.route("GET", r"^/orgs/acme/repos$", _github_repos)
    names = [b[0]["name"] for b, _ in client.pages("/orgs/acme/repos")]
    assert names == ["repo1", "repo2", "repo3"]
    assert server.count() == 3


def test_pages_refuse_a_repeated_next_url(server: FakeServer, client: HttpClient) -> None:
    """A next link pointing at a page already fetched raises PaginationError, not a loop."""

    def stuck(request: Request) -> Response:
        link = f'<{request.base_url}/stuck?page=2>; rel="next"'
        return Response(body=[request.arg("page")], headers=[("Link", link)])

    server.route("GET", r"^/stuck$", stuck)
    seen: list[Any] = []
    with pytest.raises(PaginationError):
        for body, _ in client.pages("/stuck"):
            seen.append(body)
    assert seen == [[None], ["2"]]
    assert server.count() == 2


def test_pages_survive_random_faults(server: FakeServer, fake_time: FakeTime) -> None:
    """Under seeded random faults every page is fetched and every item yielded exactly once."""
    server.route("GET", r"^/orgs/acme/repos$", _github_repos)
    kinds: list[Fault] = [Status(429, [("Retry-After", "1")]), Status(503), Drop(), Truncated()]
    server.faults.random(Random(7), 0.4, kinds)
    with make_client(server, fake_time, max_attempts=10) as http:
        for _ in range(5):
            names = [b[0]["name"] for b, _ in http.pages("/orgs/acme/repos")]
            assert names == ["repo1", "repo2", "repo3"]
    faulted = [e.fault for e in server.requests if e.fault]
    assert len(faulted) >= 3
    assert server.count() == 15 + len(faulted)


# -- pure helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], {}),
        (['<https://a/x?page=2>; rel="next"'], {"next": "https://a/x?page=2"}),
        (
            ['<https://a/1>; rel="self"', '<https://a/2>; rel="next"'],
            {"self": "https://a/1", "next": "https://a/2"},
        ),
        (
            ['<https://a/?page=2>; rel="next", <https://a/?page=9>; rel="last"'],
            {"next": "https://a/?page=2", "last": "https://a/?page=9"},
        ),
        (["<https://a/2>;rel=next"], {"next": "https://a/2"}),
        (['<https://a/2>; type="application/json"; rel="next"'], {"next": "https://a/2"}),
        (['<https://a/9>; rel="next last"'], {"next": "https://a/9", "last": "https://a/9"}),
        (['<https://a/1>; rel="next"', '<https://a/2>; rel="next"'], {"next": "https://a/1"}),
        (['<https://a/x?q=a,b;c>; rel="next"'], {"next": "https://a/x?q=a,b;c"}),
        (["garbage", "<https://a/1>"], {}),
    ],
    ids=[
        "none",
        "single",
        "okta-separate",
        "github-joined",
        "unquoted",
        "extra-param",
        "two-rels",
        "first-wins",
        "url-punctuation",
        "no-rel",
    ],
)
def test_parse_link_header(values: list[str], expected: dict[str, str]) -> None:
    """parse_link_header maps each rel to its URL across every Link header form vendors send."""
    assert parse_link_header(values) == expected


@given(
    attempt=st.integers(min_value=1, max_value=40),
    asked=st.none() | st.floats(min_value=0, max_value=10_000),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_retry_wait_bounds(attempt: int, asked: float | None, seed: int) -> None:
    """A back-off is never shorter than the server asked nor, unasked, longer than max_backoff."""
    options = HttpOptions(backoff=0.5, max_backoff=60.0)
    wait = retry_wait(attempt, options, asked, Random(seed))
    assert wait >= (asked or 0.0)
    if asked is None:
        ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= wait <= ceiling


def test_real_httpx_headers_reach_the_client(server: FakeServer, client: HttpClient) -> None:
    """The client returns the real httpx response, repeated headers intact."""
    server.route("GET", r"^/api/v1/logs$", _okta_logs)
    response = client.request("GET", "/api/v1/logs", params={"since": "x"})
    assert isinstance(response, httpx.Response)
    assert len(response.headers.get_list("link")) == 2
