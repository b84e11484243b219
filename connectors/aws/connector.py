"""The AWS connector: CloudTrail access logs, the IAM credential report, AWS Backup jobs, RDS backups."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import boto3

from connectors.aws._access import AwsAccess
from connectors.aws.backup_jobs import BackupJobsStream
from connectors.aws.cloudtrail import CloudTrailStream
from connectors.aws.config import AwsConfig
from connectors.aws.credential_report import CredentialReportStream
from connectors.aws.rds_snapshots import RdsSnapshotsStream
from connectors.sdk.base import Connector, HttpOptions
from connectors.sdk.errors import FatalError

__all__ = ["AwsConnector"]


class AwsConnector(Connector[AwsConfig]):
    """Reads AWS through boto3 with the standard credential chain (never keys in the config).

    ``session`` replaces the default-chain session, ``sleep`` and ``clock`` the
    credential-report poller's wait and deadline; they exist so tests drive real clients
    against moto or a Stubber without waiting.
    """

    name = "aws"
    config_type = AwsConfig
    stream_types = (CloudTrailStream, CredentialReportStream, BackupJobsStream, RdsSnapshotsStream)

    def __init__(
        self,
        config: AwsConfig,
        *,
        env: Mapping[str, str] | None = None,
        http: HttpOptions | None = None,
        session: boto3.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, env=env, http=http)
        self.access = AwsAccess(config, session)
        self.sleep = sleep
        self.clock = clock

    def check(self) -> None:
        """Refuse a config the loader would have refused (for connectors built without it)."""
        for key, problem in self.config.problems():
            raise FatalError(f"aws: connectors.aws.{key}: {problem}")

    def close(self) -> None:
        """Close every client opened during the collection."""
        self.access.close()
