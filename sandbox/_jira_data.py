"""The fake Jira's issues: users, workflows, changelogs, a seeded data set, and their REST JSON."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from random import Random
from typing import Any

__all__ = [
    "APPROVERS",
    "CHANGE_FLOW",
    "INCIDENT_FLOW",
    "STATUSES",
    "Change",
    "History",
    "Issue",
    "JiraData",
    "User",
    "jira_time",
]

CHANGE_FLOW = ("To Do", "Awaiting Approval", "Approved", "In Progress", "Done")
INCIDENT_FLOW = ("Open", "Investigating", "Resolved")
# name -> (status id, status category key, category name)
STATUSES: dict[str, tuple[str, str, str]] = {
    "To Do": ("10000", "new", "To Do"),
    "Awaiting Approval": ("10001", "indeterminate", "In Progress"),
    "Approved": ("10002", "indeterminate", "In Progress"),
    "In Progress": ("3", "indeterminate", "In Progress"),
    "Done": ("10003", "done", "Done"),
    "Open": ("1", "new", "To Do"),
    "Investigating": ("10004", "indeterminate", "In Progress"),
    "Resolved": ("5", "done", "Done"),
}
_RESOLUTIONS = {"Done": "Done", "Resolved": "Fixed"}
_PROJECTS = {"CHG": ("Change Management", "Change"), "INC": ("Incidents", "Incident")}
APPROVERS = ("alice@example.com", "frank@example.com")
_ENGINEERS = ("bob@example.com", "carol@example.com", "dave@example.com")
_RESPONDERS = ("erin@example.com", "dave@example.com")


@dataclass(frozen=True)
class User:
    """A Jira Cloud account."""

    account_id: str
    email: str
    name: str

    def json(self) -> dict[str, Any]:
        """The user as Jira embeds it in issues and changelogs."""
        return {"accountId": self.account_id, "emailAddress": self.email,
                "displayName": self.name, "active": True, "accountType": "atlassian"}


@dataclass(frozen=True)
class Change:
    """One field change inside a changelog history."""

    field: str
    from_string: str | None
    to_string: str | None


@dataclass(frozen=True)
class History:
    """One changelog entry: who changed what, when."""

    id: int
    author: User
    created: datetime
    items: tuple[Change, ...]


@dataclass
class Issue:
    """An issue and its changelog, oldest history first."""

    id: int
    key: str
    project: str
    issuetype: str
    summary: str
    status: str
    reporter: User
    assignee: User | None
    priority: str
    created: datetime
    updated: datetime
    resolution: str | None = None
    resolved: datetime | None = None
    histories: list[History] = field(default_factory=list)

    def jql_value(self, name: str) -> str | datetime | None:
        """The value JQL compares for field ``name`` (canonical lower-case name)."""
        values: dict[str, str | datetime | None] = {
            "project": self.project, "key": self.key, "status": self.status,
            "issuetype": self.issuetype, "resolution": self.resolution,
            "reporter": self.reporter.email, "priority": self.priority,
            "assignee": self.assignee.email if self.assignee else None,
            "updated": self.updated, "created": self.created, "resolved": self.resolved,
        }
        return values.get(name)


def jira_time(when: datetime, zone: tzinfo) -> str:
    """Jira's timestamp format, e.g. ``2026-01-15T10:22:33.123+0000``, in the user's zone."""
    local = when.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def _ms(when: datetime) -> datetime:
    return when.replace(microsecond=(when.microsecond // 1000) * 1000)


class JiraData:
    """Mutable, thread-safe issue store; the server reads it, tests change it between runs."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.issues: dict[str, Issue] = {}
        self._next_id = 10000
        self._next_history = 20000
        self._counters: dict[str, int] = {}
        for n, email in enumerate((*APPROVERS, *_ENGINEERS, "erin@example.com")):
            local = email.split("@")[0]
            self.user(email, f"5b10a2844c20165700ede{n:03d}", local.title())

    # -- mutation ----------------------------------------------------------------------

    def user(self, email: str, account_id: str | None = None, name: str | None = None) -> User:
        """The user with ``email``, created on first use."""
        with self.lock:
            if email not in self.users:
                n = len(self.users)
                self.users[email] = User(account_id or f"712020:{n:08d}-fake", email,
                                         name or email.split("@", maxsplit=1)[0].title())
            return self.users[email]

    def add_issue(self, project: str, summary: str, *, reporter: str, assignee: str | None = None,
                  created: datetime | None = None, priority: str = "Medium",
                  issuetype: str | None = None) -> str:
        """Create an issue in its workflow's first status; returns its key."""
        when = _ms(created or datetime.now(UTC))
        default_type = _PROJECTS.get(project, (project, "Task"))[1]
        first = INCIDENT_FLOW[0] if (issuetype or default_type) == "Incident" else CHANGE_FLOW[0]
        with self.lock:
            self._counters[project] = self._counters.get(project, 0) + 1
            key = f"{project}-{self._counters[project]}"
            self._next_id += 1
            self.issues[key] = Issue(
                id=self._next_id, key=key, project=project, issuetype=issuetype or default_type,
                summary=summary, status=first, reporter=self.user(reporter),
                assignee=self.user(assignee) if assignee else None, priority=priority,
                created=when, updated=when,
            )
            return key

    def _record(self, issue: Issue, by: str, at: datetime | None, items: Iterable[Change]) -> datetime:
        when = _ms(at or datetime.now(UTC))
        self._next_history += 1
        issue.histories.append(History(self._next_history, self.user(by), when, tuple(items)))
        issue.updated = max(issue.updated, when)
        return when

    def transition(self, key: str, to: str, *, by: str, at: datetime | None = None,
                   resolution: str | None = None) -> None:
        """Move ``key`` to status ``to``; entering Done/Resolved sets the resolution (Done or Fixed,
        unless ``resolution`` names another, such as "Won't Do")."""
        if to not in STATUSES:
            raise ValueError(f"unknown status {to!r}")
        with self.lock:
            issue = self.issues[key]
            items = [Change("status", issue.status, to)]
            resolution = (resolution or _RESOLUTIONS.get(to)) if to in _RESOLUTIONS else None
            if resolution != issue.resolution:
                items.append(Change("resolution", issue.resolution, resolution))
            when = self._record(issue, by, at, items)
            issue.status = to
            issue.resolution = resolution
            issue.resolved = when if resolution else None

    def edit(self, key: str, field_name: str, to: str, *, by: str, at: datetime | None = None) -> None:
        """Record a non-status change (a description or label edit) in the changelog."""
        with self.lock:
            issue = self.issues[key]
            self._record(issue, by, at, [Change(field_name, None, to)])

    def walk(self, key: str, statuses: Iterable[str], *, by: Iterable[str], start: datetime,
             rng: Random, until: datetime) -> datetime:
        """Transition through ``statuses`` at random gaps after ``start``, stopping before ``until``."""
        when = start
        for status, actor in zip(statuses, by, strict=True):
            when = when + timedelta(minutes=rng.randint(20, 9 * 60), milliseconds=rng.randint(0, 999))
            if when >= until:
                break
            self.transition(key, status, by=actor, at=when)
        return when

    # -- reading -----------------------------------------------------------------------

    def snapshot(self) -> list[Issue]:
        """Every issue (shared objects: read them under ``lock``)."""
        with self.lock:
            return list(self.issues.values())

    def issue_json(self, issue: Issue, base_url: str, zone: tzinfo, fields: set[str] | None,
                   changelog_limit: int | None) -> dict[str, Any]:
        """The issue as ``/search/jql`` returns it; ``fields`` None means all, and a
        ``changelog_limit`` embeds at most that many of the most recent histories."""
        status_id, cat_key, cat_name = STATUSES[issue.status]
        every: dict[str, Any] = {
            "summary": issue.summary,
            "issuetype": {"id": "100" + str(len(issue.issuetype)), "name": issue.issuetype,
                          "subtask": False},
            "project": {"key": issue.project, "name": _PROJECTS.get(issue.project, (issue.project,))[0]},
            "status": {"self": f"{base_url}/rest/api/2/status/{status_id}", "id": status_id,
                       "name": issue.status,
                       "statusCategory": {"key": cat_key, "name": cat_name}},
            "resolution": {"name": issue.resolution} if issue.resolution else None,
            "resolutiondate": jira_time(issue.resolved, zone) if issue.resolved else None,
            "reporter": issue.reporter.json(),
            "assignee": issue.assignee.json() if issue.assignee else None,
            "priority": {"name": issue.priority},
            "created": jira_time(issue.created, zone),
            "updated": jira_time(issue.updated, zone),
        }
        chosen = every if fields is None else {k: v for k, v in every.items() if k in fields}
        body: dict[str, Any] = {
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": str(issue.id), "self": f"{base_url}/rest/api/2/issue/{issue.id}", "key": issue.key,
            "fields": chosen,
        }
        if changelog_limit is not None:
            shown = issue.histories[-changelog_limit:] if changelog_limit else []
            body["changelog"] = {"startAt": 0, "maxResults": len(shown), "total": len(issue.histories),
                                 "histories": [history_json(h, zone) for h in shown]}
        return body


