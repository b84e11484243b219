"""FakeServer as a real httpx client sees it: routes, headers, the request log and every fault."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from random import Random

import httpx
import pytest

from sandbox._http import (
    Drop,
    FakeServer,
    Request,
    Response,
    Slow,
    Status,
    Truncated,
)


def _item(request: Request) -> Response:
    return Response(body={"item": request.params["item"], "groups": list(request.groups)})


def _links(request: Request) -> Response:
    return Response(
        body=[],
        headers=[
            ("Link", f'<{request.base_url}/links>; rel="self"'),
            ("Link", f'<{request.base_url}/links?after=2>; rel="next"'),
        ],
    )


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.route("GET", r"^/items/(?P<item>[^/]+)$", _item)
    fake.route("POST", r"^/echo$", lambda r: Response(201, {"json": r.json, "x": r.arg("x")}))
    fake.route("GET", r"^/links$", _links)
    fake.route("GET", r"^/raw$", lambda r: Response(body=b"plain", headers=[("Content-Type", "text/plain")]))
    with fake:
        yield fake


@pytest.fixture
def client(server: FakeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        yield http


def _local_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def test_url_names_a_bound_loopback_port(server: FakeServer) -> None:
    """The server listens on 127.0.0.1 at a real port chosen by the OS."""
    url = httpx.URL(server.url)
    assert url.host == "127.0.0.1"
    assert url.port not in (None, 0)


def test_url_before_start_is_an_error() -> None:
    """A server that has not started has no URL to hand out."""
    with pytest.raises(RuntimeError):
        _ = FakeServer().url


def test_route_receives_groups_and_query(server: FakeServer, client: httpx.Client) -> None:
    """A route handler gets the pattern's groups; the log keeps every value of a repeated param."""
    response = client.get("/items/abc", params=[("x", "1"), ("x", "2")])
    assert response.status_code == 200
    assert response.json() == {"item": "abc", "groups": ["abc"]}
    (entry,) = server.requests
    assert (entry.method, entry.path, entry.query) == ("GET", "/items/abc", {"x": ["1", "2"]})
    assert entry.status == 200
    assert entry.fault is None
    assert entry.headers["user-agent"].startswith("python-httpx/")


def test_post_json_body_reaches_the_handler(client: httpx.Client) -> None:
    """A POSTed JSON body is parsed for the handler and the response status is the handler's."""
    response = client.post("/echo", params={"x": "y"}, json={"jql": "project = CHG"})
    assert response.status_code == 201
    assert response.json() == {"json": {"jql": "project = CHG"}, "x": "y"}


def test_chunked_request_body_is_read(client: httpx.Client) -> None:
    """A body sent with chunked transfer encoding arrives whole."""

    def parts() -> Iterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    response = client.post("/echo", content=parts())
    assert response.json()["json"] == {"a": 1}


def test_repeated_headers_are_sent_separately(client: httpx.Client) -> None:
    """A header listed twice in a Response reaches the client as two headers, in order."""
    response = client.get("/links")
    base = str(client.base_url).rstrip("/")
    assert response.headers.get_list("link") == [
        f'<{base}/links>; rel="self"',
        f'<{base}/links?after=2>; rel="next"',
    ]


def test_bytes_body_is_sent_verbatim(client: httpx.Client) -> None:
    """A bytes body is sent as is, with the handler's content type and an exact length."""
    response = client.get("/raw")
    assert response.content == b"plain"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-length"] == "5"


def test_head_sends_length_without_body(client: httpx.Client, server: FakeServer) -> None:
    """A HEAD answer carries the Content-Length of the body it does not send."""
    server.route("HEAD", r"^/raw$", lambda r: Response(body=b"plain"))
    response = client.head("/raw")
    assert response.headers["content-length"] == "5"
    assert response.content == b""
    assert client.get("/raw").content == b"plain"


def test_unknown_path_is_404_json(client: httpx.Client, server: FakeServer) -> None:
    """A path no route matches gets a JSON 404, and is logged."""
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert server.requests[-1].status == 404


