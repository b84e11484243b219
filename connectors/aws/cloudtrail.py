"""`aws.cloudtrail`: evidence-relevant events from the trail's log files in S3, incremental per prefix."""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.aws._access import AwsAccess, Target, as_connector_error
from connectors.aws.config import AwsConfig
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import ConnectorError
from connectors.sdk.items import Checkpoint, Cursor, ItemFailure, Normalised, SourceItem
from connectors.sdk.rawjson import split_member

__all__ = ["KIND_OF", "CloudTrailStream", "TrailEvent", "parse_log_file"]

_LOGINS = {"ConsoleLogin": "signin.amazonaws.com"}
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
_TRAIL_CHANGES = dict.fromkeys(("StopLogging", "StartLogging", "DeleteTrail", "UpdateTrail"),
                               "cloudtrail.amazonaws.com")

KIND_OF: dict[str, tuple[str, str]] = {
    **{name: (source, "access_log") for name, source in {**_LOGINS, **_ROLES}.items()},
    **{name: (source, "access_change") for name, source in _IAM_CHANGES.items()},
    **{name: (source, "config_state") for name, source in _TRAIL_CHANGES.items()},
}
"""eventName -> (eventSource it must come from, evidence kind)."""

_ACCOUNT = re.compile(r"^\d{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_FILE_TIME = re.compile(r"_(\d{8}T\d{4})Z_[^/]*$")
# Request parameters that name what an IAM or trail change touched (strings only).
_TARGET_FIELDS = frozenset({"userName", "groupName", "roleName", "policyArn", "policyName", "versionId",
                            "accessKeyId", "status", "serialNumber", "virtualMFADeviceName", "name",
                            "roleArn", "roleSessionName", "principalArn"})


@dataclass(frozen=True, slots=True)
class TrailEvent:
    """One CloudTrail record with the S3 object it came from (bucket, key, SHA-256 of the object)."""

    event: dict[str, Any]
    bucket: str
    key: str
    object_sha256: str


class _Unreadable(Exception):
    """A log file that cannot be decompressed or parsed."""


def parse_log_file(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """Each record of a (gzipped) CloudTrail log file with the exact bytes it occupies in the JSON.

    The span is what ``raw_sha256`` hashes: an auditor who downloads the object named in the
    record, checks its SHA-256 and gunzips it finds these bytes in it.
    """
    try:
        text = (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode("utf-8")
        records = split_member(text, "Records")
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise _Unreadable(f"{type(exc).__name__}: {exc}") from exc
    for index, (record, _) in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("eventID"), str) \
                or not isinstance(record.get("eventTime"), str):
            raise _Unreadable(f"record {index} has no eventID or eventTime")
    return records


def _event_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _file_time(key: str) -> datetime | None:
    match = _FILE_TIME.search(key)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)


def _relevant(event: dict[str, Any]) -> bool:
    wanted = KIND_OF.get(event.get("eventName", ""))
    return wanted is not None and event.get("eventSource") == wanted[0]


class CloudTrailStream(Stream[AwsConfig, AwsAccess]):
    """Reads new log files under every ``AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/`` prefix.

    The cursor is ``{prefix: last key read}``. Keys are listed after the prefix's last key
    (S3 lists in key order, which is delivery-time order within a prefix), so a re-run with
    nothing new lists and reads nothing. A file that cannot be read is an ``ItemFailure``
    with its key; its prefix's cursor stays before it (later files of that prefix are still
    read, and re-read next time), while other prefixes advance. Failures are yielded last
    so every prefix's progress is offered to the pipeline before its cursor freezes.
    """

    name = "cloudtrail"
    kinds = frozenset({"access_log", "access_change", "config_state"})
    mode = "events"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        cfg = self.config
        bucket = cfg.cloudtrail_bucket
        target = Target(cfg.cloudtrail_role_arn or None)
        s3 = self.session().client(target, "s3", cfg.regions[0], self.name)
        state: dict[str, str] = dict(cursor.value or {})
        failures: list[ItemFailure] = []
        prefixes = self._discover(s3, bucket, failures)
        # Only files whose delivery minute ended before the run began: none can hold an
        # event after the ceiling, and a file delivered during the run waits for the next.
        latest = cursor.ceiling - timedelta(minutes=1)
        plan: list[tuple[str, str]] = []
        for prefix in prefixes:
            start = state.get(prefix) or prefix + cursor.floor.strftime("%Y/%m/%d/")
            try:
                plan.extend((prefix, key) for key in self._new_keys(s3, bucket, prefix, start, latest))
            except ConnectorError as exc:
                failures.append(ItemFailure(prefix, str(exc), type(exc).__name__))
        held: set[str] = set()
        for (prefix, key), fetched in self._fetch_in_order(s3, bucket, plan):
            if isinstance(fetched, Exception):
                failures.append(ItemFailure(key, str(fetched), type(fetched).__name__))
                held.add(prefix)
                continue
            body, digest = fetched
            try:
                records = parse_log_file(body)
            except _Unreadable as exc:
                failures.append(ItemFailure(key, f"unreadable CloudTrail log file: {exc}"))
                held.add(prefix)
                continue
            late = False
            for event, raw in records:
                if not _relevant(event):
                    continue
                observed = _event_time(event["eventTime"])
                if observed > cursor.ceiling:
                    late = True  # an event newer than the run: read this file again next run
                    continue
                yield SourceItem(event["eventID"], observed, raw, TrailEvent(event, bucket, key, digest))
            if late:
                held.add(prefix)
            if prefix not in held:
                state[prefix] = key
                yield Checkpoint(dict(state))
        yield from failures

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

    def _fetch_in_order(self, s3: Any, bucket: str, plan: list[tuple[str, str]]
                        ) -> Iterator[tuple[tuple[str, str], tuple[bytes, str] | Exception]]:
        """GET the planned objects with a small thread pool, yielding them in plan (key) order."""

        def get(key: str) -> tuple[bytes, str] | Exception:
            try:
                body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:
                try:
                    return as_connector_error(exc, f"s3:GetObject {key}")
                except Exception as bug:
                    return bug
            return body, hashlib.sha256(body).hexdigest()

        workers = self.config.cloudtrail_workers
        pending: deque[tuple[tuple[str, str], Future[tuple[bytes, str] | Exception]]] = deque()
        upcoming = iter(plan)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cloudtrail-get") as pool:
            try:
                for entry in upcoming:
                    pending.append((entry, pool.submit(get, entry[1])))
                    if len(pending) >= workers * 2:
                        break
                while pending:
                    entry, future = pending.popleft()
                    following = next(upcoming, None)
                    if following is not None:
                        pending.append((following, pool.submit(get, following[1])))
                    yield entry, future.result()
            finally:
                for _, future in pending:
                    future.cancel()

    # -- normalising -------------------------------------------------------------------------

    def normalise(self, item: SourceItem) -> Normalised:
        trail: TrailEvent = item.obj
        event = trail.event
        name: str = event["eventName"]
        kind = KIND_OF[name][1]
        identity: dict[str, Any] = event.get("userIdentity") or {}
        identity_type = identity.get("type")
        error = event.get("errorCode")
        outcome = "Failure" if error else "Success"
        mfa_used: bool | None = None
        if name == "ConsoleLogin":
            outcome = str((event.get("responseElements") or {}).get("ConsoleLogin") or outcome)
            mfa = (event.get("additionalEventData") or {}).get("MFAUsed")
            mfa_used = None if mfa is None else mfa == "Yes"
        else:
            attrs = (identity.get("sessionContext") or {}).get("attributes") or {}
            if "mfaAuthenticated" in attrs:
                mfa_used = str(attrs["mfaAuthenticated"]).lower() == "true"
        params = event.get("requestParameters")
        target: dict[str, str] = {}
        if isinstance(params, dict):
            target = {f: str(v) for f, v in params.items()
                      if f in _TARGET_FIELDS and isinstance(v, str | int | bool)}
        actor = identity.get("arn") or identity.get("userName") or identity.get("principalId")
        region = event.get("awsRegion") or "us-east-1"
        data: dict[str, Any] = {
            "event_name": name,
            "event_source": event.get("eventSource"),
            "event_time": event["eventTime"],
            "aws_region": region,
            "account": event.get("recipientAccountId"),
            "identity_type": identity_type,
            "source_ip": event.get("sourceIPAddress"),
            "user_agent": event.get("userAgent"),
            "outcome": outcome,
            "error_code": error,
            "mfa_used": mfa_used,
            "target": target,
            "source_object": {"bucket": trail.bucket, "key": trail.key, "sha256": trail.object_sha256},
        }
        exception = None
        if name == "ConsoleLogin" and outcome == "Success" and mfa_used is False \
                and identity_type in ("IAMUser", "Root"):
            who = "root user" if identity_type == "Root" else "IAM user"
            exception = f"console login by {who} without MFA"
        elif name in ("StopLogging", "DeleteTrail") and not error:
            what = "stopped" if name == "StopLogging" else "deleted"
            exception = f"CloudTrail trail {what} ({target.get('name', 'unknown trail')})"
        return Normalised(
            kind=kind,
            actor=str(actor) if actor else None,
            source_url=f"https://console.aws.amazon.com/cloudtrail/home?region={region}#/events/{event['eventID']}",
            data=data,
            exception=exception,
        )