def history_json(history: History, zone: tzinfo) -> dict[str, Any]:
    """One changelog history as Jira returns it."""
    items = []
    for change in history.items:
        item: dict[str, Any] = {"field": change.field, "fieldtype": "jira",
                                "fieldId": change.field,
                                "from": None, "fromString": change.from_string,
                                "to": None, "toString": change.to_string}
        if change.field == "status":
            item["from"] = STATUSES[change.from_string][0] if change.from_string else None
            item["to"] = STATUSES[change.to_string][0] if change.to_string else None
        items.append(item)
    return {"id": str(history.id), "author": history.author.json(),
            "created": jira_time(history.created, zone), "items": items}


def seed(data: JiraData, *, seed: int, now: datetime, days: int = 60, changes: int = 40,
         incidents: int = 12) -> dict[str, str]:
    """Fill ``data`` with ``days`` of change tickets and incidents ending before ``now``.

    Deterministic from ``seed`` and ``now``. Returns the known cases by name:
    ``unapproved`` (a change Done without passing Approved), ``long_changelog`` (approved
    early, then more edits than a search embeds), ``approved`` (a normal approved change),
    ``not_delivered`` (Done as "Won't Do" without approval: never delivered, not an exception)
    and ``open`` (the newest change, still waiting for approval).
    """
    rng = Random(seed)  # noqa: S311 - a reproducible data set, not security
    until = _ms(now) - timedelta(minutes=5)
    start = _ms(now) - timedelta(days=days)
    cases: dict[str, str] = {}
    span = (until - start).total_seconds()
    for i in range(changes):
        created = start + timedelta(seconds=int(span * i / changes * 0.97), milliseconds=rng.randint(0, 999))
        engineer = rng.choice(_ENGINEERS)
        approver = rng.choice(APPROVERS)
        key = data.add_issue("CHG", f"Change {i + 1}: {rng.choice(_CHANGE_TOPICS)}", reporter=engineer,
                             assignee=engineer, created=created, priority=rng.choice(_PRIORITIES))
        if i == 6:  # the known exception: straight to Done, never Approved
            data.walk(key, ("In Progress", "Done"), by=(engineer, engineer), start=created, rng=rng,
                      until=until)
            cases["unapproved"] = key
        elif i == 11:  # approved early, then a long tail of edits a search truncates
            at = data.walk(key, CHANGE_FLOW[1:3], by=(engineer, approver), start=created, rng=rng,
                           until=until)
            for n in range(120):
                at += timedelta(minutes=1, milliseconds=rng.randint(0, 999))
                data.edit(key, "description" if n % 3 else "labels", f"revision {n + 1}", by=engineer, at=at)
            data.walk(key, CHANGE_FLOW[3:], by=(engineer, engineer), start=at, rng=rng, until=until)
            cases["long_changelog"] = key
        elif i == 8:  # withdrawn before approval: closed as Won't Do, never delivered
            at = data.walk(key, CHANGE_FLOW[1:2], by=(engineer,), start=created, rng=rng, until=until)
            data.transition(key, "Done", by=engineer, at=at + timedelta(hours=2), resolution="Won't Do")
            cases["not_delivered"] = key
        elif i == changes - 1:
            data.walk(key, CHANGE_FLOW[1:2], by=(engineer,), start=created, rng=rng, until=until)
            cases["open"] = key
        else:
            stop = len(CHANGE_FLOW) if i < changes - 5 else rng.randint(2, len(CHANGE_FLOW))
            data.walk(key, CHANGE_FLOW[1:stop], by=(engineer, approver, engineer, engineer)[: stop - 1],
                      start=created, rng=rng, until=until)
            if i == 3:
                cases["approved"] = key
    for i in range(incidents):
        created = start + timedelta(seconds=int(span * (i + 0.5) / incidents * 0.97),
                                    milliseconds=rng.randint(0, 999))
        responder = rng.choice(_RESPONDERS)
        key = data.add_issue("INC", f"Incident {i + 1}: {rng.choice(_INCIDENT_TOPICS)}",
                             reporter=rng.choice(_ENGINEERS), assignee=responder, created=created,
                             priority=rng.choice(_PRIORITIES))
        stop = len(INCIDENT_FLOW) if i < incidents - 2 else 2
        data.walk(key, INCIDENT_FLOW[1:stop], by=(responder, responder)[: stop - 1], start=created,
                  rng=rng, until=until)
    return cases


_PRIORITIES = ("Low", "Medium", "High")
_CHANGE_TOPICS = ("rotate TLS certificates", "upgrade PostgreSQL minor version", "open port 8443 on the LB",
                  "deploy billing service 2.4", "tighten S3 bucket policy", "resize worker pool",
                  "enable audit logging", "patch base images")
_INCIDENT_TOPICS = ("API latency above SLO", "failed nightly backup", "expired certificate on status page",
                    "login errors for EU users", "queue backlog in billing")
