"""Sessions and clients: the standard boto3 chain, STS roles per account, adaptive retries, typed errors.

boto3 and botocore are imported when a client is first built or an error is mapped, never when
the connector is imported: declaring streams and loading the config do not pay for them.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from connectors.aws.config import AwsConfig
from connectors.sdk.errors import AuthError, ConnectorError, FatalError, RetriableError
from connectors.sdk.retry import emit, unreachable_cause

if TYPE_CHECKING:
    import boto3

__all__ = ["AwsAccess", "Target", "as_connector_error", "error_code"]

_DENIED = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess",
    "AuthorizationError", "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken",
    "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AllAccessDisabled",
    "AccessDeniedFault", "AuthFailure", "OptInRequired",
})
_TRANSIENT = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "SlowDown", "ServiceUnavailable", "ServiceUnavailableException",
    "InternalError", "InternalFailure", "InternalServerError", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete",
})
_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/")
_MAX_ATTEMPTS = 10


def _retry_truncated(attempts: int = 1, response: Any = None, operation: Any = None,
                     max_attempts: int = _MAX_ATTEMPTS, **_: Any) -> float | None:
    """A ``needs-retry`` handler: retry an answer whose body is shorter than its Content-Length.

    botocore reads with Content-Length enforcement off, and its JSON parser turns a body cut
    short into an empty result, so the items in it would be silently missing; ask for the
    answer again (with back-off), and fail the call once the attempts are spent.
    """
    if response is None or getattr(operation, "has_streaming_output", True):
        return None
    http = response[0]
    declared = str(http.headers.get("content-length", ""))
    received = len(http.content or b"")
    if not declared.isdigit() or received >= int(declared):
        return None
    if attempts >= max_attempts:
        import botocore.exceptions

        raise botocore.exceptions.IncompleteReadError(actual_bytes=received, expected_bytes=int(declared))
    delay: float = min(4.0, 0.25 * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
    return delay


def _never_retry_unreachable(caught_exception: Any = None, **_: Any) -> None:
    """A ``needs-retry`` handler, first of all: a host that does not resolve or refuses
    connections is not retried (the collection then fails the connector's other streams at once
    with that cause); the exception goes on to the caller as botocore raised it."""
    if isinstance(caught_exception, Exception) and unreachable_cause(caught_exception) is not None:
        raise caught_exception


def _reject_unreadable_json(response_dict: Any = None, operation_model: Any = None, **_: Any) -> None:
    """A ``before-parse`` handler: botocore's JSON parser reads a 2xx body that is not JSON as an
    empty result (every item silently missing); refuse it, so the call fails and names itself."""
    if response_dict is None or operation_model is None or operation_model.has_streaming_output:
        return
    service = operation_model.service_model
    protocol = getattr(service, "resolved_protocol", None) or service.protocol
    body = response_dict.get("body") or b""
    if protocol not in ("json", "rest-json") or response_dict.get("status_code", 200) >= 300 or not body:
        return
    declared = str(response_dict.get("headers", {}).get("content-length", ""))
    if declared.isdigit() and len(body) < int(declared):
        return  # cut short: the needs-retry handler asks again
    try:
        json.loads(body)
    except ValueError:
        import botocore.parsers

        raise botocore.parsers.ResponseParserError(
            f"the answer is not JSON ({len(body)} bytes)") from None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, or "" for anything else."""
    import botocore.exceptions

    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def as_connector_error(exc: Exception, what: str) -> ConnectorError:
    """Map a boto3/botocore exception to the SDK's typed errors; ``what`` names the call and place."""
    if isinstance(exc, ConnectorError):
        return exc
    import botocore.exceptions
    import botocore.parsers

    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _DENIED or status in (401, 403):
            return AuthError("aws", f"{code or status} on {what}")
        if code in _TRANSIENT or status == 429 or status >= 500:
            return RetriableError(f"aws: {code or status} on {what} (retries exhausted)")
        message = exc.response.get("Error", {}).get("Message", "")
        return FatalError(f"aws: {code or status} on {what}: {message}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return AuthError("aws", f"no usable credentials in the standard boto3 chain ({what})")
    if isinstance(exc, botocore.exceptions.HTTPClientError | botocore.exceptions.EndpointConnectionError):
        return RetriableError(f"aws: {type(exc).__name__} on {what}")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return FatalError(f"aws: {type(exc).__name__} on {what}: {exc}")
    if isinstance(exc, botocore.parsers.ResponseParserError | ValueError):
        return FatalError(f"aws: unreadable answer to {what}: {str(exc)[:200]}")
    raise exc


@dataclass(frozen=True, slots=True)
class Target:
    """One account to read: the collector's own credentials, or a member role assumed through STS."""

    role_arn: str | None

    @property
    def account(self) -> str:
        """The account ID from the role ARN, or "default" for the collector's own credentials."""
        if self.role_arn is None:
            return "default"
        match = _ACCOUNT.match(self.role_arn)
        return match.group(1) if match else self.role_arn

    def part(self, region: str | None = None) -> str:
        """The key a failed part of a run is reported under, e.g. ``aws:111122223333:eu-west-1``."""
        return f"aws:{self.account}" + (f":{region}" if region else "")


class _ModelFiles:
    """botocore's model files (``<path>.json`` or ``<path>.json.gz``) parsed with orjson.

    A stand-in for botocore's ``JSONFileLoader``, which parses with ``object_pairs_hook=OrderedDict``
    in pure Python: the four clients of an AWS collection parse ~4 MB of models (endpoints, the
    S3 endpoint rules, four services), 0.17 -> 0.12 s of CPU and 64 -> 55 MiB peak for building
    them. The same values come back, in plain (ordered) dicts; a file orjson refuses (an integer
    past 64 bits, NaN) is parsed by ``json`` as botocore would.
    """

    _EXTENSIONS = ((".json", open), (".json.gz", gzip.open))

    def exists(self, file_path: str) -> bool:
        """True if ``file_path`` with either extension is a file."""
        return any(os.path.isfile(file_path + ext) for ext, _ in self._EXTENSIONS)

    def load_file(self, file_path: str) -> Any:
        """The parsed ``file_path.json`` (else ``file_path.json.gz``), or None if neither exists."""
        for ext, opener in self._EXTENSIONS:
            path = file_path + ext
            if os.path.isfile(path):
                with opener(path, "rb") as fp:
                    payload: bytes = fp.read()
                try:
                    return orjson.loads(payload)
                except orjson.JSONDecodeError:
                    return json.loads(payload.decode("utf-8"))
        return None


def _as_text(value: str) -> str:
    return value


def _new_session(*, timestamps_as_text: bool = False, **credentials: str) -> boto3.Session:
    """A boto3 session (the standard chain, or ``credentials``) that reads models with ``_ModelFiles``.

    ``timestamps_as_text``: its clients leave the timestamps of answers as the text received
    (botocore parses each with dateutil, about a tenth of a GetObject's CPU), for a session
    whose callers read no timestamp (the CloudTrail reader child: it reads Body and length).
    """
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    core.get_component("data_loader").file_loader = _ModelFiles()
    if timestamps_as_text:
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_as_text)
    return boto3.Session(botocore_session=core, **credentials)


