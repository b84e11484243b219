"""A writer process: commits one run's batches on a second core while the run reads the next.

The pipeline is CPU-bound Python; SQLite's inserts are CPU-bound C that re-takes the GIL for
every row, so a writer *thread* only trades places with the reader (measured slower). A
process does not share the GIL: the run hands each finished batch over a pipe (marshal: plain
tuples of strings) and goes on reading while the child commits it with ``Store.commit_batch``,
the same single transaction the inline path uses (records + filings + cursor compare-and-set
+ run row). Batches are committed strictly in order, at most one in flight, so memory stays
bounded and a crash loses at most uncommitted batches, exactly as inline.

The child dies with its run: it watches a lifeline pipe that only the parent holds open, and
exits at once (rolling back any open transaction) when the parent is gone, so a killed
collector never leaves a writer that commits behind the back of the next run.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any

from storage.engine import create_store_engine
from storage.store import CursorConflict, EvidenceRow, FilingRow, Store

__all__ = ["BatchJob", "WriterError", "WriterProcess"]

_FRAME = struct.Struct("<Q")


def _send(pipe: IO[bytes], payload: Any) -> None:
    data = marshal.dumps(payload)
    pipe.write(_FRAME.pack(len(data)))
    pipe.write(data)
    pipe.flush()


def _recv(pipe: IO[bytes]) -> Any:
    """The next frame, or EOFError when the other side closed (or died)."""
    head = pipe.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError
    (size,) = _FRAME.unpack(head)
    data = pipe.read(size)
    if len(data) < size:
        raise EOFError
    # marshal, not pickle: plain tuples of strings, and the bytes come from our own process
    # pair over a private pipe.
    return marshal.loads(data)  # noqa: S302


class WriterError(Exception):
    """The writer process failed a commit or died; the batch it held was not stored."""


@dataclass(frozen=True, slots=True)
class BatchJob:
    """One batch and the cursor and run-row values that commit with it."""

    stream: str
    run_id: str
    records: list[EvidenceRow]
    filings: list[FilingRow]
    expected: str | None
    cursor: str | None
    at: str
    run_values: dict[str, Any]

    def row(self) -> tuple[Any, ...]:
        """The job as ``Store.commit_batch``'s arguments, in order."""
        return (self.stream, self.run_id, self.records, self.filings, self.expected,
                self.cursor, self.at, self.run_values)


def _watch(lifeline: int) -> None:
    """Exit the moment the parent's end of the lifeline closes (the parent died)."""
    with contextlib.suppress(OSError):
        os.read(lifeline, 1)
    os._exit(3)


