"""Seeds an AWS endpoint (moto, in process or as a server) with trail files, IAM users and RDS instances."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "ACCOUNT",
    "IAM_PEOPLE",
    "IAM_SERVICE_USERS",
    "MEMBER_ACCOUNT",
    "ORG_ID",
    "TrailSeed",
    "TrailShapes",
    "delete_user",
    "event",
    "log_file",
    "log_key",
    "seed_all",
    "seed_cloudtrail",
    "seed_iam",
    "seed_people",
    "seed_rds",
    "seed_rds_clusters",
    "seed_trail_shapes",
    "trail_shapes",
]

ACCOUNT = "111111111111"
MEMBER_ACCOUNT = "222222222222"
ORG_ID = "o-exampleorg1"


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(name: str, when: datetime, *, source: str, event_id: str | None = None,
          account: str = ACCOUNT, region: str = "us-east-1", identity: dict[str, Any] | None = None,
          params: dict[str, Any] | None = None, response: dict[str, Any] | None = None,
          extra: dict[str, Any] | None = None, error: str | None = None) -> dict[str, Any]:
    """One CloudTrail record in the shape AWS writes it."""
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity or {
            "type": "IAMUser", "principalId": "AIDAEXAMPLEALICE", "accountId": account,
            "arn": f"arn:aws:iam::{account}:user/alice", "userName": "alice",
        },
        "eventTime": _ts(when),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": params,
        "responseElements": response,
        "requestID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"req-{event_id or name}-{when}")),
        "eventID": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}-{when.isoformat()}")),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if extra:
        record["additionalEventData"] = extra
    if error:
        record["errorCode"] = error
        record["errorMessage"] = f"{error} (seeded)"
    return record


def console_login(when: datetime, event_id: str, *, user: str = "alice", mfa: bool = True,
                  success: bool = True, identity_type: str = "IAMUser",
                  account: str = ACCOUNT) -> dict[str, Any]:
    """A ConsoleLogin record by an IAM user or (``identity_type="Root"``) the root user."""
    root = identity_type == "Root"
    arn = f"arn:aws:iam::{account}:root" if root else f"arn:aws:iam::{account}:user/{user}"
    identity = {"type": identity_type, "principalId": account if root else f"AIDA{user.upper()}",
                "arn": arn, "accountId": account}
    if identity_type != "Root":
        identity["userName"] = user
    record = event("ConsoleLogin", when, source="signin.amazonaws.com", event_id=event_id, account=account,
                   identity=identity, response={"ConsoleLogin": "Success" if success else "Failure"},
                   extra={"LoginTo": "https://console.aws.amazon.com/console/home",
                          "MobileVersion": "No", "MFAUsed": "Yes" if mfa else "No"})
    record["eventType"] = "AwsConsoleSignIn"
    if not success:
        record["errorMessage"] = "Failed authentication"
    return record


def log_key(account: str, region: str, delivered: datetime, *, org_id: str | None = None,
            prefix: str = "", digest: bool = False, unique: str = "AbCdEfGhIjKlMnOp") -> str:
    """The S3 key CloudTrail delivers a log (or digest) file to."""
    root = f"{prefix.strip('/')}/AWSLogs/" if prefix else "AWSLogs/"
    if org_id:
        root += f"{org_id}/"
    folder = "CloudTrail-Digest" if digest else "CloudTrail"
    stamp = delivered.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
    name = f"{account}_{folder}_{region}_{stamp}_{unique}.json.gz"
    return f"{root}{account}/{folder}/{region}/{delivered:%Y/%m/%d}/{name}"


def log_file(records: list[dict[str, Any]]) -> bytes:
    """A gzipped log file body, compact JSON like CloudTrail writes."""
    return gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode(), mtime=0)


@dataclass
class TrailSeed:
    """What was seeded: expected exceptions by eventID, and the keys of special files."""

    relevant: dict[str, str | None] = field(default_factory=dict)
    irrelevant: list[str] = field(default_factory=list)
    truncated_key: str = ""
    digest_key: str = ""
    keys: list[str] = field(default_factory=list)


def seed_cloudtrail(s3: Any, bucket: str, now: datetime, *, region: str = "us-east-1") -> TrailSeed:
    """A trail bucket with a single-account prefix, an organisation-trail prefix, a digest
    file and a truncated log file; events cover every exception rule, failing and passing."""
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    seed = TrailSeed()
    day = now - timedelta(days=2)
    t = day.replace(hour=9, minute=0, second=0, microsecond=0)

    def put(key: str, body: bytes) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        seed.keys.append(key)

    first = [
        console_login(t, "e-login-mfa", mfa=True),
        console_login(t + timedelta(minutes=1), "e-login-nomfa", user="bob", mfa=False),
        console_login(t + timedelta(minutes=2), "e-login-failed-nomfa", user="bob", mfa=False, success=False),
        console_login(t + timedelta(minutes=3), "e-root-nomfa", identity_type="Root", mfa=False),
        console_login(t + timedelta(minutes=4), "e-root-mfa", identity_type="Root", mfa=True),
        event("DescribeInstances", t + timedelta(minutes=5), source="ec2.amazonaws.com",
              event_id="e-noise-1"),
        event("CreateUser", t + timedelta(minutes=6), source="iam.amazonaws.com", event_id="e-create-user",
              params={"userName": "carol"}),
        event("AttachUserPolicy", t + timedelta(minutes=7), source="iam.amazonaws.com", event_id="e-attach",
              params={"userName": "carol", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
    ]
    second = [
        event("StopLogging", t + timedelta(hours=1), source="cloudtrail.amazonaws.com", event_id="e-stop",
              params={"name": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/org-trail"}),
        event("StopLogging", t + timedelta(hours=1, minutes=1), source="cloudtrail.amazonaws.com",
              event_id="e-stop-denied", params={"name": "org-trail"}, error="AccessDenied"),
        event("StartLogging", t + timedelta(hours=1, minutes=2), source="cloudtrail.amazonaws.com",
              event_id="e-start", params={"name": "org-trail"}),
        event("UpdateTrail", t + timedelta(hours=1, minutes=3), source="cloudtrail.amazonaws.com",
              event_id="e-update-trail", params={"name": "org-trail"}),
        event("GetObject", t + timedelta(hours=1, minutes=4), source="s3.amazonaws.com",
              event_id="e-noise-2"),
    ]
    put(log_key(ACCOUNT, "us-east-1", t + timedelta(minutes=10), unique="A1"), log_file(first))
    put(log_key(ACCOUNT, "us-east-1", t + timedelta(hours=1, minutes=10), unique="A2"), log_file(second))
    member = [
        event("AssumeRole", t + timedelta(hours=2), source="sts.amazonaws.com", event_id="e-assume",
              account=MEMBER_ACCOUNT, region="eu-west-1",
              identity={"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice",
                        "accountId": ACCOUNT, "principalId": "AROAEXAMPLE:alice",
                        "sessionContext": {"attributes": {"mfaAuthenticated": "true"}}},
              params={"roleArn": f"arn:aws:iam::{MEMBER_ACCOUNT}:role/Deploy", "roleSessionName": "alice"}),
        event("AssumeRoleWithSAML", t + timedelta(hours=2, minutes=1), source="sts.amazonaws.com",
              event_id="e-saml", account=MEMBER_ACCOUNT, region="eu-west-1",
              identity={"type": "SAMLUser", "principalId": "okta:dave", "userName": "dave@example.com"},
              params={"roleArn": f"arn:aws:iam::{MEMBER_ACCOUNT}:role/SSO",
                      "principalArn": f"arn:aws:iam::{MEMBER_ACCOUNT}:saml-provider/Okta"}),
        event("EnableMFADevice", t + timedelta(hours=2, minutes=2), source="iam.amazonaws.com",
              event_id="e-mfa-enable", account=MEMBER_ACCOUNT, region="eu-west-1",
              params={"userName": "erin", "serialNumber": f"arn:aws:iam::{MEMBER_ACCOUNT}:mfa/erin"}),
        event("DeleteTrail", t + timedelta(hours=2, minutes=3), source="cloudtrail.amazonaws.com",
              event_id="e-delete-trail", account=MEMBER_ACCOUNT, region="eu-west-1",
              params={"name": "member-trail"}),
        # A federated console login reports MFAUsed "No" (MFA happened at the IdP): not an exception.
        {**console_login(t + timedelta(hours=2, minutes=4), "e-login-federated", mfa=False,
                         account=MEMBER_ACCOUNT),
         "userIdentity": {"type": "AssumedRole",
                          "arn": f"arn:aws:sts::{MEMBER_ACCOUNT}:assumed-role/SSO/dave",
                          "accountId": MEMBER_ACCOUNT, "principalId": "AROASSO:dave"}},
    ]
    put(log_key(MEMBER_ACCOUNT, "eu-west-1", t + timedelta(hours=2, minutes=10), org_id=ORG_ID, unique="B1"),
        log_file(member))
    seed.digest_key = log_key(ACCOUNT, "us-east-1", t + timedelta(hours=3), digest=True, unique="D1")
    put(seed.digest_key, gzip.compress(b'{"digestStartTime":"x","logFiles":[]}', mtime=0))
    whole = log_file([event("CreateAccessKey", t + timedelta(hours=3), source="iam.amazonaws.com",
                            event_id="e-in-truncated", params={"userName": "carol"})])
    seed.truncated_key = log_key(ACCOUNT, "us-west-2", t + timedelta(hours=3, minutes=10), unique="T1")
    put(seed.truncated_key, whole[: len(whole) // 2])
    seed.relevant = {
        "e-login-mfa": None,
        "e-login-nomfa": "console login by IAM user without MFA",
        "e-login-failed-nomfa": None,
        "e-root-nomfa": "console login by root user without MFA",
        "e-root-mfa": None,
        "e-create-user": None,
        "e-attach": None,
        "e-stop": f"CloudTrail trail stopped (arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/org-trail)",
        "e-stop-denied": None,
        "e-start": None,
        "e-update-trail": None,
        "e-assume": None,
        "e-saml": None,
        "e-mfa-enable": None,
        "e-delete-trail": "CloudTrail trail deleted (member-trail)",
        "e-login-federated": None,
    }
    seed.irrelevant = ["e-noise-1", "e-noise-2", "e-in-truncated"]
    return seed


@dataclass
class TrailShapes:
    """Records in the shapes real trails hold beyond the everyday ones, and what each should become.

    ``expected`` maps each record's key (its eventID, or the SHA-256 of the exact bytes of a
    record without one) to its exception reason or None; ``service_assumptions`` counts the
    AssumeRole calls made by AWS services, which are not stored by default.
    """

    records: list[dict[str, Any]]
    expected: dict[str, str | None]
    service_assumptions: int


def _compact(record: dict[str, Any]) -> bytes:
    """The bytes ``log_file`` writes for ``record`` inside its Records array."""
    return json.dumps(record, separators=(",", ":")).encode()


def trail_shapes(t: datetime, account: str = ACCOUNT, tag: str = "") -> TrailShapes:
    """Records from ``t`` on, one of each shape: a root sign-in whose MFAUsed is "YES", an
    eventVersion 1.0 record without eventID, AssumeRole calls made by an AWS service, an IAM
    Identity Center sign-in, a root password change, access keys created by root (its own and
    an IAM user's), and AWS Config's recorder stopped, deleted (refused) and started."""
    ids = {name: f"e-{name}{tag}" for name in (
        "root-mfa-upper", "service-assume", "service-assume-2", "idc-signin", "idc-signin-failed",
        "root-password", "root-key", "root-key-for-user", "config-stop", "config-delete-denied",
        "config-start")}
    root = {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
            "accountId": account, "accessKeyId": ""}
    login = console_login(t, ids["root-mfa-upper"], identity_type="Root", account=account)
    login["additionalEventData"]["MFAUsed"] = "YES"  # as AWS's own documented root example writes it
    legacy: dict[str, Any] = {
        "eventVersion": "1.0",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEALICE", "accountId": account,
                         "arn": f"arn:aws:iam::{account}:user/alice", "accessKeyId": "AKIAEXAMPLE",
                         "userName": "alice"},
        "eventTime": _ts(t + timedelta(minutes=1)), "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/1.3.2", "requestParameters": {"userName": f"legacy{tag}"},
        "responseElements": {"user": {"userName": f"legacy{tag}", "path": "/"}},
    }

    def service_assume(n: int, event_id: str, service: str) -> dict[str, Any]:
        role = f"arn:aws:iam::{account}:role/{service.partition('.')[0]}-role"
        record = event("AssumeRole", t + timedelta(minutes=2, seconds=n), source="sts.amazonaws.com",
                       event_id=event_id, account=account,
                       identity={"type": "AWSService", "invokedBy": service},
                       params={"roleArn": role, "roleSessionName": f"session-{n}"})
        record["sourceIPAddress"] = record["userAgent"] = service
        return record

    def idc(event_id: str, minutes: int, result: str) -> dict[str, Any]:
        record = event("UserAuthentication", t + timedelta(minutes=minutes), source="signin.amazonaws.com",
                       event_id=event_id, account=account,
                       identity={"type": "IdentityCenterUser", "arn": "", "accountId": account,
                                 "accessKeyId": "",
                                 "onBehalfOf": {"userId": "9067-idc-user-pat",
                                                "identityStoreArn": f"arn:aws:identitystore::{account}:"
                                                                    "identitystore/d-9067example"},
                                 "credentialId": "idc-credential-1"},
                       extra={"AuthWorkflowID": "wf-1", "UserName": "pat@example.com",
                              "LoginTo": "https://d-9067example.awsapps.com/start/",
                              "CredentialType": "EXTERNAL_IDP"})
        record["eventType"] = "AwsServiceEvent"
        record["serviceEventDetails"] = {"UserAuthentication": result}
        return record

    password = event("PasswordUpdated", t + timedelta(minutes=5), source="signin.amazonaws.com",
                     event_id=ids["root-password"], account=account, identity=dict(root),
                     response={"PasswordUpdated": "Success"})
    password["eventType"] = "AwsConsoleSignIn"
    root_key = event("CreateAccessKey", t + timedelta(minutes=6), source="iam.amazonaws.com",
                     event_id=ids["root-key"], account=account,
                     identity={**root, "invokedBy": "signin.amazonaws.com",
                               "sessionContext": {"attributes": {"mfaAuthenticated": "true"}}},
                     response={"accessKey": {"accessKeyId": "AKIAROOTEXAMPLE", "status": "Active"}})
    user_key = event("CreateAccessKey", t + timedelta(minutes=7), source="iam.amazonaws.com",
                     event_id=ids["root-key-for-user"], account=account, identity=dict(root),
                     params={"userName": "carol"})
    recorder = {"configurationRecorderName": "default"}
    records = [
        login, legacy,
        service_assume(0, ids["service-assume"], "ec2.amazonaws.com"),
        service_assume(1, ids["service-assume-2"], "lambda.amazonaws.com"),
        idc(ids["idc-signin"], 3, "Success"), idc(ids["idc-signin-failed"], 4, "Failure"),
        password, root_key, user_key,
        event("StopConfigurationRecorder", t + timedelta(minutes=8), source="config.amazonaws.com",
              event_id=ids["config-stop"], account=account, params=recorder),
        event("DeleteConfigurationRecorder", t + timedelta(minutes=9), source="config.amazonaws.com",
              event_id=ids["config-delete-denied"], account=account, params=recorder, error="AccessDenied"),
        event("StartConfigurationRecorder", t + timedelta(minutes=10), source="config.amazonaws.com",
              event_id=ids["config-start"], account=account, params=recorder),
    ]
    expected: dict[str, str | None] = {
        ids["root-mfa-upper"]: None,
        hashlib.sha256(_compact(legacy)).hexdigest(): None,
        ids["idc-signin"]: None,
        ids["idc-signin-failed"]: None,
        ids["root-password"]: None,
        ids["root-key"]: "access key created for the root user",
        ids["root-key-for-user"]: None,
        ids["config-stop"]: "AWS Config recorder stopped (default)",
        ids["config-delete-denied"]: None,
        ids["config-start"]: None,
    }
    return TrailShapes(records, expected, service_assumptions=2)


def seed_trail_shapes(s3: Any, bucket: str, now: datetime, *, region: str = "ap-southeast-2") -> TrailShapes:
    """One log file of ``trail_shapes`` two days before ``now``, in its own prefix of ``bucket``
    (which must exist), so it never shifts the cursor of the prefixes ``seed_cloudtrail`` fills."""
    t = (now - timedelta(days=2)).replace(hour=11, minute=0, second=0, microsecond=0)
    shapes = trail_shapes(t)
    s3.put_object(Bucket=bucket, Key=log_key(ACCOUNT, region, t + timedelta(minutes=20), unique="S1"),
                  Body=log_file(shapes.records))
    return shapes


def _console_user(iam: Any, name: str, *, mfa: bool) -> None:
    """An IAM user with a console password, and with a virtual MFA device enabled if ``mfa``."""
    password = "Sandbox-Only-Passw0rd!"  # a fake account on a local fake  # noqa: S105
    iam.create_user(UserName=name)
    iam.create_login_profile(UserName=name, Password=password)
    if mfa:
        device = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
        iam.enable_mfa_device(UserName=name, SerialNumber=device["SerialNumber"],
                              AuthenticationCode1="123456", AuthenticationCode2="654321")


def seed_iam(iam: Any) -> dict[str, str | None]:
    """Users with and without MFA; returns the expected exception per user name."""
    _console_user(iam, "alice", mfa=True)
    _console_user(iam, "bob", mfa=False)
    iam.create_user(UserName="svc-deploy")
    iam.create_access_key(UserName="svc-deploy")
    return {"alice": None, "bob": "IAM user has a console password and no MFA", "svc-deploy": None}


IAM_PEOPLE = {"alice": "ada.lovelace@example.com", "bob": "barbara.liskov@example.com",
              "dritchie": "dennis.ritchie@example.com"}
"""IAM users tagged ``email`` with their person's Okta login (dritchie: DEPROVISIONED in Okta)."""
IAM_SERVICE_USERS = ("ci-deploy", "svc-deploy")
"""IAM users no person holds (access keys only, no tag): the demo declares them service accounts."""

_ALLOW = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": %s, '
          '"Resource": "*"}]}')


