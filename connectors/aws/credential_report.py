"""`aws.iam_credential_report`: one `mfa_status` record per user (and root) per generated report."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.aws._access import AwsAccess, Target, as_connector_error, error_code
from connectors.aws._raw import iso
from connectors.aws.config import AwsConfig
from connectors.aws.parts import run_parts
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import FatalError, RetriableError
from connectors.sdk.items import Cursor, Normalised, SourceItem

__all__ = ["CredentialReportStream", "ReportRow", "fetch_report"]

ROOT_USER = "<root_account>"
_NOT_READY = frozenset({"ReportInProgress", "CredentialReportNotReadyException"})
_ABSENT = frozenset({"ReportNotPresent", "CredentialReportNotPresentException",
                     "ReportExpired", "CredentialReportExpiredException"})


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One row of a credential report, with the report's generation time."""

    row: dict[str, str]
    generated_at: datetime


def fetch_report(iam: Any, timeout: float, sleep: Callable[[float], None],
                 clock: Callable[[], float] = time.monotonic) -> tuple[bytes, datetime]:
    """Generate (or reuse) the account's credential report and poll until it is ready.

    Back-off doubles from 1 s to 15 s between polls, within ``timeout`` seconds; a report
    AWS says is missing or expired is generated again. Throttling is retried by botocore's
    adaptive mode before it ever reaches here.
    """
    deadline = clock() + timeout
    wait = 1.0
    generate = True
    while True:
        try:
            if generate:
                iam.generate_credential_report()
                generate = False
            answer = iam.get_credential_report()
            generated = answer["GeneratedTime"]
            if generated.tzinfo is None:
                generated = generated.replace(tzinfo=UTC)
            return bytes(answer["Content"]), generated.astimezone(UTC)
        except Exception as exc:
            code = error_code(exc)
            if code in _ABSENT:
                generate = True
            elif code not in _NOT_READY:
                raise as_connector_error(exc, "iam:GetCredentialReport") from exc
        if clock() + wait > deadline:
            raise RetriableError(f"aws: the IAM credential report was not ready within {timeout:g}s")
        sleep(wait)
        wait = min(wait * 2, 15.0)


def parse_report(content: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Each CSV row as a dict, with the exact bytes of its line in the report."""
    lines = content.splitlines()
    if not lines:
        raise FatalError("aws: the IAM credential report is empty")
    header = next(csv.reader([lines[0].decode("utf-8")]))
    if "arn" not in header or "mfa_active" not in header:
        raise FatalError("aws: the IAM credential report has no arn/mfa_active columns")
    rows = []
    for line in lines[1:]:
        if not line.strip():
            continue
        values = next(csv.reader([line.decode("utf-8")]))
        rows.append((dict(zip(header, values, strict=False)), line))
    return rows


def _flag(value: str | None) -> bool | None:
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def _date(value: str | None) -> str | None:
    return value if value and value[:1].isdigit() else None


class CredentialReportStream(Stream[AwsConfig, AwsAccess]):
    """The IAM credential report of each account: MFA, password and access-key state per user.

    Exceptions: root without MFA; an IAM user with a console password and no MFA; root with an
    active access key.
    """

    name = "iam_credential_report"
    kinds = frozenset({"mfa_status"})
    mode = "state"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        yield from run_parts(self.session().parts(regional=False), self._part)

    def _part(self, target: Target, region: str) -> Iterator[StreamOutput]:
        access = self.session()
        iam = access.client(target, "iam", region, self.name)
        content, generated = fetch_report(iam, self.config.report_timeout.total_seconds(),
                                          access.sleep, access.clock)
        for row, line in parse_report(content):
            arn = row.get("arn", "")
            if row.get("user") == ROOT_USER and not arn.endswith(":root"):
                arn = f"arn:aws:iam::{arn.split(':')[4] if arn.count(':') >= 4 else 'unknown'}:root"
            if not arn:
                continue
            yield SourceItem(arn, generated, line, ReportRow(row, generated))

    def normalise(self, item: SourceItem) -> Normalised:
        report: ReportRow = item.obj
        row = report.row
        root = row.get("user") == ROOT_USER
        mfa = _flag(row.get("mfa_active")) is True
        password = _flag(row.get("password_enabled"))
        data: dict[str, Any] = {
            "user": row.get("user"),
            "arn": item.key,
            "account": item.key.split(":")[4] if item.key.count(":") >= 5 else None,
            "root": root,
            "mfa_active": mfa,
            "password_enabled": password,
            "password_last_used": _date(row.get("password_last_used")),
            "password_last_changed": _date(row.get("password_last_changed")),
            "access_key_1_active": _flag(row.get("access_key_1_active")),
            "access_key_2_active": _flag(row.get("access_key_2_active")),
            "user_creation_time": _date(row.get("user_creation_time")),
            "report_generated_at": iso(report.generated_at),
        }
        problems: list[str] = []
        if root and not mfa:
            problems.append("root account has no MFA")
        elif password is True and not mfa:
            problems.append("IAM user has a console password and no MFA")
        if root and (data["access_key_1_active"] or data["access_key_2_active"]):
            # A root access key is unrestricted and unattributable (CIS AWS 1.4): no root keys.
            problems.append("root account has an active access key")
        exception = "; ".join(problems) or None
        return Normalised(
            kind="mfa_status",
            actor=item.key,
            source_url=("https://console.aws.amazon.com/iam/home#/security_credentials" if root else
                        f"https://console.aws.amazon.com/iam/home#/users/details/{row.get('user')}"),
            data=data,
            exception=exception,
        )
