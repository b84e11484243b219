"""A child process that reads CloudTrail log objects (GET, hash, gunzip, parse) off this process's GIL."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import orjson

from connectors.aws._trail import TrailEvent
from connectors.sdk import errors as _errors
from connectors.sdk.errors import ConnectorError, RetriableError
from connectors.sdk.items import Normalised, SourceItem
from connectors.sdk.retry import add_listener, emit

if TYPE_CHECKING:
    from connectors.aws._trail import FileRead
    from connectors.aws.config import AwsConfig

__all__ = ["ReadJob", "reader_process"]

_THREADS = 32
"""Reader threads in the child: the most any stream's ``cloudtrail_workers`` may ask for; each
stream still bounds its own reads (and so the child's memory) by its own workers."""
_GONE = "aws: the CloudTrail reader process exited"
_CACHED_CLIENTS = 8
_YOUNG_GC_THRESHOLD = 50_000
"""New container objects before the child collects its youngest generation (see ``_serve``)."""
"""(config, region, credentials) combinations whose clients the child keeps."""


@dataclass(frozen=True, slots=True)
class ReadJob:
    """One object to read, with what the child needs to build the very client the stream would:
    the stream's config, the region, and frozen credentials (access key, secret, token; None
    for the child's own standard chain). Credentials travel only over the pipe to the child."""

    config: AwsConfig
    region: str
    credentials: tuple[str, str, str | None] | None
    connector: str
    bucket: str
    key: str
    ceiling: datetime | None = None
    """The run's ceiling (``read_trail_file``)."""


class ReaderProcess:
    """The child (a new interpreter running this module: no fork of a threaded daemon, and
    unlike multiprocessing's ``spawn`` it never imports the parent's main script) and a socket
    pair to it, which carries pickled requests and answers.

    ``read`` blocks the calling thread (not the GIL) until the child answers; answers arrive on
    one receiving thread, in any order, matched by request number. If the child dies, every
    waiting read and every later one fails with a ``RetriableError`` (per object, as an S3
    error would) and ``reader_process`` starts a new child for the next fetch.
    """

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        path = os.pathsep.join(p for p in sys.path if p)  # what this process imports, the child does
        env = {**os.environ, "PYTHONPATH": path}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "connectors.aws._reader_process", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL, close_fds=True)
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._lock = threading.Lock()
        self._waiting: dict[int, Future[tuple[Any, ...]]] = {}
        self._next = 0
        self.alive = True
        threading.Thread(target=self._receive, name="cloudtrail-reader-answers", daemon=True).start()

    def read(self, job: ReadJob) -> FileRead:
        """What ``read_trail_file`` returns for the object (its relevant records, normalised, the
        AWS services' AssumeRole calls skipped, and its SHA-256), read by the child; raises
        ``Unreadable`` for a file that cannot be read, a ``ConnectorError`` for an S3 error
        (already mapped by the child), and emits the child's request counts here."""
        from connectors.aws._logfile import Unreadable

        future: Future[tuple[Any, ...]] = Future()
        with self._lock:
            if not self.alive:
                raise RetriableError(_GONE)
            ident = self._next
            self._next += 1
            self._waiting[ident] = future
            try:
                self._conn.send((ident, job))
            except (OSError, ValueError) as exc:
                del self._waiting[ident]
                self.alive = False  # the pipe is broken: the next fetch starts a new child
                raise RetriableError(f"{_GONE} ({type(exc).__name__})") from None
        outcome = future.result()
        requests, retries = outcome[-2], outcome[-1]
        for _ in range(requests):
            emit("request", "aws")
        for _ in range(retries):
            emit("retry", "aws")
        if outcome[0] == "ok":
            return _unpack(outcome[1]), outcome[2], outcome[3], outcome[4], outcome[5]
        if outcome[0] == "unreadable":
            raise Unreadable(outcome[1])
        raise _rebuild(outcome[1], outcome[2], outcome[3])

    def _receive(self) -> None:
        while True:
            try:
                ident, outcome = self._conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                future = self._waiting.pop(ident, None)
            if future is not None:
                future.set_result(outcome)
        with self._lock:
            self.alive = False
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.set_result(("error", "RetriableError", (_GONE,), {}, 0, 0))

    def close(self) -> None:
        """Ask the child to finish (it ends its reads and exits), then make sure it has."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._conn.send(None)
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        self._conn.close()


def _pack(items: list[SourceItem]) -> tuple[Any, ...]:
    """A file's items for the pipe, to be read back by ``_unpack``: their exact bytes as a list,
    and every other field (key, eventTime, the Normalised fields, the object's bucket, key and
    SHA-256) in one orjson document, which costs a third of pickling them and unpickling them
    here. The record's value does not cross: ``TrailEvent.event`` parses it from the bytes if
    asked for.

    orjson gives back exactly the values it wrote (key order included) except NaN and Infinity,
    which it writes as null, and it refuses integers past 64 bits and lone surrogates. So a
    file whose records may hold NaN or Infinity (their text anywhere in an item's bytes), that
    orjson refuses, or with an item not normalised (normalising it raised) is pickled as it is."""
    rows: list[tuple[Any, ...]] = []
    source: tuple[str, str, str] | None = None
    for item in items:
        trail, raw = item.obj, item.raw
        p = trail.normalised
        if p is None or p.criteria is not None or b"NaN" in raw or b"Infinity" in raw:
            return "pickle", items
        source = (trail.bucket, trail.key, trail.object_sha256)
        rows.append((item.key, item.observed_at, p.kind, p.actor, p.source_url, p.data, p.exception))
    try:
        return "json", [item.raw for item in items], orjson.dumps([source, rows])
    except TypeError:  # an integer past 64 bits, a lone surrogate
        return "pickle", items


def _unpack(packed: tuple[Any, ...]) -> list[SourceItem]:
    """The items ``_pack`` sent: the same values, types and order."""
    if packed[0] == "pickle":
        items: list[SourceItem] = packed[1]
        return items
    parse = datetime.fromisoformat
    source, rows = orjson.loads(packed[2])
    if source is None:
        return []
    bucket, key, digest = source
    return [SourceItem(ident, parse(observed), raw,
                       TrailEvent(None, bucket, key, digest, Normalised(kind, actor, url, data, exception),
                                  raw))
            for (ident, observed, kind, actor, url, data, exception), raw
            in zip(rows, packed[1], strict=True)]


def _rebuild(name: str, args: tuple[Any, ...], attrs: dict[str, Any]) -> Exception:
    """The child's error as the same ``connectors.sdk.errors`` class (built without its
    ``__init__``, whose arguments the message already holds); any other as a ConnectorError."""
    cls = getattr(_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, ConnectorError):
        error = cls.__new__(cls)
        error.args = tuple(args)
        error.__dict__.update(attrs)
        return error
    return ConnectorError(f"{name}: {args[0] if args else ''}")


_started_lock = threading.Lock()
_started: list[ReaderProcess] = []


def reader_process() -> ReaderProcess:
    """This process's reader child, started on first use and kept for later fetches (starting
    one costs a Python start and boto3's import); a dead one is replaced."""
    with _started_lock:
        if not _started or not _started[-1].alive or _started[-1]._process.poll() is not None:
            _started[:] = [ReaderProcess()]
        return _started[-1]


