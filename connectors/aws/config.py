"""The `[connectors.aws]` section: regions, accounts (roles to assume), endpoint and trail bucket."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from connectors.sdk.base import ConnectorConfig
from connectors.sdk.urls import url_problems

__all__ = ["AwsConfig"]

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_SERVICES = frozenset({"s3", "iam", "sts", "backup", "rds"})
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, kw_only=True)
class AwsConfig(ConnectorConfig):
    """Where to collect: regions, member-account roles, an optional endpoint, the trail bucket.

    ``endpoint_url`` sends every client to one endpoint (moto, LocalStack);
    ``service_endpoints`` (``["backup=https://…"]``) overrides it per service, as VPC
    interface endpoints are per service. ``regions`` scopes the regional streams (Backup,
    RDS); ``aws.cloudtrail`` reads every account/region prefix the trail bucket holds,
    because global IAM and sign-in events land in whichever region the trail records them in.

    ``include_service_role_assumptions`` stores AssumeRole calls made by AWS services (instance
    profiles, Lambda roles: the bulk of STS traffic, no person's access); off by default, they
    are counted in the run's statistics instead.

    ``cloudtrail_max_inflated_mib`` bounds one log file, inflated (and so as stored): a file
    past it is one failed item naming its key, never a run that runs out of memory. Reading a
    file peaks at about 8x its inflated size (``bench/cloudtrail_limits.py``: 339 MiB traced for
    a 41 MiB file), so the default 256 bounds one file near 2 GiB while real files are tens of MB.

    ``cloudtrail_reader = "process"`` has the trail's log files read (GET, hash, gunzip, parse,
    and normalise the relevant records) in one child process of the collector instead of its
    own threads, so a large trail's reading uses a second CPU while the collector stores (same
    items, same order, same read-ahead bounds); "threads" (the default) keeps all in process.
    """

    regions: tuple[str, ...] = ("us-east-1",)
    endpoint_url: str = ""
    service_endpoints: tuple[str, ...] = ()
    cloudtrail_bucket: str = ""
    cloudtrail_prefix: str = ""
    cloudtrail_role_arn: str = ""
    cloudtrail_workers: int = 8
    cloudtrail_max_inflated_mib: int = 256
    cloudtrail_reader: str = "threads"
    include_service_role_assumptions: bool = False
    assume_role_arns: tuple[str, ...] = ()
    backup_lookback: timedelta = timedelta(days=2)
    report_timeout: timedelta = timedelta(minutes=5)

    def endpoint(self, service: str) -> str | None:
        """The endpoint for ``service``: its ``service_endpoints`` entry, else ``endpoint_url``, else AWS."""
        for entry in self.service_endpoints:
            name, _, url = entry.partition("=")
            if name.strip() == service:
                return url.strip()
        return self.endpoint_url or None

    def runs(self, stream: str) -> bool:
        """Whether stream ``stream`` (a bare name such as ``cloudtrail``) is enabled."""
        return not self.streams or stream in self.streams

    def problems(self) -> list[tuple[str, str]]:
        """Each (key, problem) the loader reports as a config error before any source is contacted."""
        found: list[tuple[str, str]] = []
        if not self.regions:
            found.append(("regions", "must name at least one region"))
        for index, region in enumerate(self.regions):
            if not _REGION.match(region):
                found.append((f"regions[{index}]", f'"{region}" is not an AWS region name'))
        if self.endpoint_url:
            found.extend(url_problems("endpoint_url", self.endpoint_url, "https://s3.us-east-1.amazonaws.com"))
        for index, entry in enumerate(self.service_endpoints):
            name, sep, url = entry.partition("=")
            key = f"service_endpoints[{index}]"
            if not sep or name.strip() not in _SERVICES or not url.strip().startswith(("http://", "https://")):
                shown = entry if "@" not in entry and "?" not in entry else "<not shown: may hold a secret>"
                found.append((key, f'expected "<service>=<http(s) URL>" with a service among '
                                   f'{", ".join(sorted(_SERVICES))}, got "{shown}"'))
            else:
                found.extend(url_problems(key, url.strip(), "backup=https://backup.us-east-1.amazonaws.com"))
        if self.runs("cloudtrail"):
            if not self.cloudtrail_bucket:
                found.append(("cloudtrail_bucket",
                              'required while aws.cloudtrail runs (or set streams without "cloudtrail")'))
            elif not _BUCKET.match(self.cloudtrail_bucket):
                found.append(("cloudtrail_bucket", f'"{self.cloudtrail_bucket}" is not an S3 bucket name'))
        if self.cloudtrail_prefix.startswith("/"):
            found.append(("cloudtrail_prefix", "must not start with /"))
        if self.cloudtrail_role_arn and not _ROLE_ARN.match(self.cloudtrail_role_arn):
            found.append(("cloudtrail_role_arn", f'"{self.cloudtrail_role_arn}" is not an IAM role ARN'))
        if not 1 <= self.cloudtrail_workers <= 32:
            found.append(("cloudtrail_workers", "must be between 1 and 32"))
        if not 1 <= self.cloudtrail_max_inflated_mib <= 4096:
            found.append(("cloudtrail_max_inflated_mib", "must be between 1 and 4096 (MiB)"))
        if self.cloudtrail_reader not in ("threads", "process"):
            found.append(("cloudtrail_reader", f'"{self.cloudtrail_reader}" is not "threads" or "process"'))
        for index, arn in enumerate(self.assume_role_arns):
            if not _ROLE_ARN.match(arn):
                found.append((f"assume_role_arns[{index}]", f'"{arn}" is not an IAM role ARN'))
        if len(set(self.assume_role_arns)) != len(self.assume_role_arns):
            found.append(("assume_role_arns", "names a role twice"))
        if self.report_timeout < timedelta(seconds=1):
            found.append(("report_timeout", "must be at least 1s"))
        return found
