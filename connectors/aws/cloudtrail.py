"""`aws.cloudtrail`: evidence-relevant events from the trail's log files in S3, incremental per prefix."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from connectors.aws._access import AwsAccess, Target, as_connector_error
from connectors.aws._logfile import (
    _MIB,
    MAX_NESTING,
    Unreadable,
    get_log_object,
    parse_log_file,
    read_log_object,
)
from connectors.aws.config import AwsConfig
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import ConnectorError
from connectors.sdk.items import Checkpoint, Cursor, ItemFailure, Normalised, Skipped, SourceItem

__all__ = ["KIND_OF", "MAX_NESTING", "SERVICE_ASSUMPTIONS", "CloudTrailStream", "PrefetchStats", "TrailEvent",
           "event_key", "get_log_object", "parse_log_file"]

_SIGN_IN = "signin.amazonaws.com"
# IAM Identity Center's sign-ins (UserAuthentication of an IdentityCenterUser) are the human
# sign-ins of an organisation that uses it; ConsoleLogin covers IAM users, root and roles.
_LOGINS = {"ConsoleLogin": _SIGN_IN, "UserAuthentication": _SIGN_IN}
_ROLES = dict.fromkeys(("AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"), "sts.amazonaws.com")
_IAM_CHANGES = dict.fromkeys((
    "CreateUser", "DeleteUser", "UpdateUser",
    "CreateGroup", "DeleteGroup", "UpdateGroup", "AddUserToGroup", "RemoveUserFromGroup",
    "AttachUserPolicy", "DetachUserPolicy", "PutUserPolicy", "DeleteUserPolicy",
    "AttachGroupPolicy", "DetachGroupPolicy", "PutGroupPolicy", "DeleteGroupPolicy",
    "AttachRolePolicy", "DetachRolePolicy", "PutRolePolicy", "DeleteRolePolicy",
    "CreatePolicy", "DeletePolicy", "CreatePolicyVersion", "DeletePolicyVersion", "SetDefaultPolicyVersion",
    "CreateAccessKey", "DeleteAccessKey", "UpdateAccessKey",
    "CreateVirtualMFADevice", "DeleteVirtualMFADevice", "EnableMFADevice", "DeactivateMFADevice",
    "ResyncMFADevice",
    "CreateLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile",
), "iam.amazonaws.com")
# A password set at sign-in (root's own, or an IAM user's forced reset) is a change to a credential;
# root recovers a lost password through the sign-in service too.
_PASSWORD_CHANGES = dict.fromkeys(("PasswordUpdated", "PasswordRecoveryCompleted"), _SIGN_IN)
_TRAIL_CHANGES = dict.fromkeys(("StopLogging", "StartLogging", "DeleteTrail", "UpdateTrail"),
                               "cloudtrail.amazonaws.com")
# AWS Config records every resource's configuration over time (CC7.2): switching it off blinds it.
_RECORDER_CHANGES = dict.fromkeys(("StopConfigurationRecorder", "DeleteConfigurationRecorder",
                                   "StartConfigurationRecorder"), "config.amazonaws.com")

KIND_OF: dict[str, tuple[str, str]] = {
    **{name: (source, "access_log") for name, source in {**_LOGINS, **_ROLES}.items()},
    **{name: (source, "access_change") for name, source in {**_IAM_CHANGES, **_PASSWORD_CHANGES}.items()},
    **{name: (source, "config_state") for name, source in {**_TRAIL_CHANGES, **_RECORDER_CHANGES}.items()},
}
"""eventName -> (eventSource it must come from, evidence kind)."""

SERVICE_ASSUMPTIONS = "AssumeRole by an AWS service"
"""The ``Skipped`` reason under which AssumeRole calls made by AWS services are counted."""

_ACCOUNT = re.compile(r"^\d{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_FILE_TIME = re.compile(r"_(\d{8}T\d{4})Z_[^/]*$")
# Request parameters that name what an IAM, trail or recorder change touched (strings only).
_TARGET_FIELDS = frozenset({"userName", "groupName", "roleName", "policyArn", "policyName", "versionId",
                            "accessKeyId", "status", "serialNumber", "virtualMFADeviceName", "name",
                            "roleArn", "roleSessionName", "principalArn", "configurationRecorderName"})
_TARGET_TYPES = (str, int, bool)


@dataclass(frozen=True, slots=True)
class TrailEvent:
    """One CloudTrail record with the S3 object it came from (bucket, key, SHA-256 of the object)."""

    event: dict[str, Any]
    bucket: str
    key: str
    object_sha256: str


_Read = tuple[list[SourceItem], bool, list[tuple[int, str]], int, str]
"""One object read, as its reader hands it over: the items to yield (its relevant records with a
readable eventTime no later than the run's ceiling, in file order, each with what ``normalise``
returns for it: the ``Normalised`` record, or the ``TrailEvent`` when normalising it raised, so
that ``normalise`` runs again and raises for that item); whether a relevant record was later
than the ceiling; the (index, eventName) of each relevant record without a readable eventTime;
how many AssumeRole calls by AWS services it skipped; and the object's SHA-256."""


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


