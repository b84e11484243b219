"""Accounts as the newest stored read of okta.users, github.members and aws.iam_users shows them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection

from storage.manual_queries import latest_read

__all__ = [
    "ACCOUNT_STREAMS",
    "DEPARTED_OKTA_STATUSES",
    "Account",
    "Reads",
    "account_from_body",
    "read_accounts",
]

ACCOUNT_STREAMS: Mapping[str, str] = {"okta": "okta.users", "github": "github.members",
                                      "aws": "aws.iam_users"}
"""Each system and the state stream whose newest read holds its accounts."""

DEPARTED_OKTA_STATUSES = frozenset({"DEPROVISIONED", "SUSPENDED"})
"""Okta statuses of a person who has left (or been stopped): their other access must go."""

_KINDS = {"okta.users": ("mfa_status", "account"), "github.members": ("account",),
          "aws.iam_users": ("account",)}


# A NamedTuple, not a frozen dataclass: one is made per stored account (100,000 in
# bench/identities.py), and a frozen dataclass's __init__ costs several times a tuple's.
class Account(NamedTuple):
    """One account in one system, as a stored state read shows it.

    ``key`` is the account's source key (Okta user id, ``<org>/<login>``, the IAM user's ARN);
    ``name`` what people call it (the Okta login, the GitHub login, the IAM user name);
    ``email`` the source's own email for it (lowercased) or None; ``active`` whether it can
    still get in; ``access`` a one-line description of what it may do; ``last_activity`` the
    newest sign-in or key use the source reports, or None; ``read_at`` the read's time.
    """

    system: str
    key: str
    name: str
    email: str | None
    active: bool
    access: str
    last_activity: str | None
    read_at: str
    status: str | None = None
    status_changed: str | None = None

    @property
    def label(self) -> str:
        """How a worksheet or a digest names it: ``org/login`` on GitHub, the name elsewhere."""
        return self.key if self.system == "github" else self.name

    @property
    def departed(self) -> bool:
        """An Okta account whose person has left (DEPROVISIONED or SUSPENDED)."""
        return self.system == "okta" and self.status in DEPARTED_OKTA_STATUSES


def _email(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) and "@" in value and value.strip() else None


def _newest(*stamps: Any) -> str | None:
    found = [s for s in stamps if isinstance(s, str) and s]
    return max(found) if found else None


def account_from_body(system: str, body: Mapping[str, Any], read_at: str) -> Account | None:
    """The account a stored record body describes, or None when it is not an account record
    (a summary line, a record without the fields the agreed shape names)."""
    data = body.get("data")
    key = body.get("source_key")
    if not isinstance(data, dict) or not isinstance(key, str):
        return None
    if system == "okta":
        login = data.get("login")
        if not isinstance(login, str):
            return None
        status = data.get("status")
        changed = data.get("status_changed")
        return Account("okta", key, login, _email(data.get("email")) or _email(login),
                       status not in DEPARTED_OKTA_STATUSES, str(status), _newest(data.get("last_login")),
                       read_at, status=status if isinstance(status, str) else None,
                       status_changed=changed if isinstance(changed, str) else None)
    if system == "github":
        login = data.get("login")
        if not isinstance(login, str):
            return None
        role = data.get("role")
        return Account("github", key, login, _email(data.get("saml_email")), data.get("active") is not False,
                       str(role), None, read_at)
    user = data.get("user_name")
    if not isinstance(user, str):
        return None
    groups = [str(g) for g in data.get("groups") or []]
    policies = [str(p) for p in (data.get("attached_policies") or []) + (data.get("inline_policies") or [])]
    access = "; ".join(part for part in (
        f"groups: {', '.join(groups)}" if groups else "",
        f"policies: {', '.join(policies)}" if policies else "",
        "console" if data.get("console_access") else "",
    ) if part) or "no groups or policies"
    keys = [k for k in data.get("active_keys") or [] if isinstance(k, dict)]
    last = _newest(data.get("password_last_used"), *(k.get("last_used") for k in keys))
    return Account("aws", key, user, _email(data.get("email")), bool(data.get("active")), access, last,
                   read_at)


@dataclass(frozen=True, slots=True)
class Reads:
    """The accounts of each system's newest read (a system never read has none) and when each
    read was made."""

    accounts: Mapping[str, tuple[Account, ...]]
    read_at: Mapping[str, str | None]

    def all(self) -> Iterable[Account]:
        """Every account of every system, Okta first."""
        for system in ACCOUNT_STREAMS:
            yield from self.accounts.get(system, ())


def read_accounts(conn: Connection, before: str | None = None) -> Reads:
    """The newest read (at or before ``before``, when given) of each account stream: one probe
    and one range read per stream, parsing only that read's bodies."""
    accounts: dict[str, tuple[Account, ...]] = {}
    read_at: dict[str, str | None] = {}
    for system, stream in ACCOUNT_STREAMS.items():
        at, bodies = latest_read(conn, stream, before, kinds=_KINDS[stream])
        read_at[system] = at
        found = []
        for text in bodies:
            account = account_from_body(system, orjson.loads(text), at or "")
            if account is not None:
                found.append(account)
        accounts[system] = tuple(found)
    return Reads(accounts, read_at)