def test_known_path_with_other_method_is_405(client: httpx.Client) -> None:
    """A path routed for other methods gets a 405 naming the allowed ones."""
    response = client.delete("/echo")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_handler_exception_is_a_500_and_kept(server: FakeServer, client: httpx.Client) -> None:
    """A handler that raises answers 500 and its exception is kept for the test to see."""

    def broken(request: Request) -> Response:
        raise KeyError("bug in the fake")

    server.route("GET", r"^/broken$", broken)
    response = client.get("/broken")
    assert response.status_code == 500
    assert [type(e) for e in server.errors] == [KeyError]
    assert client.get("/raw").status_code == 200


def test_keep_alive_reuses_one_connection(client: httpx.Client) -> None:
    """Consecutive requests from one httpx client travel over one HTTP/1.1 connection."""
    first = client.get("/raw")
    second = client.get("/items/1")
    assert first.http_version == "HTTP/1.1"
    assert "connection" not in first.headers
    assert _local_port(first) == _local_port(second)


def test_status_fault_replaces_the_route_once(server: FakeServer, client: httpx.Client) -> None:
    """A Status fault answers with its code and headers instead of the route, then is used up."""
    calls: list[str] = []

    def counted(request: Request) -> Response:
        calls.append(request.path)
        return Response(body={"ok": True})

    server.route("GET", r"^/counted$", counted)
    server.faults.push(Status(429, [("Retry-After", "3"), ("X-Rate-Limit-Remaining", "0")]))
    limited = client.get("/counted")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.headers["x-rate-limit-remaining"] == "0"
    assert limited.json()["status"] == 429
    assert calls == []
    assert client.get("/counted").json() == {"ok": True}
    assert calls == ["/counted"]
    assert [(e.status, e.fault) for e in server.requests] == [(429, "status:429"), (200, None)]


def test_status_fault_with_custom_body(server: FakeServer, client: httpx.Client) -> None:
    """A Status fault sends the body it was given."""
    server.faults.push(Status(503, body=b"<html>upstream</html>"))
    response = client.get("/raw")
    assert (response.status_code, response.content) == (503, b"<html>upstream</html>")


def test_truncated_body_raises_then_recovers(server: FakeServer, client: httpx.Client) -> None:
    """A Truncated answer promises more bytes than it sends; the client sees a protocol error."""
    server.faults.push(Truncated())
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/items/truncated")
    assert client.get("/items/again").json()["item"] == "again"
    assert [(e.status, e.fault) for e in server.requests] == [(200, "truncated"), (200, None)]


def test_drop_raises_a_transport_error(server: FakeServer, client: httpx.Client) -> None:
    """A Drop closes the connection with no answer; the client sees a transport error."""
    server.faults.push(Drop())
    with pytest.raises(httpx.TransportError):
        client.get("/raw")
    assert client.get("/raw").status_code == 200
    assert [(e.status, e.fault) for e in server.requests] == [(0, "drop"), (200, None)]


def test_slow_answers_after_the_delay(server: FakeServer, client: httpx.Client) -> None:
    """A Slow fault delays the normal answer by at least its seconds."""
    server.faults.push(Slow(0.3))
    started = time.monotonic()
    response = client.get("/raw")
    assert time.monotonic() - started >= 0.3
    assert response.content == b"plain"
    assert server.requests[-1].fault == "slow:0.3"


