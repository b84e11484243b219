"""``jira.change_tickets`` and ``jira.incidents``: issues from JQL, incremental by ``updated``,
each with every status transition from its full changelog."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from connectors.jira._time import Position, jql_date, parse_jira_time, utc_text
from connectors.jira.config import JiraConfig
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import ItemError
from connectors.sdk.items import Cursor, ItemFailure, Normalised, SourceItem

if TYPE_CHECKING:
    # A type only: the client module imports the `jira` package, which the connector loads
    # when it opens its session, never when the streams are declared.
    from connectors.jira._client import JiraApi

__all__ = ["ChangeTickets", "Incidents", "transitions"]

# JQL dates have minute precision; a minute more of overlap absorbs clock rounding on
# Jira's side. What is re-read is skipped by the cursor, not stored twice.
_OVERLAP = timedelta(minutes=1)


def _who(user: Any) -> str | None:
    """A person as the evidence names them: email when Jira shows it, else the account id."""
    if not isinstance(user, dict):
        return None
    value = user.get("emailAddress") or user.get("accountId") or user.get("displayName")
    return str(value) if value else None


def _name(value: Any) -> str | None:
    return str(value["name"]) if isinstance(value, dict) and value.get("name") else None


def _utc(text: Any) -> str | None:
    return utc_text(parse_jira_time(text)) if isinstance(text, str) and text else None


def transitions(issue: dict[str, Any]) -> list[dict[str, str | None]]:
    """Every status change in the issue's changelog, oldest first: from, to, by, at (UTC)."""
    histories = (issue.get("changelog") or {}).get("histories") or []
    found: list[tuple[str, int, dict[str, str | None]]] = []
    for order, history in enumerate(histories):
        at = _utc(history.get("created"))
        for item in history.get("items") or []:
            if item.get("field") == "status":
                found.append((at or "", order, {
                    "from": item.get("fromString"), "to": item.get("toString"),
                    "by": _who(history.get("author")), "at": at,
                }))
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [entry[2] for entry in found]


def _common(issue: dict[str, Any]) -> dict[str, Any]:
    fields = issue.get("fields") or {}
    return {
        "key": issue["key"],
        "summary": fields.get("summary"),
        "issue_type": _name(fields.get("issuetype")),
        "status": _name(fields.get("status")),
        "resolution": _name(fields.get("resolution")),
        "priority": _name(fields.get("priority")),
        "reporter": _who(fields.get("reporter")),
        "assignee": _who(fields.get("assignee")),
        "created": _utc(fields.get("created")),
        "resolved": _utc(fields.get("resolutiondate")),
        "transitions": transitions(issue),
    }


def _fold(name: str) -> str:
    """A resolution name compared as people read it: any case, either apostrophe."""
    return name.replace("\u2019", "'").casefold().strip()


def _is_resolved(issue: dict[str, Any]) -> bool:
    fields = issue.get("fields") or {}
    category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
    return bool(fields.get("resolutiondate") or fields.get("resolution") or category == "done")


class _IssueStream(Stream[JiraConfig, "JiraApi"]):
    """Issues matching the configured JQL, updated since the cursor, oldest update first."""

    mode = "events"
    jql_key: ClassVar[str]

    def query(self, since: datetime, api: JiraApi) -> str:
        """The JQL for issues updated at or after ``since`` (read a little early), oldest first."""
        jql = str(getattr(self.config, self.jql_key))
        return f'({jql}) AND updated >= "{jql_date(since - _OVERLAP, api.zone)}" ORDER BY updated ASC'

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        position = Position(cursor.value)
        api = self.session()
        for page in api.search(self.query(position.updated or cursor.floor, api)):
            for issue in page["issues"]:
                key = issue.get("key") if isinstance(issue, dict) else None
                if not isinstance(key, str) or not key:
                    yield ItemFailure("?", "jira: a search result had no issue key")
                    continue
                try:
                    updated = parse_jira_time(issue["fields"]["updated"])
                except (KeyError, TypeError, ValueError):
                    yield ItemFailure(key, "jira: the issue has no readable updated time")
                    continue
                if updated > cursor.ceiling:
                    return  # sorted by updated: the rest changed after this run began; next run
                if position.seen(updated, key):
                    continue
                try:
                    full = self._complete(api, issue)
                except ItemError as exc:
                    yield ItemFailure(key, str(exc))
                    continue
                yield SourceItem(key, updated, orjson.dumps(full), full,
                                 cursor=position.advance(updated, key))

    @staticmethod
    def _complete(api: JiraApi, issue: dict[str, Any]) -> dict[str, Any]:
        """The issue with its whole changelog: a search embeds only part of a long one."""
        changelog = issue.get("changelog") or {}
        histories = changelog.get("histories") or []
        total = changelog.get("total")
        if not isinstance(total, int) or total <= len(histories):
            return issue
        everything = api.changelog(issue["key"])
        return {**issue, "changelog": {"startAt": 0, "maxResults": len(everything),
                                       "total": len(everything), "histories": everything}}

    def source_url(self, key: str) -> str:
        """The issue's page, for an auditor to follow."""
        return f"{self.config.url.rstrip('/')}/browse/{key}"


class ChangeTickets(_IssueStream):
    """Change tickets from ``change_jql``; an exception when resolved without passing approval,
    unless the resolution is one of ``not_delivered_resolutions`` (the change was never made)."""

    name = "change_tickets"
    kinds = frozenset({"change_ticket"})
    jql_key = "change_jql"

    def normalise(self, item: SourceItem) -> Normalised:
        issue: dict[str, Any] = item.obj
        data = _common(issue)
        wanted = self.config.approval_status.casefold()
        approvals = [t for t in data["transitions"] if (t["to"] or "").casefold() == wanted]
        resolved = _is_resolved(issue)
        # An approval counts only if it came before the resolution (when that time is known).
        in_time = [t for t in approvals if not data["resolved"] or (t["at"] or "") <= data["resolved"]]
        approvers = list(dict.fromkeys(t["by"] for t in approvals if t["by"]))
        data.update(approval_status=self.config.approval_status, approved=bool(in_time),
                    approvers=approvers)
        exception = None
        undelivered = {_fold(r) for r in self.config.not_delivered_resolutions}
        if resolved and data["resolution"] and _fold(data["resolution"]) in undelivered:
            data["delivered"] = False  # closed without the change being made: nothing to approve
        elif resolved and not in_time:
            exception = (f"change resolved ({data['status']}) without passing the "
                         f"'{self.config.approval_status}' status")
        actor = approvers[-1] if approvers else data["reporter"]
        return Normalised("change_ticket", actor, self.source_url(item.key), data, exception)


class Incidents(_IssueStream):
    """Incident tickets from ``incident_jql``, with their resolution and time to resolve."""

    name = "incidents"
    kinds = frozenset({"incident"})
    jql_key = "incident_jql"

    def normalise(self, item: SourceItem) -> Normalised:
        issue: dict[str, Any] = item.obj
        data = _common(issue)
        seconds = None
        if data["created"] and data["resolved"]:
            delta = parse_jira_time(data["resolved"]) - parse_jira_time(data["created"])
            seconds = int(delta.total_seconds())
        data["time_to_resolve_seconds"] = seconds
        actor = data["assignee"] or data["reporter"]
        return Normalised("incident", actor, self.source_url(item.key), data)