def _plain(value: Any) -> Any:
    """``value`` with str subclasses (a StrEnum kind, say) as plain str, which marshal needs."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def main(argv: list[str]) -> int:
    """Child: ``python -m storage.writer JOBS_FD REPLIES_FD LIFELINE_FD``.

    The first frame is the store URL (never on the command line: it may hold a password);
    the child answers ("ready",) once it holds a connection to the store, or ("error", class,
    message) when it cannot, then commits each job in order and answers ("ok", new),
    ("conflict",) or ("error", class, message); an empty frame ends the run with ("done",
    peak RSS in KiB).
    """
    # Stop signals are for the collector, which lets the batch in flight commit and then
    # closes this writer; a group-wide SIGTERM or Ctrl-C must not kill it mid-commit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    jobs_fd, replies_fd, lifeline = (int(a) for a in argv)
    threading.Thread(target=_watch, args=(lifeline,), daemon=True).start()
    with os.fdopen(jobs_fd, "rb") as jobs, os.fdopen(replies_fd, "wb") as replies:
        try:
            url = _recv(jobs)
        except EOFError:
            return 0
        store = Store(create_store_engine(url))  # the parent opened (and migrated) the store
        try:
            with store.engine.connect() as conn:  # ready means able to commit, not just imported
                conn.exec_driver_sql("SELECT 1")
        except Exception as exc:
            _send(replies, ("error", type(exc).__name__, str(exc)[:2000]))
            store.close()
            return 1
        _send(replies, ("ready",))
        try:
            while True:
                try:
                    job = _recv(jobs)
                except EOFError:
                    return 0
                if not job:
                    break
                try:
                    new = store.commit_batch(*job)
                except CursorConflict:
                    reply: tuple[Any, ...] = ("conflict",)
                except Exception as exc:  # reported to the run, which fails with it
                    reply = ("error", type(exc).__name__, str(exc)[:2000])
                else:
                    reply = ("ok", new)
                _send(replies, reply)
        finally:
            store.close()
        _send(replies, ("done", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    return 0


def _readable(pipe: IO[bytes], timeout: float) -> bool:
    """Whether ``pipe`` has data (or EOF) within ``timeout`` seconds; poll(), so any fd number."""
    poller = select.poll()
    poller.register(pipe.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(int(timeout * 1000)))


class WriterProcess:
    """The parent's handle on one writer: ``submit`` a job, ``wait`` for its outcome, ``close``.

    Raises WriterError when the process cannot be started (no fd or process is left behind).
    """

    CLOSE_TIMEOUT = 60.0

    def __init__(self, url: str) -> None:
        fds: list[int] = []
        try:
            jobs_r, jobs_w = os.pipe()
            fds += (jobs_r, jobs_w)
            replies_r, replies_w = os.pipe()
            fds += (replies_r, replies_w)
            life_r, life_w = os.pipe()
            fds += (life_r, life_w)
            child_fds = (jobs_r, replies_w, life_r)
            # A fresh interpreter, not a fork: the collector's scheduler and HTTP threads must
            # not be copied mid-flight, and no __main__ is re-imported (multiprocessing would).
            self._process = subprocess.Popen(
                [sys.executable, "-m", "storage.writer", *map(str, child_fds)],
                pass_fds=child_fds, stdin=subprocess.DEVNULL, close_fds=True,
            )
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            raise WriterError(f"the writer process could not be started: {exc}") from None
        for fd in child_fds:  # the child holds these now
            os.close(fd)
        self._lifeline = life_w
        self._jobs = os.fdopen(jobs_w, "wb")
        self._replies = os.fdopen(replies_r, "rb")
        self.in_flight = False
        self.is_ready = False
        self.peak_rss_kb = 0
        try:
            self._put(url)
        except WriterError as exc:  # it died at once (no interpreter, no module): reap, report
            self.close()
            raise WriterError(f"the writer process did not start: {exc}") from None

    def ready(self) -> bool:
        """Whether the writer has started and holds a connection to the store; never blocks.

        Until then the run keeps committing inline, so starting a writer never stalls a run.
        A writer that failed to start raises WriterError.
        """
        if not self.is_ready and _readable(self._replies, 0):
            try:
                reply = _recv(self._replies)
            except (EOFError, OSError):
                raise WriterError(
                    f"the writer process did not start (exit code {self._process.poll()})"
                ) from None
            if reply != ("ready",):
                raise WriterError(f"the writer process did not start: {reply[1]}: {reply[2]}")
            self.is_ready = True
        return self.is_ready

    def _put(self, payload: Any) -> None:
        try:
            try:
                _send(self._jobs, payload)
            except ValueError:  # a str subclass somewhere: marshal takes plain values only
                _send(self._jobs, _plain(payload))
        except OSError as exc:
            raise WriterError(f"the writer process is gone: {exc}") from None

    def submit(self, job: BatchJob) -> None:
        """Hand a batch to the writer; the previous one must have been waited for."""
        if self.in_flight:
            raise RuntimeError("a batch is already in flight")
        while not self.ready():  # only a caller that did not ask ready() first waits here
            _readable(self._replies, 1.0)
        self._put(job.row())
        self.in_flight = True

    def wait(self) -> int:
        """The outcome of the batch in flight: how many records were new, or the error it met."""
        self.in_flight = False
        try:
            reply = _recv(self._replies)
        except (EOFError, OSError):
            code = self._process.poll()
            raise WriterError(f"the writer process died (exit code {code})") from None
        if reply[0] == "ok":
            return int(reply[1])
        if reply[0] == "conflict":
            raise CursorConflict("cursor moved")
        raise WriterError(f"{reply[1]}: {reply[2]}")

    def close(self) -> None:
        """Stop the writer after its last batch (call ``wait`` first) and reap it.

        A writer still starting holds no transaction and is killed; a ready one finishes and
        exits 0 before its lifeline is cut; one that does not answer in CLOSE_TIMEOUT is killed.
        """
        try:
            if not self.is_ready:
                self._process.kill()
            else:
                _send(self._jobs, ())
                if _readable(self._replies, self.CLOSE_TIMEOUT):
                    reply = _recv(self._replies)
                    if reply[0] == "done":
                        self.peak_rss_kb = int(reply[1])
        except (EOFError, OSError):
            pass
        finally:
            for pipe in (self._jobs, self._replies):
                with contextlib.suppress(OSError):
                    pipe.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            os.close(self._lifeline)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