def test_slow_beyond_client_timeout_is_a_read_timeout(server: FakeServer) -> None:
    """A Slow fault longer than the client's read timeout surfaces as httpx.ReadTimeout."""
    server.faults.push(Slow(2.0))
    with httpx.Client(base_url=server.url, timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
        http.get("/raw")


def test_faults_are_fifo_and_filtered(server: FakeServer, client: httpx.Client) -> None:
    """A request takes the oldest queued fault whose path prefix and method it matches."""
    server.faults.push(Status(500), times=2, path_prefix="/items")
    server.faults.push(Status(503))
    server.faults.push(Status(502), method="post")
    assert server.faults.pending == 4
    assert client.get("/raw").status_code == 503
    assert client.post("/echo", json={}).status_code == 502
    assert [client.get("/items/1").status_code for _ in range(3)] == [500, 500, 200]
    assert server.faults.pending == 0


def test_fault_queue_clear(server: FakeServer, client: httpx.Client) -> None:
    """Clearing the fault queue leaves later requests untouched."""
    server.faults.push(Drop(), times=5)
    server.faults.clear()
    assert client.get("/raw").status_code == 200


def test_fault_arguments_are_checked(server: FakeServer) -> None:
    """A fault pushed zero times, or a random rate outside [0, 1], is refused."""
    with pytest.raises(ValueError):
        server.faults.push(Drop(), times=0)
    with pytest.raises(ValueError):
        server.faults.random(Random(1), 1.5, [Drop()])
    with pytest.raises(ValueError):
        server.faults.random(Random(1), 0.5, [])


def _random_run(seed: int) -> list[str | None]:
    with FakeServer() as fake, httpx.Client(base_url=fake.url) as http:
        fake.route("GET", r"^/r$", lambda r: Response(body={}))
        fake.faults.random(Random(seed), 0.5, [Status(503), Status(429)])
        for _ in range(40):
            http.get("/r")
        return [entry.fault for entry in fake.requests]


def test_random_faults_are_reproducible_from_the_seed() -> None:
    """The same seed injects the same faults into the same sequence of requests."""
    first = _random_run(11)
    assert first == _random_run(11)
    assert {"status:503", "status:429", None} == set(first)


def test_random_faults_respect_prefix_and_off(server: FakeServer, client: httpx.Client) -> None:
    """Random faults hit only their path prefix, and rate 0 turns them off."""
    server.faults.random(Random(3), 1.0, [Status(503)], path_prefix="/items")
    assert client.get("/raw").status_code == 200
    assert client.get("/items/1").status_code == 503
    server.faults.random(Random(3), 0.0, [])
    assert client.get("/items/1").status_code == 200


def test_count_and_clear_log(server: FakeServer, client: httpx.Client) -> None:
    """count filters the log by method and path prefix; clear_log empties it."""
    client.get("/items/1")
    client.get("/items/2")
    client.post("/echo", json={})
    assert server.count() == 3
    assert server.count("get") == 2
    assert server.count(path_prefix="/items") == 2
    assert server.count("POST", "/items") == 0
    server.clear_log()
    assert server.requests == ()
    assert server.count() == 0


def test_log_is_complete_under_concurrency(server: FakeServer) -> None:
    """Requests from many threads at once are all logged."""

    def worker() -> None:
        with httpx.Client(base_url=server.url) as http:
            for _ in range(10):
                http.get("/raw")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.count("GET", "/raw") == 80


def test_stop_closes_connections_and_interrupts_slow() -> None:
    """stop returns promptly even with a slow request in flight and idle keep-alive clients."""
    fake = FakeServer().start()
    fake.route("GET", r"^/r$", lambda r: Response(body={}))
    idle = httpx.Client(base_url=fake.url)
    idle.get("/r")
    fake.faults.push(Slow(30.0))
    errors: list[BaseException] = []

    def slow_call() -> None:
        try:
            with httpx.Client(base_url=fake.url, timeout=10.0) as http:
                http.get("/r")
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=slow_call)
    caller.start()
    while fake.faults.pending:
        time.sleep(0.01)
    started = time.monotonic()
    fake.stop()
    caller.join(timeout=5.0)
    assert time.monotonic() - started < 3.0
    assert not caller.is_alive()
    with pytest.raises(httpx.TransportError):
        idle.get("/r")
    idle.close()
    fake.stop()  # idempotent


def test_start_twice_is_refused() -> None:
    """A server runs once; starting it again is an error."""
    with FakeServer() as fake, pytest.raises(RuntimeError):
        fake.start()
