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


def main(argv: list[str]) -> int:
    """Child: ``python -m storage.writer JOBS_FD REPLIES_FD LIFELINE_FD``.

    The first frame is the store URL (never on the command line: it may hold a password);
    the child answers ("ready",) once the store is open, then commits each job in order and
    answers ("ok", new), ("conflict",) or ("error", class, message); an empty frame ends the
    run with ("done", peak RSS in KiB).
    """
    jobs_fd, replies_fd, lifeline = (int(a) for a in argv)
    threading.Thread(target=_watch, args=(lifeline,), daemon=True).start()
    with os.fdopen(jobs_fd, "rb") as jobs, os.fdopen(replies_fd, "wb") as replies:
        try:
            url = _recv(jobs)
        except EOFError:
            return 0
        store = Store(create_store_engine(url))  # the parent opened (and migrated) the store
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
            _send(replies, ("done", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
        finally:
            store.close()
    return 0


class WriterProcess:
    """The parent's handle on one writer: ``submit`` a job, ``wait`` for its outcome, ``close``."""

    def __init__(self, url: str) -> None:
        jobs_r, jobs_w = os.pipe()
        replies_r, replies_w = os.pipe()
        life_r, self._lifeline = os.pipe()
        child_fds = (jobs_r, replies_w, life_r)
        try:
            # A fresh interpreter, not a fork: the collector's scheduler and HTTP threads must
            # not be copied mid-flight, and no __main__ is re-imported (multiprocessing would).
            self._process = subprocess.Popen(
                [sys.executable, "-m", "storage.writer", *map(str, child_fds)],
                pass_fds=child_fds, stdin=subprocess.DEVNULL, close_fds=True,
            )
        finally:
            for fd in child_fds:  # the child holds these now
                os.close(fd)
        self._jobs = os.fdopen(jobs_w, "wb")
        self._replies = os.fdopen(replies_r, "rb")
        self.in_flight = False
        self.is_ready = False
        self.peak_rss_kb = 0
        self._put(url)

    def ready(self) -> bool:
        """Whether the writer has started (imports done, store open); never blocks.

        Until then the run keeps committing inline, so starting a writer never stalls a run.
        A writer that died while starting raises WriterError.
        """
        if not self.is_ready and select.select([self._replies], [], [], 0)[0]:
            try:
                reply = _recv(self._replies)
            except (EOFError, OSError):
                raise WriterError(
                    f"the writer process did not start (exit code {self._process.poll()})"
                ) from None
            self.is_ready = reply == ("ready",)
        return self.is_ready

    def _put(self, payload: Any) -> None:
        try:
            _send(self._jobs, payload)
        except OSError as exc:
            raise WriterError(f"the writer process is gone: {exc}") from None

    def submit(self, job: BatchJob) -> None:
        """Hand a batch to the writer; the previous one must have been waited for."""
        if self.in_flight:
            raise RuntimeError("a batch is already in flight")
        while not self.ready():  # only a caller that did not ask ready() first waits here
            select.select([self._replies], [], [], 1.0)
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
        """Stop the writer after its last batch (call ``wait`` first) and reap it."""
        if not self.is_ready:  # still starting: it holds no transaction, nothing to wait for
            self._process.kill()
        try:
            _send(self._jobs, ())
            reply = _recv(self._replies)
            if reply[0] == "done":
                self.peak_rss_kb = int(reply[1])
        except (EOFError, OSError):
            pass
        finally:
            os.close(self._lifeline)
            for pipe in (self._jobs, self._replies):
                with contextlib.suppress(OSError):
                    pipe.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
