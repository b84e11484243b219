"""GitHub reviews judged as of the merge, approvals of the merged head commit, and older protection shapes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.config import load_settings
from collector.errors import ConfigError
from connectors.github import GithubConnector
from connectors.github.streams import NOT_FINAL, UNREVIEWED
from connectors.sdk import Cursor, Normalised, SourceItem
from sandbox._http import Status
from sandbox.github import FakeGithub
from sandbox.github_data import Protection
from sandbox.github_seed import SeededOrg

MakeConnector = Callable[..., GithubConnector]


def _judged(connector: GithubConnector) -> dict[str, Normalised]:
    stream = connector.stream("pull_requests")
    now = datetime.now(UTC)
    items = [o for o in stream.fetch(Cursor(None, now, now - timedelta(days=365))) if isinstance(o, SourceItem)]
    return {i.key: stream.normalise(i) for i in items}


@pytest.mark.parametrize("api", ["rest", "graphql"])
def test_reviews_after_the_merge_change_nothing(make_connector: MakeConnector, fake: FakeGithub,
                                                seeded: SeededOrg, api: str) -> None:
    """An approval dismissed after the merge still counts (its record shows it dismissed and
    APPROVED at the merge); one dismissed before it, or given only after it, does not; through
    REST the issue events are read only for pulls with a dismissed review."""
    judged = _judged(make_connector(api=api))
    known = seeded.known
    kept = judged[known.pr_dismissed_after_merge]
    assert kept.exception is None and kept.data["approvers"] == ["erin"]
    assert [(r["state"], r["at_merge"]) for r in kept.data["reviews"]] == [("DISMISSED", "APPROVED")]
    stale = judged[known.pr_dismissed_before_merge]
    assert stale.exception == UNREVIEWED
    assert [(r["state"], r["at_merge"]) for r in stale.data["reviews"]] == [("DISMISSED", "DISMISSED")]
    late = judged[known.pr_approved_after_merge]
    assert late.exception == UNREVIEWED and [r["at_merge"] for r in late.data["reviews"]] == [None]
    events = {r.path for r in fake.requests if "/issues/" in r.path}
    assert events == (set() if api == "graphql" else {
        f"/repos/{key.replace('#', '/issues/')}/events"
        for key in (known.pr_dismissed_after_merge, known.pr_dismissed_before_merge)})


def test_the_approval_of_the_merged_head_commit_is_recorded(make_connector: MakeConnector,
                                                             seeded: SeededOrg) -> None:
    """Each record says whether an approval was of the merged head commit; by default an approval
    of an earlier commit is enough, with require_final_approval it is an exception."""
    known = seeded.known
    default = _judged(make_connector())
    earlier = default[known.pr_approved_earlier_commit]
    assert earlier.exception is None and earlier.data["approved_head_commit"] is False
    assert earlier.data["reviews"][0]["commit_id"] != earlier.data["head_sha"]
    assert default[known.pr_dismissed_after_merge].data["approved_head_commit"] is True
    strict = _judged(make_connector(require_final_approval=True))
    changed = {key for key, n in strict.items() if n.exception != default[key].exception}
    assert changed == {known.pr_approved_earlier_commit}
    assert strict[known.pr_approved_earlier_commit].exception == NOT_FINAL


def test_unreadable_dismissal_events_are_named_in_the_record(make_connector: MakeConnector, fake: FakeGithub,
                                                             seeded: SeededOrg) -> None:
    """When GitHub refuses a pull's issue events, the record names the refusal; a review dismissed on
    a pull updated after its merge counts as the approval it was submitted as, one on a pull not
    updated since its merge was dismissed before it."""
    known = seeded.known
    for key in (known.pr_dismissed_after_merge, known.pr_dismissed_before_merge):
        fake.faults.push(Status(404, body={"message": "Not Found"}),
                         path_prefix=f"/repos/{key.replace('#', '/issues/')}/events")
    judged = _judged(make_connector(api="rest"))  # REST reads the issue events
    kept, stale = judged[known.pr_dismissed_after_merge], judged[known.pr_dismissed_before_merge]
    assert "HTTP 404" in kept.data["dismissals_unread"] and kept.exception is None
    assert "HTTP 404" in stale.data["dismissals_unread"] and stale.exception == UNREVIEWED
    assert "dismissals_unread" not in judged[known.pr_unreviewed].data


def _protection_of(make_connector: MakeConnector, repo: str) -> Normalised:
    connector = make_connector(repos=(repo,))
    stream = connector.stream("branch_protection")
    now = datetime.now(UTC)
    [item] = [o for o in stream.fetch(Cursor(None, now, now)) if isinstance(o, SourceItem)]
    return stream.normalise(item)


def test_required_reviews_without_a_count_mean_one_approval(make_connector: MakeConnector, fake: FakeGithub) -> None:
    """Protection that requires reviews but states no count (the older API shape) requires one
    approval and is no exception; a stated 0, or no required reviews at all, is one."""
    legacy = _protection_of(make_connector, "api")
    assert legacy.exception is None
    assert legacy.data["required_approving_review_count"] == 1 and legacy.data["review_count_stated"] is False
    with fake.lock:
        fake.org.repos["api"].protection["main"] = Protection(required_approvals=None)
    none = _protection_of(make_connector, "api")
    assert none.exception == "default branch protection requires no approving review"
    zero = _protection_of(make_connector, "web")
    assert zero.exception == "default branch protection requires no approving review"
    assert zero.data["review_count_stated"] is True


@pytest.mark.parametrize("value", ['"yes"', "1"])
def test_require_final_approval_must_be_a_boolean(tmp_path: Path, value: str) -> None:
    """A non-boolean require_final_approval is a ConfigError naming the key."""
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n[connectors.github]\n'
                    f'org = "acme"\nrequire_final_approval = {value}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "connectors.github.require_final_approval"


def _pull(reviews: list[dict[str, Any]], updated: str, **extra: Any) -> SourceItem:
    pull = {"number": 1, "title": "t", "user": {"login": "erin"}, "merged_by": {"login": "erin"},
            "merged_at": "2026-11-01T00:00:00Z", "updated_at": updated, "base": {"ref": "main"},
            "head": {"sha": "a" * 40}, "html_url": "https://github.example/acme/api/pull/1"}
    obj = {"pull": pull, "reviews": reviews, "repo": "acme/api", "default_branch": "main", **extra}
    return SourceItem("acme/api#1", datetime(2026, 11, 1, tzinfo=UTC), b"{}", obj)


def _review(state: str, submitted: str, review_id: int = 7) -> dict[str, Any]:
    return {"id": review_id, "user": {"login": "bob"}, "state": state, "submitted_at": submitted,
            "commit_id": "a" * 40}


def _dismissed(at: str, was: str, review_id: int = 7) -> dict[str, Any]:
    return {"event": "review_dismissed", "created_at": at,
            "dismissed_review": {"state": was, "review_id": review_id}}


@pytest.mark.parametrize(("reviews", "extra", "exception"), [
    # dismissed after the merge: the approval stood at the merge
    ([_review("DISMISSED", "2026-10-31T00:00:00Z")],
     {"review_dismissed_events": [_dismissed("2026-11-02T00:00:00Z", "approved")]}, None),
    # dismissed before the merge
    ([_review("DISMISSED", "2026-10-31T00:00:00Z")],
     {"review_dismissed_events": [_dismissed("2026-10-31T12:00:00Z", "approved")]}, UNREVIEWED),
    # a change request dismissed after the merge was no approval then either
    ([_review("DISMISSED", "2026-10-31T00:00:00Z")],
     {"review_dismissed_events": [_dismissed("2026-11-02T00:00:00Z", "changes_requested")]}, UNREVIEWED),
    # approved only after the merge
    ([_review("APPROVED", "2026-11-01T00:00:01Z")], {}, UNREVIEWED),
    # approved at the very second of the merge
    ([_review("APPROVED", "2026-11-01T00:00:00Z")], {}, None),
    # a change request after the merge does not withdraw the approval given before it
    ([_review("APPROVED", "2026-10-31T00:00:00Z"), _review("CHANGES_REQUESTED", "2026-11-03T00:00:00Z", 8)],
     {}, None),
])
def test_review_rule_as_of_the_merge(make_connector: MakeConnector, reviews: list[dict[str, Any]],
                                     extra: dict[str, Any], exception: str | None) -> None:
    """The review rule reads each review as it stood at merged_at."""
    item = _pull(reviews, "2026-11-05T00:00:00Z", **extra)
    assert make_connector().stream("pull_requests").normalise(item).exception == exception
