"""One CloudTrail log file made into the stream's items: which records are evidence, their keys and
times, and their normalised records (the reader thread or the reader child runs it per file)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

from connectors.aws._logfile import _MIB, read_log_object
from connectors.aws.config import AwsConfig
from connectors.sdk.items import Normalised, SourceItem

__all__ = ["KIND_OF", "SERVICE_ASSUMPTIONS", "FileRead", "TrailEvent", "event_key", "normalise_event",
           "read_trail_file"]

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

# Request parameters that name what an IAM, trail or recorder change touched (strings only).
_TARGET_FIELDS = frozenset({"userName", "groupName", "roleName", "policyArn", "policyName", "versionId",
                            "accessKeyId", "status", "serialNumber", "virtualMFADeviceName", "name",
                            "roleArn", "roleSessionName", "principalArn", "configurationRecorderName"})
_TARGET_TYPES = (str, int, bool)


class TrailEvent:
    """One CloudTrail record with the S3 object it came from (bucket, key, SHA-256 of the object)
    and, when the file's reader made it (``read_trail_file``), its record normalised (None when
    normalising raised: the stream's ``normalise`` runs it again, and raises, for that item).

    ``event`` is the record's value. The reader child sends only the record's exact bytes and
    its normalised record; ``event`` is then parsed from those bytes when first asked for
    (nothing in a collection asks: the record is normalised already)."""

    __slots__ = ("_event", "_raw", "bucket", "key", "normalised", "object_sha256")

    def __init__(self, event: dict[str, Any] | None, bucket: str, key: str, object_sha256: str,
                 normalised: Normalised | None = None, raw: bytes | None = None) -> None:
        if event is None and raw is None:
            raise ValueError("a TrailEvent needs the event or its bytes")
        self._event = event
        self._raw = raw
        self.bucket = bucket
        self.key = key
        self.object_sha256 = object_sha256
        self.normalised = normalised

    @property
    def event(self) -> dict[str, Any]:
        """The record's value (parsed from its bytes on first use when only those were sent)."""
        if self._event is None:
            value: dict[str, Any] = json.loads(cast(bytes, self._raw))
            self._event = value
        return self._event

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrailEvent):
            return NotImplemented
        return (self.event, self.bucket, self.key, self.object_sha256, self.normalised) == \
            (other.event, other.bucket, other.key, other.object_sha256, other.normalised)

    __hash__ = None  # type: ignore[assignment]  # mutable on first use of ``event``: not hashable

    def __repr__(self) -> str:
        made = self.normalised is not None
        return f"TrailEvent(bucket={self.bucket!r}, key={self.key!r}, normalised={made})"


FileRead = tuple[list[SourceItem], bool, list[tuple[int, str]], int, str]
"""One object read, as its reader hands it over: the items to yield (its relevant records with a
readable eventTime no later than the run's ceiling, in file order, each a ``TrailEvent`` holding
its ``Normalised`` record, or None there when normalising it raised, so that ``normalise`` runs
again and raises for that item); whether a relevant record was later
than the ceiling; the (index, eventName) of each relevant record without a readable eventTime;
how many AssumeRole calls by AWS services it skipped; and the object's SHA-256."""


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


def _by_service(event: dict[str, Any]) -> bool:
    """An AssumeRole an AWS service made for itself (an EC2 instance profile, a Lambda's role):
    the bulk of STS traffic, and no person's access."""
    identity = event.get("userIdentity")
    return event.get("eventName") == "AssumeRole" and isinstance(identity, dict) \
        and identity.get("type") == "AWSService"


def read_trail_file(s3: Any, bucket: str, key: str, config: AwsConfig, ceiling: datetime | None = None
                    ) -> FileRead:
    """Read one log object for the stream (in a reader thread, or in the reader child): GET, hash,
    inflate and parse it (``read_log_object``, capped at ``cloudtrail_max_inflated_mib``), keep
    its relevant records, count the AssumeRole calls AWS services made (unless
    ``include_service_role_assumptions``), set aside the records later than ``ceiling`` (the
    run's; None: none is) and those without a readable eventTime, and make each other record
    its item, normalised, so the stream's own thread only yields them (see ``FileRead``).
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
        normalised: Normalised | None
        try:
            normalised = _normalised(event, ident, bucket, key, digest)
        except Exception:  # the pipeline's normalise raises it again, for this item
            normalised = None
        items.append(SourceItem(ident, observed, raw, TrailEvent(event, bucket, key, digest, normalised)))
    return items, late, unreadable, by_services, digest


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
