"""Jira change tickets closed without the change being made (Won't Do, Duplicate, Cancelled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.config import load_settings
from collector.errors import ConfigError
from connectors.jira import JiraConnector
from connectors.sdk import Cursor, SourceItem
from sandbox.jira import FakeJira

UNAPPROVED = "change resolved (Done) without passing the 'Approved' status"


def _ticket(resolution: str | None) -> SourceItem:
    issue: dict[str, Any] = {"key": "CHG-9", "fields": {
        "summary": "s", "issuetype": {"name": "Change"},
        "status": {"name": "Done", "statusCategory": {"key": "done"}},
        "resolution": {"name": resolution} if resolution else None,
        "resolutiondate": "2026-11-02T10:00:00.000+0000", "created": "2026-11-01T10:00:00.000+0000",
        "updated": "2026-11-02T10:00:00.000+0000", "reporter": {"emailAddress": "bob@example.com"}},
        "changelog": {"histories": [{"created": "2026-11-02T10:00:00.000+0000",
                                     "author": {"emailAddress": "bob@example.com"},
                                     "items": [{"field": "status", "fromString": "To Do", "toString": "Done"}]}]}}
    return SourceItem("CHG-9", datetime(2026, 11, 2, 10, tzinfo=UTC), b"{}", issue)


def test_the_seeded_wont_do_change_is_not_an_exception(make_connector: Any, fake: FakeJira) -> None:
    """The change closed as Won't Do without approval is recorded as not delivered, no exception;
    the change Done without approval still is one."""
    connector: JiraConnector = make_connector()
    stream = connector.stream("change_tickets")
    now = datetime.now(UTC)
    items = {o.key: o for o in stream.fetch(Cursor(None, now, now - timedelta(days=90)))
             if isinstance(o, SourceItem)}
    dropped = stream.normalise(items[fake.cases["not_delivered"]])
    assert dropped.exception is None and dropped.data["delivered"] is False
    assert dropped.data["resolution"] == "Won't Do" and dropped.data["approved"] is False
    assert stream.normalise(items[fake.cases["unapproved"]]).exception == UNAPPROVED
    assert "delivered" not in stream.normalise(items[fake.cases["approved"]]).data


@pytest.mark.parametrize(("resolution", "exception"), [
    ("Won't Do", None), ("won\u2019t do", None), ("DUPLICATE", None), ("Cancelled", None), ("Won't Fix", None),
    ("Done", UNAPPROVED), ("Fixed", UNAPPROVED), (None, UNAPPROVED),
])
def test_not_delivered_resolutions_need_no_approval(make_connector: Any, resolution: str | None,
                                                    exception: str | None) -> None:
    """A change resolved as never delivered needs no approval; one resolved as done does."""
    normalised = make_connector().stream("change_tickets").normalise(_ticket(resolution))
    assert normalised.exception == exception


def test_not_delivered_resolutions_are_configurable(make_connector: Any) -> None:
    """With its own list, an organisation's "Abandoned" needs no approval and Won't Do does."""
    stream = make_connector(not_delivered_resolutions=("Abandoned",)).stream("change_tickets")
    assert stream.normalise(_ticket("Abandoned")).exception is None
    assert stream.normalise(_ticket("Won't Do")).exception == UNAPPROVED


@pytest.mark.parametrize(("value", "key", "problem"), [
    ('["Won\'t Do", " "]', "connectors.jira.not_delivered_resolutions[1]", "must name a resolution"),
    ('"Won\'t Do"', "connectors.jira.not_delivered_resolutions", "expected an array of strings"),
])
def test_bad_not_delivered_resolutions_is_a_config_error(tmp_path: Path, value: str, key: str, problem: str) -> None:
    """An empty entry, or a string where a list belongs, is a ConfigError naming the key."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n[connectors.jira]\n'
                    'url = "https://acme.atlassian.net"\nemail_env = "JIRA_EMAIL"\ntoken_env = "JIRA_API_TOKEN"\n'
                    f'change_jql = "project = CHG"\nnot_delivered_resolutions = {value}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == key and problem in str(caught.value)