def seed_people(iam: Any) -> dict[str, str | None]:
    """After ``seed_iam``: tag alice and bob with their emails, add dritchie (console with MFA, an
    active key, the engineers group) and the ci-deploy service user (a key and a deploy policy).
    Returns the ``email`` tag per user name (None: untagged)."""
    iam.create_group(GroupName="engineers")
    read = iam.create_policy(PolicyName="engineering-read", PolicyDocument=_ALLOW % '"s3:GetObject"')
    iam.attach_group_policy(GroupName="engineers", PolicyArn=read["Policy"]["Arn"])
    _console_user(iam, "dritchie", mfa=True)
    iam.create_access_key(UserName="dritchie")
    iam.put_user_policy(UserName="dritchie", PolicyName="oncall-logs",
                        PolicyDocument=_ALLOW % '"logs:GetLogEvents"')
    for user, email in IAM_PEOPLE.items():
        iam.tag_user(UserName=user, Tags=[{"Key": "email", "Value": email}, {"Key": "team", "Value": "eng"}])
        iam.add_user_to_group(GroupName="engineers", UserName=user)
    deploy = iam.create_policy(PolicyName="deploy", PolicyDocument=_ALLOW % '["ecs:UpdateService"]')
    iam.create_user(UserName="ci-deploy")
    iam.create_access_key(UserName="ci-deploy")
    iam.attach_user_policy(UserName="ci-deploy", PolicyArn=deploy["Policy"]["Arn"])
    return {**IAM_PEOPLE, **dict.fromkeys(IAM_SERVICE_USERS)}


