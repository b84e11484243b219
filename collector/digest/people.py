"""The digest's identities section: who left and where they keep access, reviews, overdue revocations."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection

from collector.identities.accounts import account_from_body
from collector.identities.checks import OFFBOARDING, REVOCATIONS
from collector.identities.decisions import REVIEW_TYPE, read_decisions
from collector.identities.review import TITLE
from collector.manual.streams import DOCUMENTS
from storage.identity_queries import bodies_with_prefix
from storage.manual_queries import latest_read

__all__ = ["identities_section"]


def _left(conn: Connection, start: str, end: str, before: str | None) -> list[dict[str, Any]]:
    """People whose Okta account was deactivated or suspended in ``[start, end)`` (as the newest
    okta.users read (at or before ``before``, when given) shows), and those who left earlier but whom the
    newest offboarding check still found with access; each with those accounts (``state``
    ``within_grace`` or ``overdue``) and ``this_week``."""
    read_at, bodies = latest_read(conn, "okta.users", before)
    departed: dict[str, dict[str, Any]] = {}
    for text in bodies:
        account = account_from_body("okta", orjson.loads(text), read_at or "")
        if account is None or not account.departed or account.email is None:
            continue
        changed = account.status_changed
        departed[account.email] = {"person": account.email, "left_at": changed, "status": account.status,
                                   "this_week": changed is not None and start <= _stamp(changed) < end,
                                   "still_active": []}
    left = {email: p for email, p in departed.items() if p["this_week"]}
    _, checks = latest_read(conn, OFFBOARDING, before)
    for text in checks:
        body = orjson.loads(text)
        data = body.get("data") or {}
        email = str(data.get("person"))
        person = left.get(email) or departed.get(email)
        if person is not None:
            left[email] = person
            person["still_active"].append({"system": data.get("system"), "account": data.get("account"),
                                           "state": data.get("state"), "read_at": data.get("read_at")})
    for person in left.values():
        person["still_active"].sort(key=lambda a: (str(a["system"]), str(a["account"])))
    return sorted(left.values(), key=lambda p: (str(p["left_at"]), p["person"]))


def _stamp(okta_time: str) -> str:
    """An Okta time (``2026-11-17T09:00:00.000Z``) comparable as text with stored stamps."""
    return okta_time[:19] + ".000000Z" if len(okta_time) >= 19 else okta_time


def _campaigns(conn: Connection, before: str | None, checked_at: str | None, overdue: list[dict[str, Any]],
               pending: dict[str, int]) -> list[dict[str, Any]]:
    """Each started campaign (its worksheet document) with its decisions and revocations: a
    revoke decided after the newest revocations check is pending until a check has seen it."""
    decisions = read_decisions(conn, before)
    out: dict[str, dict[str, Any]] = {}
    for _, _, text in bodies_with_prefix(conn, DOCUMENTS, f"{REVIEW_TYPE}/", before):
        body = orjson.loads(text)
        match = TITLE.fullmatch(str((body.get("data") or {}).get("title") or ""))
        if match is None or match.group(1) in out:
            continue
        out[match.group(1)] = {"campaign": match.group(1), "system": match.group(2),
                               "quarter": match.group(3),
                               "started_at": body.get("observed_at"), "population": int(match.group(4)),
                               "decided": 0, "keep": 0, "revoke": 0}
    unseen: dict[str, int] = {}
    for decision in decisions:
        entry = out.get(decision.campaign)
        if entry is not None:
            entry["decided"] += 1
            entry[decision.decision] += 1
            if decision.decision == "revoke" and (checked_at is None or decision.at >= checked_at):
                unseen[decision.campaign] = unseen.get(decision.campaign, 0) + 1
    for entry in out.values():
        late = sum(1 for o in overdue if o["campaign"] == entry["campaign"])
        waiting = pending.get(entry["campaign"], 0) + unseen.get(entry["campaign"], 0)
        entry["revocations"] = {"done": max(entry["revoke"] - late - waiting, 0), "pending": waiting,
                                "overdue": late}
    return sorted(out.values(), key=lambda c: (str(c["started_at"]), c["campaign"]))


def identities_section(conn: Connection, start: str, end: str) -> dict[str, Any]:
    """``{"left_week", "campaigns", "revocations_overdue", "revocations_checked_at"}``: who left in
    the week ``[start, end)``, and the access, campaigns and revocations as the newest stored
    reads and checks show them (like people coverage: a digest written on Monday says where
    someone who left last week still has access today, not at Sunday midnight)."""
    before = None
    checked_at, bodies = latest_read(conn, REVOCATIONS, before)
    overdue: list[dict[str, Any]] = []
    pending: dict[str, int] = {}
    for text in bodies:
        body = orjson.loads(text)
        data = body.get("data") or {}
        if data.get("state") == "overdue":
            overdue.append({"campaign": data.get("campaign"), "system": data.get("system"),
                            "account": data.get("account"), "person": data.get("person"),
                            "reviewer": data.get("reviewer"), "decided_at": data.get("decided_at"),
                            "reason": body.get("exception_reason")})
        elif data.get("state") == "pending":
            pending[str(data.get("campaign"))] = pending.get(str(data.get("campaign")), 0) + 1
    overdue.sort(key=lambda o: (str(o["campaign"]), str(o["account"])))
    return {"left_week": _left(conn, start, end, before),
            "campaigns": _campaigns(conn, before, checked_at, overdue, pending),
            "revocations_overdue": overdue, "revocations_checked_at": checked_at}
