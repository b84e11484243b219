"""`aws.cloudtrail`: evidence-relevant events from the trail's log files in S3, incremental per prefix."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.aws._access import AwsAccess, Target, as_connector_error
from connectors.aws._logfile import MAX_NESTING, Unreadable, get_log_object, parse_log_file
from connectors.aws._trail import (
    KIND_OF,
    SERVICE_ASSUMPTIONS,
    FileRead,
    TrailEvent,
    event_key,
    normalise_event,
    read_trail_file,
)
from connectors.aws.config import AwsConfig
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import ConnectorError
from connectors.sdk.items import Checkpoint, Cursor, ItemFailure, Normalised, Skipped, SourceItem

__all__ = ["KIND_OF", "MAX_NESTING", "SERVICE_ASSUMPTIONS", "CloudTrailStream", "PrefetchStats", "TrailEvent",
           "event_key", "get_log_object", "parse_log_file"]

_ACCOUNT = re.compile(r"^\d{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_FILE_TIME = re.compile(r"_(\d{8}T\d{4})Z_[^/]*$")
@dataclass(slots=True)
class PrefetchStats:
    """How far reading ran ahead of storing in one fetch: objects whose read started, objects
    the stream took, the most that were ever started and not yet taken (``<= depth``), and the
    record bytes of files read and not yet taken (now, and the most there ever were)."""

    depth: int
    budget: int
    started: int = 0
    taken: int = 0
    most_ahead: int = 0
    held_bytes: int = 0
    most_held_bytes: int = 0


def _file_time(key: str) -> datetime | None:
    match = _FILE_TIME.search(key)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)


class CloudTrailStream(Stream[AwsConfig, AwsAccess]):
    """Reads new log files under every ``AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/`` prefix.

    The cursor is ``{prefix: last key read}``. Keys are listed after the prefix's last key
    (S3 lists in key order, which is delivery-time order within a prefix), so a re-run with
    nothing new lists and reads nothing. A file that cannot be read is an ``ItemFailure``
    with its key; its prefix's cursor stays before it (later files of that prefix are still
    read, and re-read next time), while other prefixes advance. Failures are yielded last
    so every prefix's progress is offered to the pipeline before its cursor freezes.

    Within a readable file, a relevant record without a readable ``eventTime`` is one
    ``ItemFailure`` (``<key>#<index>``) yielded after the file's checkpoint: the file cannot
    change, so it is reported once and never holds its prefix. AssumeRole calls made by AWS
    services are counted as ``Skipped`` unless ``include_service_role_assumptions``.
    """

    name = "cloudtrail"
    kinds = frozenset({"access_log", "access_change", "config_state"})
    mode = "events"
    prefetch_stats: PrefetchStats | None = None
    """The last fetch's read-ahead figures (set when a fetch reads objects)."""

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        cfg = self.config
        bucket = cfg.cloudtrail_bucket
        target = Target(cfg.cloudtrail_role_arn or None)
        ceiling = cursor.ceiling
        s3 = self.session().client(target, "s3", cfg.regions[0], self.name)
        state: dict[str, str] = dict(cursor.value or {})
        failures: list[ItemFailure] = []
        prefixes = self._discover(s3, bucket, failures)
        # Only files whose delivery minute ended before the run began: none can hold an
        # event after the ceiling, and a file delivered during the run waits for the next.
        latest = cursor.ceiling - timedelta(minutes=1)
        first_day = cursor.floor.strftime("%Y/%m/%d/")
        starts = {prefix: state.get(prefix) or prefix + first_day for prefix in prefixes}
        unlisted: list[ItemFailure] = []

        def plan() -> Iterator[tuple[str, str]]:
            """(prefix, key) of every file to read, in order, listed a page at a time as reading
            needs the next: the first files are read while the rest are listed."""
            for prefix in prefixes:
                try:
                    for key in self._new_keys(s3, bucket, prefix, starts[prefix], latest):
                        yield prefix, key
                except ConnectorError as exc:
                    unlisted.append(ItemFailure(prefix, str(exc), type(exc).__name__))

        held: set[str] = set()
        unread: list[ItemFailure] = []
        remote = self._remote_reader(target, cfg.regions[0]) if cfg.cloudtrail_reader == "process" else None
        for (prefix, key), fetched in self._read_in_order(s3, bucket, plan(), remote, ceiling):
            if isinstance(fetched, Unreadable):
                unread.append(ItemFailure(key, f"unreadable CloudTrail log file: {fetched}"))
                held.add(prefix)
                continue
            if isinstance(fetched, Exception):
                unread.append(ItemFailure(key, str(fetched), type(fetched).__name__))
                held.add(prefix)
                continue
            items, late, unreadable, by_services, _digest = fetched
            yield from items
            if by_services:
                yield Skipped(SERVICE_ASSUMPTIONS, by_services)
            if late:
                held.add(prefix)
            if prefix not in held:
                state[prefix] = key
                yield Checkpoint(dict(state))
            # After the checkpoint, so the cursor passes the file before the failure freezes it;
            # the file cannot change: each is reported once, never read again for it.
            for index, name in unreadable:
                yield ItemFailure(f"{key}#{index}",
                                  f"CloudTrail record {index} ({name}) has no readable eventTime")
        yield from failures  # the prefixes not discovered, not listed, then the files not read
        yield from unlisted
        yield from unread

    # -- listing ---------------------------------------------------------------------------

    def _list(self, s3: Any, **params: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        seen: set[str] = set()
        while True:
            args = {**params, **({"ContinuationToken": token} if token else {})}
            try:
                page = s3.list_objects_v2(**args)
            except Exception as exc:
                raise as_connector_error(exc, f"s3:ListObjectsV2 {params.get('Prefix', '')}") from exc
            yield page
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token or token in seen:
                return
            seen.add(token)

    def _children(self, s3: Any, bucket: str, prefix: str) -> list[str]:
        out: list[str] = []
        for page in self._list(s3, Bucket=bucket, Prefix=prefix, Delimiter="/"):
            out.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return out

    def _discover(self, s3: Any, bucket: str, failures: list[ItemFailure]) -> list[str]:
        """Every ``…/CloudTrail/<region>/`` prefix, for single-account and organisation layouts."""
        root = self.config.cloudtrail_prefix.strip("/")
        base = f"{root}/AWSLogs/" if root else "AWSLogs/"
        found: list[str] = []
        for top in self._children(s3, bucket, base):  # a failure here fails the run: nothing is readable
            segment = top[len(base):-1]
            try:
                if _ACCOUNT.match(segment):
                    accounts = [top]
                elif _ORG.match(segment):
                    accounts = [p for p in self._children(s3, bucket, top) if _ACCOUNT.match(p[len(top):-1])]
                else:
                    continue
                for account in accounts:
                    found.extend(self._children(s3, bucket, account + "CloudTrail/"))
            except ConnectorError as exc:
                failures.append(ItemFailure(top, str(exc), type(exc).__name__))
        return sorted(found)

    def _new_keys(self, s3: Any, bucket: str, prefix: str, start: str, latest: datetime) -> Iterator[str]:
        for page in self._list(s3, Bucket=bucket, Prefix=prefix, StartAfter=start):
            for entry in page.get("Contents", []):
                key: str = entry["Key"]
                if "CloudTrail-Digest" in key or not key.endswith((".json.gz", ".json")):
                    continue
                delivered = _file_time(key)
                if delivered is not None and delivered > latest:
                    return  # keys sort by delivery time within a prefix: the rest are newer still
                yield key

    # -- reading -----------------------------------------------------------------------------

    def _read_object(self, s3: Any, bucket: str, key: str, ceiling: datetime | None) -> FileRead:
        """How one object is read, in a worker thread: ``read_trail_file`` with the stream's
        config; ``Unreadable`` for a file that cannot be read, S3 errors as raised."""
        return read_trail_file(s3, bucket, key, self.config, ceiling)

    def _remote_reader(self, target: Target, region: str) -> Callable[[str, str, datetime | None], FileRead]:
        """``_read_object`` run in this process's reader child (``cloudtrail_reader = "process"``):
        the child builds the same S3 client from the stream's config and the target's current
        credentials (taken again for every object, so refreshed ones are passed on). The child
        is started (``reader_process``) by the first read, so a run with nothing new starts none."""
        from connectors.aws._reader_process import ReadJob, reader_process

        def read(bucket: str, key: str, ceiling: datetime | None) -> FileRead:
            session = self.session().session(target, self.name)  # cached: assumes a role once
            child = reader_process()
            found = session.get_credentials()
            frozen = found.get_frozen_credentials() if found is not None else None
            credentials = None if frozen is None else (frozen.access_key, frozen.secret_key, frozen.token)
            return child.read(ReadJob(self.config, region, credentials, self.connector_name, bucket, key,
                                      ceiling))

        return read

    def _read_in_order(self, s3: Any, bucket: str, plan: Iterable[tuple[str, str]],
                       remote: Callable[[str, str, datetime | None], FileRead] | None = None,
                       ceiling: datetime | None = None,
                       ) -> Iterator[tuple[tuple[str, str], FileRead | Exception]]:
        """Read the planned objects with a small thread pool, yielding them in plan (key) order.

        Fetching and parsing (GET, hash, gunzip and the JSON scan, in ``_read_object``) run in
        the pool while the caller normalises and stores earlier objects. A new read starts
        (when a read ends or the caller takes a file) while fewer than ``cloudtrail_workers``
        reads are running, fewer than ``prefetch_depth`` files are read or being read and not
        yet taken, and the records of the files read and not yet taken hold fewer than
        ``prefetch_bytes``. So memory holds at most ``prefetch_bytes`` plus the files in the
        readers' hands, whatever the plan's length; ``prefetch_stats`` records how far reading
        ran ahead (for tests: bounds, not timings). With ``remote``, each reader thread has the
        reader child do the read and waits for it, so the bounds hold the same. ``plan`` is
        taken an entry at a time, as reads start (under the pool's lock: it may list S3 as it
        goes); ``ceiling``: see ``read_trail_file``.
        """
        workers, depth, budget = self.config.cloudtrail_workers, self.prefetch_depth, self.prefetch_bytes
        stats = self.prefetch_stats = PrefetchStats(depth, budget)
        lock = threading.Lock()
        pending: deque[tuple[tuple[str, str], Future[tuple[FileRead | Exception, int]]]] = deque()
        upcoming = iter(plan)
        running = 0
        closing = False

        def top_up() -> None:
            """Start reads while the bounds allow (the caller holds ``lock``)."""
            nonlocal running
            while not closing and running < workers and len(pending) < depth \
                    and (stats.held_bytes < budget or not pending):
                following = next(upcoming, None)
                if following is None:
                    return
                running += 1
                stats.started += 1
                stats.most_ahead = max(stats.most_ahead, stats.started - stats.taken)
                pending.append((following, pool.submit(read, following[1])))

        def read(key: str) -> tuple[FileRead | Exception, int]:
            nonlocal running
            size = 0
            outcome: FileRead | Exception
            try:
                outcome = remote(bucket, key, ceiling) if remote is not None \
                    else self._read_object(s3, bucket, key, ceiling)
                size = sum(len(item.raw) for item in outcome[0])
            except Unreadable as exc:
                outcome = exc
            except Exception as exc:
                try:
                    outcome = as_connector_error(exc, f"s3:GetObject {key}")
                except Exception as bug:
                    outcome = bug
            with lock:
                running -= 1
                stats.held_bytes += size
                stats.most_held_bytes = max(stats.most_held_bytes, stats.held_bytes)
                top_up()
            return outcome, size

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cloudtrail-read") as pool:
            try:
                with lock:
                    top_up()
                while True:
                    with lock:
                        if not pending:
                            return
                        entry, future = pending.popleft()
                    result, size = future.result()
                    with lock:
                        stats.taken += 1
                        stats.held_bytes -= size
                        top_up()
                    yield entry, result
                    del result  # the parsed file is the caller's now; hold no reference here
            finally:
                with lock:
                    closing = True
                    for _, future in pending:
                        future.cancel()

    prefetch_bytes: int = 32 * 1024 * 1024
    """Record bytes of files read ahead and not yet taken at which no further read starts."""

    @property
    def prefetch_depth(self) -> int:
        """How many files may be read or being read ahead of the one being stored: 16 per worker."""
        return 16 * self.config.cloudtrail_workers

    # -- normalising -------------------------------------------------------------------------

    def normalise(self, item: SourceItem) -> Normalised:
        trail: TrailEvent = item.obj
        if trail.normalised is not None:  # normalised by the file's reader (``read_trail_file``)
            return trail.normalised
        return normalise_event(trail, item.key)
