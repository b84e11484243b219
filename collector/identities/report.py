"""The directory as plain data: what `collector identities --json` prints and the text table shows."""

from __future__ import annotations

from typing import Any

from collector.identities.link import Directory, Link

__all__ = ["directory_report"]


def _account(link: Link) -> dict[str, Any]:
    account = link.account
    out: dict[str, Any] = {"system": account.system, "account": account.label, "key": account.key,
                           "how": link.how, "active": account.active, "access": account.access,
                           "last_activity": account.last_activity}
    if link.why is not None:
        out["email"] = account.email
        out["why"] = link.why
    return out


def directory_report(directory: Directory) -> dict[str, Any]:
    """People (by email) with their accounts and how each was linked, the unlinked accounts with
    why, the declared service accounts found, and when each system was last read."""
    return {
        "reads": dict(directory.reads.read_at),
        "people": [{"email": p.email, "left_at": p.left_at, "accounts": [_account(link) for link in p.links]}
                   for p in directory.people.values()],
        "unlinked": [_account(link) for link in directory.unlinked],
        "service_accounts": [_account(link) for link in directory.service],
    }