def event_key(event: dict[str, Any], raw: bytes) -> str:
    """The record's ``eventID``; for a record without one (eventVersion 1.0), the SHA-256 of its
    exact bytes in the log file, which names it as uniquely and is the same at every read."""
    event_id = event.get("eventID")
    if isinstance(event_id, str) and event_id:
        return event_id
    return hashlib.sha256(raw).hexdigest()


def _event_time(value: Any) -> datetime | None:
    """The record's eventTime as an aware UTC datetime; None when it has none that parses."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _file_time(key: str) -> datetime | None:
    match = _FILE_TIME.search(key)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)


def _by_service(event: dict[str, Any]) -> bool:
    """An AssumeRole an AWS service made for itself (an EC2 instance profile, a Lambda's role):
    the bulk of STS traffic, and no person's access."""
    identity = event.get("userIdentity")
    return event.get("eventName") == "AssumeRole" and isinstance(identity, dict) \
        and identity.get("type") == "AWSService"


def read_trail_file(s3: Any, bucket: str, key: str, config: AwsConfig, ceiling: datetime | None = None
                    ) -> _Read:
    """Read one log object for the stream (in a reader thread, or in the reader child): GET, hash,
    inflate and parse it (``read_log_object``, capped at ``cloudtrail_max_inflated_mib``), keep
    its relevant records, count the AssumeRole calls AWS services made (unless
    ``include_service_role_assumptions``), set aside the records later than ``ceiling`` (the
    run's; None: none is) and those without a readable eventTime, and make each other record
    its item, normalised, so the stream's own thread only yields them (see ``_Read``).
    ``Unreadable`` for a file that cannot be read, S3 errors as raised."""
    records, digest = read_log_object(s3, bucket, key, config.cloudtrail_max_inflated_mib * _MIB)
    keep_services = config.include_service_role_assumptions
    kinds = KIND_OF
    items: list[SourceItem] = []
    late = False
    unreadable: list[tuple[int, str]] = []
    by_services = 0
    for index, (event, raw) in enumerate(records):
        name = event.get("eventName")
        if type(name) is not str:
            continue
        wanted = kinds.get(name)
        if wanted is None or event.get("eventSource") != wanted[0]:
            continue
        if not keep_services and name == "AssumeRole" and _by_service(event):
            by_services += 1
            continue
        observed = _event_time(event.get("eventTime"))
        if observed is None:
            unreadable.append((index, name))
            continue
        if ceiling is not None and observed > ceiling:
            late = True
            continue
        ident = event_key(event, raw)
        prepared: Normalised | TrailEvent
        try:
            prepared = _normalised(event, ident, bucket, key, digest)
        except Exception:  # the pipeline's normalise raises it again, for this item
            prepared = TrailEvent(event, bucket, key, digest)
        items.append(SourceItem(ident, observed, raw, prepared))
    return items, late, unreadable, by_services, digest


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

    def _read_object(self, s3: Any, bucket: str, key: str, ceiling: datetime | None) -> _Read:
        """How one object is read, in a worker thread: ``read_trail_file`` with the stream's
        config; ``Unreadable`` for a file that cannot be read, S3 errors as raised."""
        return read_trail_file(s3, bucket, key, self.config, ceiling)

    def _remote_reader(self, target: Target, region: str) -> Callable[[str, str, datetime | None], _Read]:
        """``_read_object`` run in this process's reader child (``cloudtrail_reader = "process"``):
        the child builds the same S3 client from the stream's config and the target's current
        credentials (taken again for every object, so refreshed ones are passed on). The child
        is started (``reader_process``) by the first read, so a run with nothing new starts none."""
        from connectors.aws._reader_process import ReadJob, reader_process

        def read(bucket: str, key: str, ceiling: datetime | None) -> _Read:
            session = self.session().session(target, self.name)  # cached: assumes a role once
            child = reader_process()
            found = session.get_credentials()
            frozen = found.get_frozen_credentials() if found is not None else None
            credentials = None if frozen is None else (frozen.access_key, frozen.secret_key, frozen.token)
            return child.read(ReadJob(self.config, region, credentials, self.connector_name, bucket, key,
                                      ceiling))

        return read

    def _read_in_order(self, s3: Any, bucket: str, plan: Iterable[tuple[str, str]],
                       remote: Callable[[str, str, datetime | None], _Read] | None = None,
                       ceiling: datetime | None = None,
                       ) -> Iterator[tuple[tuple[str, str], _Read | Exception]]:
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
        pending: deque[tuple[tuple[str, str], Future[tuple[_Read | Exception, int]]]] = deque()
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

        def read(key: str) -> tuple[_Read | Exception, int]:
            nonlocal running
            size = 0
            outcome: _Read | Exception
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
        prepared = item.obj
        if type(prepared) is Normalised:  # normalised by the file's reader (``read_trail_file``)
            return prepared
        return normalise_event(prepared, item.key)


def normalise_event(trail: TrailEvent, key: str) -> Normalised:
    """The record one CloudTrail event (``key``: its ``event_key``) makes: the stream's
    ``normalise``, which the file's reader runs for each kept record (``read_trail_file``)."""
    return _normalised(trail.event, key, trail.bucket, trail.key, trail.object_sha256)


def _normalised(event: dict[str, Any], key: str, bucket: str, object_key: str, digest: str) -> Normalised:
    """``normalise_event`` for the event read from ``object_key`` (SHA-256 ``digest``) in ``bucket``.
    Runs once per kept record: the event's members are read through one bound ``get``."""
    get = event.get
    name: str = event["eventName"]
    kind = KIND_OF[name][1]
    identity: dict[str, Any] = get("userIdentity") or {}
    identity_type = identity.get("type")
    error = get("errorCode")
    outcome = "Failure" if error else "Success"
    mfa_used: bool | None = None
    source = get("eventSource")
    if source == _SIGN_IN:
        # Sign-in events say how they ended in their own element (responseElements for
        # ConsoleLogin and PasswordUpdated, serviceEventDetails for UserAuthentication).
        said = (get("responseElements") or {}).get(name) or (get("serviceEventDetails") or {}).get(name)
        outcome = str(said or outcome)
    if name == "ConsoleLogin":
        mfa = (get("additionalEventData") or {}).get("MFAUsed")
        # "Yes"/"No" for IAM users, but AWS's own root example writes "YES".
        mfa_used = None if mfa is None else str(mfa).casefold() == "yes"
    else:
        context = identity.get("sessionContext")
        attrs = (context.get("attributes") or {}) if context else {}
        if "mfaAuthenticated" in attrs:
            mfa_used = str(attrs["mfaAuthenticated"]).lower() == "true"
    params = get("requestParameters")
    target: dict[str, str] = {}
    if params and isinstance(params, dict):
        target = {f: str(v) for f, v in params.items()
                  if f in _TARGET_FIELDS and isinstance(v, _TARGET_TYPES)}
    region = get("awsRegion") or "us-east-1"
    data: dict[str, Any] = {
        "event_name": name,
        "event_source": source,
        "event_time": event["eventTime"],
        "aws_region": region,
        "account": get("recipientAccountId"),
        "identity_type": identity_type,
        "source_ip": get("sourceIPAddress"),
        "user_agent": get("userAgent"),
        "outcome": outcome,
        "error_code": error,
        "mfa_used": mfa_used,
        "target": target,
        "source_object": {"bucket": bucket, "key": object_key, "sha256": digest},
    }
    if name == "UserAuthentication":
        extra = get("additionalEventData") or {}
        data["credential_type"] = extra.get("CredentialType")
        data["login_to"] = extra.get("LoginTo")
    event_id = get("eventID")
    if isinstance(event_id, str) and event_id:  # the event in the CloudTrail console
        url = f"https://console.aws.amazon.com/cloudtrail/home?region={region}#/events/{key}"
    else:  # a record without an eventID: the log file in S3
        url = f"https://s3.console.aws.amazon.com/s3/object/{bucket}?prefix={quote(object_key, safe='/')}"
    return Normalised(kind, _actor(event, identity), url, data,
                      _exception(name, identity_type, error, outcome, mfa_used, target))


def _actor(event: dict[str, Any], identity: dict[str, Any]) -> str | None:
    """Who acted: the identity's ARN (else user name or principal); an AWS service is named by
    ``invokedBy``; an IAM Identity Center user by the user name it signed in with."""
    kind = identity.get("type")
    if kind == "AWSService":
        actor = identity.get("invokedBy") or identity.get("principalId")
    elif kind == "IdentityCenterUser" or (event.get("eventName") == "UserAuthentication"
                                          and not identity.get("arn")):
        actor = (event.get("additionalEventData") or {}).get("UserName") \
            or identity.get("userName") or (identity.get("onBehalfOf") or {}).get("userId")
    else:
        actor = identity.get("arn") or identity.get("userName") or identity.get("principalId")
    return str(actor) if actor else None


def _exception(name: str, identity_type: Any, error: Any, outcome: str, mfa_used: bool | None,
               target: dict[str, str]) -> str | None:
    """The exception an event shows, or None."""
    if name == "ConsoleLogin" and outcome == "Success" and mfa_used is False \
            and identity_type in ("IAMUser", "Root"):
        who = "root user" if identity_type == "Root" else "IAM user"
        return f"console login by {who} without MFA"
    if error:
        return None  # a refused change changed nothing
    if name in ("StopLogging", "DeleteTrail"):
        what = "stopped" if name == "StopLogging" else "deleted"
        return f"CloudTrail trail {what} ({target.get('name', 'unknown trail')})"
    if name in ("StopConfigurationRecorder", "DeleteConfigurationRecorder"):
        what = "stopped" if name.startswith("Stop") else "deleted"
        return f"AWS Config recorder {what} ({target.get('configurationRecorderName', 'unknown recorder')})"
    if name == "CreateAccessKey" and identity_type == "Root" and "userName" not in target:
        # Root creating a key for an IAM user names the user; without one the key is root's own.
        return "access key created for the root user"
    return None
