"""AWS: CloudTrail access logs, IAM credential report (MFA), AWS Backup jobs, RDS backups, IAM users."""

from connectors.aws.config import AwsConfig
from connectors.aws.connector import AwsConnector

__all__ = ["AwsConfig", "AwsConnector"]
