"""The AWS connector: CloudTrail, the IAM credential report and users, Backup jobs, RDS backups."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from connectors.aws._access import AwsAccess
from connectors.aws.backup_jobs import BackupJobsStream
from connectors.aws.cloudtrail import CloudTrailStream
from connectors.aws.config import AwsConfig
from connectors.aws.credential_report import CredentialReportStream
from connectors.aws.iam_users import IamUsersStream
from connectors.aws.rds_snapshots import RdsSnapshotsStream
from connectors.sdk.base import Connector, HttpOptions

if TYPE_CHECKING:
    import boto3

__all__ = ["AwsConnector"]


class AwsConnector(Connector[AwsConfig, AwsAccess]):
    """Reads AWS through boto3 with the standard credential chain (never keys in the config).

    The streams share one ``AwsAccess``, which builds each boto3 client when a stream first
    asks for it. ``session`` replaces the default-chain session, ``sleep`` and ``clock`` the
    credential-report poller's wait and deadline; they exist so tests drive real clients
    against moto or a Stubber without waiting.
    """

    name = "aws"
    config_type = AwsConfig
    stream_types = (CloudTrailStream, CredentialReportStream, BackupJobsStream, RdsSnapshotsStream,
                    IamUsersStream)

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
        self._boto_session = session
        self._sleep = sleep
        self._clock = clock

    def open_session(self) -> AwsAccess:
        """The access object; it builds no session or client until a stream asks for one."""
        return AwsAccess(self.config, self._boto_session, sleep=self._sleep, clock=self._clock)

    def close_session(self, session: AwsAccess) -> None:
        """Close every client opened during the collection."""
        session.close()
