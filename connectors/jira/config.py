"""The ``[connectors.jira]`` section."""

from __future__ import annotations

import re
from dataclasses import dataclass

from connectors.sdk.base import ConnectorConfig, required_field
from connectors.sdk.urls import url_problems

__all__ = ["JiraConfig"]

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class JiraConfig(ConnectorConfig):
    """A Jira Cloud site, the API user's credentials (named env vars) and what to collect."""

    url: str = required_field()
    email_env: str = required_field(metadata={"env": True})
    token_env: str = required_field(metadata={"env": True})
    change_jql: str = required_field()
    incident_jql: str = "project = INC"
    approval_status: str = "Approved"
    # Resolutions that mean the change was never made: a ticket closed with one of them needs no
    # approval (compared without regard to case or to the apostrophe's form).
    not_delivered_resolutions: tuple[str, ...] = ("Won't Do", "Won't Fix", "Duplicate", "Cancelled")

    def problems(self) -> list[tuple[str, str]]:
        """(key, problem) for values that cannot work; the config loader reports the first."""
        found: list[tuple[str, str]] = []
        found.extend(url_problems("url", self.url, "https://acme.atlassian.net"))
        for key in ("change_jql", "incident_jql"):
            jql = getattr(self, key)
            if not jql.strip():
                found.append((key, "must not be empty"))
            elif _ORDER_BY.search(jql):
                found.append((key, "must not contain ORDER BY (the connector orders by updated)"))
        for index, resolution in enumerate(self.not_delivered_resolutions):
            if not resolution.strip():
                found.append((f"not_delivered_resolutions[{index}]", "must name a resolution, not be empty"))
        if not self.approval_status.strip():
            found.append(("approval_status", "must name the workflow status that means approved"))
        return found