class AwsAccess:
    """What the AWS streams read through: sessions and clients opened on demand, and the
    credential-report poller's ``sleep`` and ``clock``.

    No session or client is built in the constructor: a client is built when a stream first
    asks for it, so a collection builds only the clients of the streams that run.
    ``session`` replaces the standard-chain session (tests pass a moto-backed one), ``sleep``
    and ``clock`` the poller's wait and deadline (tests drive them without waiting). Clients
    are cached per (account, role session, service, region), so a test can fetch the very
    client a stream will use and attach a ``botocore.stub.Stubber`` to it.
    """

    def __init__(
        self,
        config: AwsConfig,
        session: boto3.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import botocore.config

        self.config = config
        self.sleep = sleep
        self.clock = clock
        self._session = session
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, str], boto3.Session] = {}
        self._clients: dict[tuple[str, str, str, str], Any] = {}
        self.botocore_config = botocore.config.Config(
            retries={"mode": "adaptive", "max_attempts": _MAX_ATTEMPTS},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=max(10, config.cloudtrail_workers * 2),
            user_agent_extra="evidence-collector",
        )

    @property
    def base_session(self) -> boto3.Session:
        """The collector's own session from the standard credential chain."""
        with self._lock:
            if self._session is None:
                self._session = _new_session()
            return self._session

    def targets(self) -> list[Target]:
        """The accounts to read: one per ``assume_role_arns`` entry, else the collector's own."""
        if self.config.assume_role_arns:
            return [Target(arn) for arn in self.config.assume_role_arns]
        return [Target(None)]

    def session(self, target: Target, stream: str) -> boto3.Session:
        """The session for ``target``; a role is assumed once per stream, session name
        ``evidence-collector-<stream>`` so CloudTrail in the member account names the reader."""
        if target.role_arn is None:
            return self.base_session
        key = (target.role_arn, stream)
        with self._lock:
            cached = self._sessions.get(key)
        if cached is not None:
            return cached
        sts = self.client(Target(None), "sts", self.config.regions[0], stream)
        try:
            answer = sts.assume_role(
                RoleArn=target.role_arn,
                RoleSessionName=f"evidence-collector-{stream}"[:64].replace("_", "-"),
            )
        except Exception as exc:
            raise as_connector_error(exc, f"sts:AssumeRole {target.role_arn}") from exc
        creds = answer["Credentials"]
        session = _new_session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        with self._lock:
            self._sessions[key] = session
        return session

    def client(self, target: Target, service: str, region: str, stream: str = "") -> Any:
        """A cached client for ``service`` in ``region`` as ``target`` (assuming its role if needed)."""
        key = (target.account, stream if target.role_arn else "", service, region)
        with self._lock:
            cached = self._clients.get(key)
        if cached is not None:
            return cached
        session = self.session(target, stream)
        client = session.client(
            service, region_name=region, endpoint_url=self.config.endpoint(service),
            config=self.botocore_config,
        )
        attempts = int((client.meta.config.retries or {}).get("total_max_attempts", _MAX_ATTEMPTS))
        client.meta.events.register_first("needs-retry", _never_retry_unreachable)
        client.meta.events.register("needs-retry", functools.partial(_retry_truncated, max_attempts=attempts))
        client.meta.events.register("before-parse", _reject_unreadable_json)
        client.meta.events.register("request-created", _count_attempt,
                                    unique_id="evidence-collector-http-metrics")
        with self._lock:
            return self._clients.setdefault(key, client)

    def parts(self, regional: bool = True) -> Iterator[tuple[Target, str]]:
        """Every (account, region) a stream reads; global services read the first region only."""
        regions = self.config.regions if regional else self.config.regions[:1]
        for target in self.targets():
            for region in regions:
                yield target, region

    def close(self) -> None:
        """Close every client's connection pool."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
            self._sessions.clear()
        for client in clients:
            client.close()


def _count_attempt(request: Any = None, **_: Any) -> None:
    """Feed the process-wide HTTP counters: botocore creates a request per attempt, and
    numbers the attempts in its retry context."""
    emit("request", "aws")
    retries = (getattr(request, "context", None) or {}).get("retries") or {}
    if int(retries.get("attempt", 1)) > 1:
        emit("retry", "aws")
