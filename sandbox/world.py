"""The whole sandbox at once: moto for AWS plus the Okta, GitHub and Jira fakes, seeded together."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.aws_seed import (
    ACCOUNT,
    console_login,
    delete_user,
    event,
    log_file,
    log_key,
    seed_iam,
    seed_people,
    seed_rds,
    seed_rds_clusters,
    trail_shapes,
)

__all__ = ["DEMO_ENV", "SandboxWorld", "WorldEndpoints", "demo_start"]

# Throwaway credentials for the local fakes only; they guard nothing real.
DEMO_ENV: Mapping[str, str] = {
    "OKTA_API_TOKEN": "sandbox-okta-token",
    "GITHUB_TOKEN": "sandbox-github-token",
    "JIRA_EMAIL": "collector@example.com",
    "JIRA_API_TOKEN": "sandbox-jira-token",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKET = "org-trail"
REGION = "us-east-1"


def demo_start(now: datetime) -> datetime:
    """First instant of the month two months before ``now``: two whole windows plus month-to-date."""
    month = now.month - 2
    year = now.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def _stamp_credential_reports() -> None:
    """moto stamps every IAM credential report 2015-02-02 and leaves the root row out; stamp it
    when it is read, as AWS would, and add the root row AWS always puts first (here with MFA and
    an active access key, the exception a root key is)."""
    from moto.core.responses import ActionResult
    from moto.iam.responses import IamResponse

    def get_credential_report(self: Any) -> Any:
        generated = datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        content = self.backend.get_credential_report()
        text = content.decode() if isinstance(content, bytes) else str(content)
        header, _, rows = text.partition("\n")
        columns = header.split(",")
        root = dict.fromkeys(columns, "N/A") | {
            "user": "<root_account>", "arn": f"arn:aws:iam::{self.backend.account_id}:root",
            "user_creation_time": "2020-01-01T00:00:00+00:00", "password_enabled": "not_supported",
            "password_last_used": "2026-01-02T03:04:05+00:00", "password_last_changed": "not_supported",
            "password_next_rotation": "not_supported", "mfa_active": "true", "access_key_1_active": "true",
            "access_key_1_last_rotated": "2021-06-01T00:00:00+00:00", "access_key_2_active": "false",
            "cert_1_active": "false", "cert_2_active": "false"}
        report = "\n".join([header, ",".join(root[c] for c in columns), rows]).encode()
        return ActionResult({"Content": report, "ReportFormat": "text/csv", "GeneratedTime": generated})

    IamResponse.get_credential_report = get_credential_report  # type: ignore[method-assign]


@dataclass(frozen=True)
class WorldEndpoints:
    """Where each fake listens, on loopback."""

    aws: str
    backup: str
    okta: str
    github: str
    jira: str


@dataclass
class SandboxWorld:
    """Every fake vendor, seeded with activity from ``start`` to ``now`` (deterministic per seed)."""

    now: datetime
    start: datetime
    seed: int = 7
    servers: list[Any] = field(default_factory=list)
    known: dict[str, Any] = field(default_factory=dict)
    fakes: dict[str, Any] = field(default_factory=dict)
    """The running fakes by name (``okta``, ``github``, ``jira``, ``backup``) and moto's URL (``aws``),
    for a test to change the world between collections."""

    @property
    def days(self) -> int:
        """Whole days between ``start`` and ``now``: seeding never reaches before ``start``."""
        return max(1, (self.now - self.start).days)

    def start_all(self) -> WorldEndpoints:
        """Start and seed every server; the caller must call ``stop_all``."""
        from moto.server import ThreadedMotoServer

        from sandbox.aws_backup import FakeBackup, demo_jobs
        from sandbox.github import FakeGithub
        from sandbox.github_seed import seed_org
        from sandbox.jira import FakeJira
        from sandbox.okta import FakeOkta
        from sandbox.okta_data import seed_org as seed_okta

        logging.getLogger("werkzeug").disabled = True  # moto's server logs every request
        _stamp_credential_reports()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        self.servers.append(moto)
        host, port = moto.get_host_and_port()
        aws_url = f"http://{host}:{port}"
        self.known["aws"] = self._seed_aws(aws_url)

        backup = FakeBackup(self._backup_jobs(demo_jobs))
        okta = FakeOkta(seed_okta(self.seed, self.now, days=self.days),
                        token=DEMO_ENV["OKTA_API_TOKEN"])
        github_org = seed_org(self.seed, self.now, days=self.days)
        github = FakeGithub(github_org.org, token=DEMO_ENV["GITHUB_TOKEN"])
        jira = FakeJira.seeded(seed_value=self.seed, now=self.now, days=self.days,
                               email=DEMO_ENV["JIRA_EMAIL"], token=DEMO_ENV["JIRA_API_TOKEN"])
        for server in (backup, okta, github, jira):
            server.start()
            self.servers.append(server)
        self.known["github"] = github_org.known
        self.known["jira"] = jira.cases
        self.fakes.update(aws=aws_url, backup=backup, okta=okta, github=github, jira=jira)
        return WorldEndpoints(aws_url, backup.url, okta.url, github.url, jira.url)

    # -- people across systems, changed at runtime ---------------------------------------------

    def deactivate_okta_user(self, login: str, at: datetime | None = None,
                             status: str = "DEPROVISIONED") -> None:
        """Deactivate (or suspend) the Okta user ``login`` at ``at`` (default: now), with the
        lifecycle event Okta logs for it."""
        self.fakes["okta"].set_status(login, status, at or datetime.now(UTC))

    def remove_github_member(self, login: str) -> None:
        """Remove ``login`` from the GitHub org (member or outside collaborator)."""
        self.fakes["github"].remove_member(login)

    def delete_iam_user(self, name: str) -> None:
        """Delete IAM user ``name`` in moto, with its credentials, groups and policies."""
        import boto3

        session = boto3.Session(aws_access_key_id=DEMO_ENV["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=DEMO_ENV["AWS_SECRET_ACCESS_KEY"], region_name=REGION)
        delete_user(session.client("iam", endpoint_url=self.fakes["aws"]), name)

    def stop_all(self) -> None:
        """Stop every server this world started (safe to call twice)."""
        while self.servers:
            server = self.servers.pop()
            with contextlib.suppress(Exception):  # best effort: never masks the result
                server.stop()

    def _backup_jobs(self, demo_jobs: Any) -> list[Any]:
        """A nightly backup job for every day; the last day also has failed, aborted and expired ones,
        and the day before one that backed up only part of its resource (PARTIAL)."""
        jobs: list[Any] = []
        day = self.now - timedelta(days=1)
        while day - timedelta(days=1) > self.start:
            todays = demo_jobs(day) if not jobs else demo_jobs(day)[:1]
            if len(todays) == 1 and len(jobs) == len(demo_jobs(day)):  # the day before the last
                todays.append(dataclasses.replace(
                    todays[0], job_id="PARTIAL", state="PARTIAL", size=536_870_912,
                    status_message="Some resources in the backup plan were not backed up"))
            jobs.extend(dataclasses.replace(job, job_id=str(uuid.uuid5(uuid.NAMESPACE_OID,
                                                                        f"{day:%Y%m%d}-{job.job_id}")).upper())
                        for job in todays)
            day -= timedelta(days=1)
        return jobs

    def _seed_aws(self, url: str) -> dict[str, Any]:
        import boto3

        session = boto3.Session(aws_access_key_id=DEMO_ENV["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=DEMO_ENV["AWS_SECRET_ACCESS_KEY"],
                                region_name=REGION)
        s3 = session.client("s3", endpoint_url=url)
        s3.create_bucket(Bucket=BUCKET)
        exceptions = self._seed_trail(s3)
        rds = session.client("rds", endpoint_url=url)
        iam = session.client("iam", endpoint_url=url)
        return {
            "cloudtrail_exceptions": exceptions,
            "iam": seed_iam(iam),
            "iam_people": seed_people(iam),
            "rds": seed_rds(rds),
            "rds_clusters": seed_rds_clusters(rds),
        }

    def _seed_trail(self, s3: Any) -> int:
        """Trail files every six hours: console sign-ins (a few without MFA), role use, IAM changes."""
        rng = random.Random(self.seed)  # noqa: S311 - reproducible data, not security
        users = ["alice", "carol", "dave", "erin"]
        when = self.start + timedelta(hours=1)
        exceptions = 0
        n = 0
        while when < self.now - timedelta(minutes=30):
            records = []
            for _ in range(rng.randint(2, 6)):
                n += 1
                at = when + timedelta(minutes=rng.randrange(300))
                mfa = rng.random() > 0.04
                exceptions += 0 if mfa else 1
                records.append(console_login(at, f"ct-{n:06d}", user=rng.choice(users), mfa=mfa))
            if rng.random() < 0.3:
                n += 1
                role = {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/deploy", "roleSessionName": "deploy"}
                records.append(event("AssumeRole", when + timedelta(minutes=7),
                                     source="sts.amazonaws.com", event_id=f"ct-{n:06d}", params=role))
            if rng.random() < 0.1:
                n += 1
                grant = {"userName": rng.choice(users),
                         "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
                records.append(event("AttachUserPolicy", when + timedelta(minutes=9),
                                     source="iam.amazonaws.com", event_id=f"ct-{n:06d}", params=grant))
            delivered = when + timedelta(hours=5, minutes=10)
            if delivered < self.now:
                s3.put_object(Bucket=BUCKET, Key=log_key(ACCOUNT, REGION, delivered, unique=f"u{n:06d}"),
                              Body=log_file(sorted(records, key=lambda r: r["eventTime"])))
            when += timedelta(hours=6)
        # One file of the shapes real trails hold (service role assumptions, Identity Center
        # sign-ins, root credentials, AWS Config's recorder, a record without eventID), a day in.
        at = self.start + timedelta(days=1, hours=3)
        shapes = trail_shapes(at, ACCOUNT)
        key = log_key(ACCOUNT, REGION, at + timedelta(minutes=20), unique="shapes")
        s3.put_object(Bucket=BUCKET, Key=key, Body=log_file(shapes.records))
        return exceptions + sum(1 for reason in shapes.expected.values() if reason)


@contextmanager
def running_world(
    now: datetime | None = None, seed: int = 7, *, start: datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[tuple[SandboxWorld, WorldEndpoints]]:
    """A started, seeded world for the block, with ``env`` (default: the demo's credentials) set.

    ``start`` defaults to ``demo_start(now)``. moto keeps its state per process, so it is reset
    before and after: a world started earlier in the same process would collide with this one.
    """
    from moto.moto_api._internal.models import moto_api_backend

    now = now or datetime.now(UTC)
    world = SandboxWorld(now=now, start=start or demo_start(now), seed=seed)
    env = dict(DEMO_ENV if env is None else env)
    saved = {k: os.environ.get(k) for k in env}
    moto_api_backend.reset()
    os.environ.update(env)
    try:
        yield world, world.start_all()
    finally:
        world.stop_all()
        moto_api_backend.reset()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
