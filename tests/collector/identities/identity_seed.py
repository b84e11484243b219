"""Stored reads of okta.users, github.members and aws.iam_users in the agreed shapes, for the identity tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from collector.config import Settings, load_settings
from collector.records import EvidenceRecord, build_record, format_ts, parsed_body
from storage import Store
from storage.rows import BatchJob

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ORG = "acme"
ACCOUNT_ID = "123456789012"

IDENTITIES = """
[identities]
service_accounts = ["ci-deploy"]
offboarding_grace = "24h"
revoke_grace = "7d"

[identities.overrides.github]
"carol-dev" = "carol@acme.example"
"""


def okta(user_id: str, login: str, status: str = "ACTIVE", changed: datetime | None = None,
         email: str | None = None) -> tuple[str, dict[str, Any]]:
    """An okta.users record's key and data (kind mfa_status), ``email`` defaulting to the login."""
    return user_id, {"user_id": user_id, "login": login, "email": email or login, "status": status,
                     "last_login": "2026-11-18T08:00:00.000Z",
                     "status_changed": None if changed is None else format_ts(changed),
                     "factors": [], "active_factors": 1}


def member(login: str, saml_email: str | None = None, role: str = "member") -> tuple[str, dict[str, Any]]:
    """A github.members record's key and data."""
    return f"{ORG}/{login}", {"org": ORG, "login": login, "user_id": abs(hash(login)) % 10**6,
                              "role": role, "two_factor_enabled": True, "saml_email": saml_email,
                              "active": True}


def iam_user(name: str, email: str | None = None, active: bool = True) -> tuple[str, dict[str, Any]]:
    """An aws.iam_users record's key (the ARN) and data."""
    arn = f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
    tags = {"email": email} if email else {}
    return arn, {"account_id": ACCOUNT_ID, "user_name": name, "user_id": f"AIDA{name.upper()}", "arn": arn,
                 "created": "2025-01-01T00:00:00Z", "groups": ["developers"], "attached_policies": [],
                 "inline_policies": [], "console_access": active, "password_last_used": "2026-11-10T10:00:00Z",
                 "active_keys": [], "tags": tags, "email": email, "active": active}


_KIND = {"okta.users": "mfa_status", "github.members": "account", "aws.iam_users": "account"}


def store_read(store: Store, stream: str, entries: list[tuple[str, dict[str, Any]]], at: datetime) -> None:
    """One read of the state stream ``stream`` at ``at``, stored through the store's record path."""
    stamp = format_ts(at)
    run_id = str(uuid.uuid4())
    records: list[EvidenceRecord] = []
    for key, data in entries:
        actor = data.get("login") or data.get("user_name")
        records.append(build_record(
            stream=stream, source_key=key, kind=_KIND[stream], observed_at=stamp, collected_at=stamp,
            actor=actor, source_url=None, raw_sha256="0" * 64, data=data, exception_reason=None,
            controls=("CC6.1", "CC6.2", "CC6.3"), run_id=run_id))
    filings = [(c, r.observed_at, r.id, r.stream, r.status) for r in records for c in parsed_body(r)["controls"]]
    store.start_run(run_id, stream, stamp, None)
    store.commit_batch(BatchJob(stream, run_id, records, filings, None, None, stamp,
                                {"status": "ok", "ended_at": stamp, "items": len(records)}))


@dataclass
class IdEnv:
    """A loaded config with ``[identities]`` and its open store."""

    dir: Path
    config: Path
    settings: Settings
    store: Store
    extra: str = field(default="")


def open_id_env(directory: Path, store_url: str, extra: str = IDENTITIES) -> IdEnv:
    """``config.toml`` in ``directory`` (store, blobs in ``files/``, ``extra``), loaded and opened."""
    config = directory / "config.toml"
    config.write_text(f'[storage]\nurl = "{store_url}"\n\n[files]\nurl = "files"\n{extra}')
    settings = load_settings(config)
    return IdEnv(directory, config, settings, Store.open(settings.storage_url), extra)


def records_of(store: Store, stream: str, at: datetime | None = None) -> dict[str, dict[str, Any]]:
    """The records of ``stream`` (observed at ``at``, when given) by source key, with their ids."""
    query = "SELECT id, body FROM evidence WHERE stream = :s"
    params = {"s": stream}
    if at is not None:
        query += " AND observed_at = :t"
        params["t"] = format_ts(at)
    with store.engine.connect() as conn:
        found = conn.execute(text(query + " ORDER BY observed_at, id"), params).all()
    out: dict[str, dict[str, Any]] = {}
    for record_id, body in found:
        out[str(orjson.loads(body)["source_key"])] = {"id": record_id, **orjson.loads(body)}
    return out


HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