def delete_user(iam: Any, name: str) -> None:
    """Delete IAM user ``name`` as an administrator must: its login profile, keys, MFA devices,
    group memberships and policies first, then the user."""
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_login_profile(UserName=name)
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    for device in iam.list_mfa_devices(UserName=name)["MFADevices"]:
        iam.deactivate_mfa_device(UserName=name, SerialNumber=device["SerialNumber"])
    for group in iam.list_groups_for_user(UserName=name)["Groups"]:
        iam.remove_user_from_group(GroupName=group["GroupName"], UserName=name)
    for policy in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
        iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
    for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
        iam.delete_user_policy(UserName=name, PolicyName=policy)
    iam.delete_user(UserName=name)


def seed_rds(rds: Any) -> dict[str, int]:
    """One instance with automated backups (7 days) and one without (0); moto takes an
    automated snapshot of each at creation. Returns retention per instance identifier."""
    wanted = {"orders": 7, "scratch": 0}
    for name, retention in wanted.items():
        rds.create_db_instance(
            DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
            AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="example-password-1",
            BackupRetentionPeriod=retention,
        )
    return wanted


def seed_rds_clusters(rds: Any, source: str = "orders") -> dict[str, str | None]:
    """A read replica of ``source`` (which must exist) with retention 0, as PostgreSQL replicas
    have, and an Aurora cluster (7 days) with one member instance; moto takes an automated
    snapshot of the cluster at creation. Returns the expected exception per identifier."""
    rds.create_db_instance_read_replica(DBInstanceIdentifier=f"{source}-replica",
                                        SourceDBInstanceIdentifier=source)
    rds.modify_db_instance(DBInstanceIdentifier=f"{source}-replica", BackupRetentionPeriod=0,
                           ApplyImmediately=True)
    rds.create_db_cluster(DBClusterIdentifier="ledger", Engine="aurora-postgresql", MasterUsername="admin",
                          MasterUserPassword="example-password-1", BackupRetentionPeriod=7)
    rds.create_db_instance(DBInstanceIdentifier="ledger-1", DBInstanceClass="db.r6g.large",
                           Engine="aurora-postgresql", DBClusterIdentifier="ledger")
    return {f"{source}-replica": None, "ledger": None, "ledger-1": None}


def seed_all(session: Any, *, bucket: str = "org-trail", region: str = "us-east-1",
             endpoint_url: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Seed S3 (trail), IAM and RDS through ``session`` (a boto3 Session); returns what was seeded."""
    now = now or datetime.now(UTC)

    def client(service: str) -> Any:
        return session.client(service, region_name=region, endpoint_url=endpoint_url)

    return {
        "cloudtrail": seed_cloudtrail(client("s3"), bucket, now, region=region),
        "iam": seed_iam(client("iam")),
        "rds": seed_rds(client("rds")),
    }