@atexit.register
def _close_at_exit() -> None:
    with _started_lock:
        for child in _started:
            child.close()


# -- the child ---------------------------------------------------------------------------------

_counts = threading.local()


def _count(event: str, connector: str) -> None:
    """The child's listener: count this thread's requests and retries for the read it runs."""
    if connector == "aws" and hasattr(_counts, "requests"):
        if event == "request":
            _counts.requests += 1
        elif event == "retry":
            _counts.retries += 1


def _serve(conn: Connection) -> None:
    """The child's loop: each request read by a thread of its own; ends when the parent closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # Parsing allocates a dozen containers per record, all freed by reference counting when
    # the file is answered: a young collection every 700 (the default) costs ~10% of parsing
    # and finds nothing. The modules imported so far are never garbage: out of every collection.
    gc.freeze()
    gc.set_threshold(_YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])
    add_listener(_count)
    send_lock = threading.Lock()
    readers: dict[tuple[Any, ...], Any] = {}
    readers_lock = threading.Lock()
    with ThreadPoolExecutor(_THREADS, thread_name_prefix="cloudtrail-read") as pool:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            pool.submit(_serve_one, conn, send_lock, readers, readers_lock, *message)
    conn.close()


def _reader_for(job: ReadJob, readers: dict[tuple[Any, ...], Any], lock: threading.Lock) -> Any:
    """The S3 client for the job's config, region and credentials (cached)."""
    from connectors.aws._access import AwsAccess, Target, _new_session

    key = (job.config, job.region, job.credentials, job.connector)
    with lock:  # held while a client is built, so the first reads build one, not one each
        cached = readers.get(key)
        if cached is not None:
            return cached
        if len(readers) >= _CACHED_CLIENTS:
            readers.clear()
        names = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
        credentials = {k: v for k, v in zip(names, job.credentials or (), strict=False) if v}
        # The child's clients only GET log objects, and no timestamp of the answer is read.
        access = AwsAccess(job.config, _new_session(timestamps_as_text=True, **credentials))
        # "cloudtrail": the stream's name, which the client's request counting is labelled with.
        client = readers[key] = access.client(Target(None), "s3", job.region, "cloudtrail")
        return client


def _serve_one(conn: Connection, send_lock: threading.Lock, readers: dict[tuple[Any, ...], Any],
               readers_lock: threading.Lock, ident: int, job: ReadJob) -> None:
    """Read one object as the stream's reader thread would, and send the outcome back."""
    from connectors.aws._access import as_connector_error
    from connectors.aws._logfile import Unreadable
    from connectors.aws._trail import read_trail_file

    _counts.requests = _counts.retries = 0
    outcome: tuple[Any, ...]
    try:
        s3 = _reader_for(job, readers, readers_lock)
        items, late, unreadable, by_services, digest = read_trail_file(s3, job.bucket, job.key, job.config,
                                                                      job.ceiling)
        outcome = ("ok", _pack(items), late, unreadable, by_services, digest)  # the relevant records
    except Unreadable as exc:
        outcome = ("unreadable", str(exc))
    except Exception as exc:
        try:
            error: Exception = as_connector_error(exc, f"s3:GetObject {job.key}")
        except Exception as bug:
            error = bug
        outcome = ("error", type(error).__name__, tuple(str(a) for a in error.args),
                   {k: v for k, v in vars(error).items() if isinstance(v, str | None)})
    outcome += (_counts.requests, _counts.retries)
    try:
        with send_lock:
            conn.send((ident, outcome))
    except (OSError, ValueError):
        pass  # the parent is gone; the loop ends at its next receive


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
