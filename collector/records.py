"""The evidence record: fields, timestamps, identity and canonical bytes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from collector.canonical import canonical, check_profile, sha256_hex
from collector.errors import RecordError
from connectors.sdk.items import KINDS

__all__ = [
    "KINDS",
    "EvidenceRecord",
    "build_record",
    "format_ts",
    "parse_ts",
    "record_body",
    "record_from_row",
]

_TS_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and "Z": fixed width, so text order is time order."""
    if moment.tzinfo is None:
        raise RecordError(f"timestamp {moment.isoformat()} has no time zone")
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # %-formatting the fields is ~25% faster than isoformat() and ~3x faster than strftime;
    # this runs once or twice per record.
    return _TS_FORMAT % (moment.year, moment.month, moment.day, moment.hour, moment.minute,
                         moment.second, moment.microsecond)


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """One stored piece of evidence; ``body`` is the canonical JSON whose SHA-256 is ``id``."""

    id: str
    stream: str
    source_key: str
    kind: str
    observed_at: str
    collected_at: str
    actor: str | None
    source_url: str | None
    raw_sha256: str
    status: str
    exception_reason: str | None
    controls: tuple[str, ...]
    run_id: str
    body: bytes

    def to_dict(self) -> dict[str, Any]:
        """The full record as a JSON object: the body plus id, collected_at and run_id."""
        full: dict[str, Any] = orjson.loads(self.body)
        full["id"] = self.id
        full["collected_at"] = self.collected_at
        full["run_id"] = self.run_id
        return full

    def canonical_full(self) -> bytes:
        """Canonical bytes of the full record, as written to a snapshot."""
        return canonical(self.to_dict())

    @property
    def data(self) -> dict[str, Any]:
        """The normalised payload."""
        payload: dict[str, Any] = orjson.loads(self.body)["data"]
        return payload


def record_body(
    *,
    stream: str,
    source_key: str,
    kind: str,
    observed_at: str,
    actor: str | None,
    source_url: str | None,
    raw_sha256: str,
    data: dict[str, Any],
    exception_reason: str | None,
    controls: tuple[str, ...],
) -> bytes:
    """Validate the fields and return the canonical body (the bytes the id is the hash of)."""
    if kind not in KINDS:
        raise RecordError(f"{stream} {source_key}: unknown evidence kind {kind!r}")
    if not source_key:
        raise RecordError(f"{stream}: empty source_key")
    try:
        check_profile(data)
    except RecordError as exc:  # name the record; the path is only built when it fails
        raise RecordError(f"{stream} {source_key} data{str(exc)[1:]}") from None
    return canonical({
        "stream": stream,
        "source_key": source_key,
        "kind": kind,
        "observed_at": observed_at,
        "actor": actor,
        "source_url": source_url,
        "raw_sha256": raw_sha256,
        "data": data,
        "status": "exception" if exception_reason else "ok",
        "exception_reason": exception_reason,
        "controls": controls,  # orjson writes a tuple as an array
    })


def build_record(
    *,
    stream: str,
    source_key: str,
    kind: str,
    observed_at: datetime,
    collected_at: datetime,
    actor: str | None,
    source_url: str | None,
    raw_sha256: str,
    data: dict[str, Any],
    exception_reason: str | None,
    controls: tuple[str, ...],
    run_id: str,
) -> EvidenceRecord:
    """Validate the fields, canonicalise the body once and derive the id from it."""
    observed = format_ts(observed_at)
    body = record_body(
        stream=stream, source_key=source_key, kind=kind, observed_at=observed, actor=actor,
        source_url=source_url, raw_sha256=raw_sha256, data=data,
        exception_reason=exception_reason, controls=controls,
    )
    return EvidenceRecord(
        id=sha256_hex(body),
        stream=stream,
        source_key=source_key,
        kind=kind,
        observed_at=observed,
        collected_at=format_ts(collected_at),
        actor=actor,
        source_url=source_url,
        raw_sha256=raw_sha256,
        status="exception" if exception_reason else "ok",
        exception_reason=exception_reason,
        controls=controls,
        run_id=run_id,
        body=body,
    )


def record_from_row(record_id: str, body: bytes | str, collected_at: str, run_id: str) -> EvidenceRecord:
    """Rebuild a record from its stored body; the caller decides whether to verify the id."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    obj = orjson.loads(raw)
    return EvidenceRecord(
        id=record_id,
        stream=obj["stream"],
        source_key=obj["source_key"],
        kind=obj["kind"],
        observed_at=obj["observed_at"],
        collected_at=collected_at,
        actor=obj["actor"],
        source_url=obj["source_url"],
        raw_sha256=obj["raw_sha256"],
        status=obj["status"],
        exception_reason=obj["exception_reason"],
        controls=tuple(obj["controls"]),
        run_id=run_id,
        body=raw,
    )
