"""GitHub streams: merged pull requests (events), default-branch protection and org 2FA (state)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from connectors.github.config import GithubConfig
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import FatalError, ItemError, RetriableError
from connectors.sdk.items import Checkpoint, Cursor, ItemFailure, Normalised, SourceItem

if TYPE_CHECKING:
    # Types only: the client module imports PyGithub, which the connector loads when it opens
    # its session, never when the streams are declared.
    from github.GithubObject import GithubObject
    from github.PullRequest import PullRequest
    from github.Repository import Repository

    from connectors.github._client import GithubClient

__all__ = ["NOT_FINAL", "PULLS_QUERY", "UNREVIEWED", "BranchProtection", "OrgSettings", "PullRequests",
           "approvers", "evidence_from_graphql", "evidence_from_rest", "github_ts", "received",
           "states_at_merge"]

UNREVIEWED = "merged to the default branch without an APPROVED review by someone other than the author"
NOT_FINAL = ("merged to the default branch without an APPROVED review of its final commit by someone "
             "other than the author")
# A COMMENTED review leaves an earlier approval standing on GitHub; PENDING is not submitted.
_DECISIVE = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})


def github_ts(when: datetime) -> str:
    """GitHub's second-resolution UTC form, which sorts as text: ``2026-11-28T07:16:25Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def states_at_merge(obj: dict[str, Any]) -> list[str | None]:
    """Each review's state as it stood when the pull was merged, in listing order: None for a
    review submitted after the merge (or never submitted), which changes nothing.

    A DISMISSED review counts as what it was (``dismissed_review.state`` of its
    ``review_dismissed`` issue event) when that event came after the merge. When GitHub refused
    those events (``dismissals_unread``), a review dismissed while the pull was updated after
    the merge counts as an approval of its commit, and the record names it; one on a pull not
    updated since its merge was dismissed before it.
    """
    pull: dict[str, Any] = obj["pull"]
    merged = _instant(pull.get("merged_at"))
    updated = _instant(pull.get("updated_at"))
    events: list[dict[str, Any]] | None = obj.get("review_dismissed_events")
    dismissed: dict[Any, tuple[datetime | None, str]] = {}
    for event in events or []:
        review = event.get("dismissed_review") or {}
        dismissed[review.get("review_id")] = (_instant(event.get("created_at")),
                                              str(review.get("state") or "").upper())
    out: list[str | None] = []
    for review in obj["reviews"]:
        submitted = _instant(review.get("submitted_at"))
        if submitted is None or (merged is not None and submitted > merged):
            out.append(None)
            continue
        state = review.get("state")
        if state == "DISMISSED" and merged is not None:
            if events is not None:
                at, before = dismissed.get(review.get("id"), (None, ""))
                if at is not None and at > merged and before in _DECISIVE:
                    state = before
            elif "dismissals_unread" in obj and updated is not None and updated > merged:
                state = "APPROVED"
        out.append(str(state) if state else None)
    return out


def approvers(author: str | None, reviews: list[dict[str, Any]],
              states: list[str | None] | None = None) -> list[str]:
    """Reviewers other than ``author`` whose latest decisive review (in submission order) is APPROVED;
    ``states`` replaces each review's state (``states_at_merge``), None leaving it out."""
    return sorted(_approvals(author, reviews, states))


def _approvals(author: str | None, reviews: list[dict[str, Any]],
               states: list[str | None] | None) -> dict[str, dict[str, Any]]:
    """Each approver's approving review (their latest decisive one)."""
    latest: dict[str, tuple[str, dict[str, Any]]] = {}
    for index, review in enumerate(reviews):
        login = (review.get("user") or {}).get("login")
        state = review.get("state") if states is None else states[index]
        if login and state in _DECISIVE:
            latest[login] = (state, review)
    return {login: review for login, (state, review) in latest.items()
            if state == "APPROVED" and login != author}


def _raw(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def _times(pull: PullRequest) -> tuple[datetime | None, datetime | None]:
    return pull.updated_at, pull.merged_at


def received(obj: GithubObject) -> dict[str, Any]:
    """The JSON object PyGithub parsed for ``obj``, as the server sent it.

    PyGithub's public ``raw_data`` first completes a partial object with one more request;
    the attributes a listing returned are what the evidence is about, so read them as sent.
    """
    data = obj._rawData  # the payload as received; raw_data would refetch it
    return dict(data)


class _GithubStream(Stream[GithubConfig, "GithubClient"]):
    """A GitHub stream: the config, and the PyGithub client the connector opens on first use."""

    def repositories(self, client: GithubClient) -> Iterator[Repository]:
        """The configured repositories, else every repository of the org."""
        return client.repositories(self.config.org, self.config.repos)


PULLS_QUERY = """
query($owner: String!, $name: String!, $first: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequests(states: [MERGED], orderBy: {field: UPDATED_AT, direction: DESC},
                 first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        number title url updatedAt mergedAt baseRefName headRefOid
        mergeCommit { oid }
        author { __typename login }
        mergedBy { __typename login }
        reviews(first: 100) {
          pageInfo { hasNextPage endCursor }
          nodes { databaseId state submittedAt author { __typename login } commit { oid } }
        }
        timelineItems(itemTypes: [REVIEW_DISMISSED_EVENT], first: 100) {
          pageInfo { hasNextPage endCursor }
          nodes {
            __typename
            ... on ReviewDismissedEvent { createdAt previousReviewState review { databaseId } }
          }
        }
      }
    }
  }
}
"""
"""Merged pull requests of one repository, most recently updated first, with what a record needs:
the review states, the commit each review approved, the merged head and the dismissals."""


def _login(actor: Any) -> dict[str, Any] | None:
    """A GraphQL actor as REST's ``{"login"}``; a ``Bot`` gets back REST's ``[bot]`` suffix."""
    if not isinstance(actor, dict) or not actor.get("login"):
        return None
    login = str(actor["login"])
    if actor.get("__typename") == "Bot" and not login.endswith("[bot]"):
        login += "[bot]"
    return {"login": login}


def _user_of(obj: Any) -> dict[str, Any] | None:
    """REST's user object reduced to its login."""
    login = obj.get("login") if isinstance(obj, dict) else None
    return {"login": login} if login else None


def evidence_from_rest(pull: dict[str, Any], reviews: list[dict[str, Any]],
                       dismissals: list[dict[str, Any]] | None) -> dict[str, Any]:
    """What a pull request record is built from, out of REST's pull detail, reviews and
    ``review_dismissed`` issue events (None: not read); the same object ``evidence_from_graphql``
    makes of the same pull, so both APIs give the same raw hash and the same record."""
    out: dict[str, Any] = {
        "pull": {
            "number": pull.get("number"), "title": pull.get("title"), "html_url": pull.get("html_url"),
            "updated_at": pull.get("updated_at"), "merged_at": pull.get("merged_at"),
            "base": {"ref": (pull.get("base") or {}).get("ref")},
            "head": {"sha": (pull.get("head") or {}).get("sha")},
            "merge_commit_sha": pull.get("merge_commit_sha"),
            "user": _user_of(pull.get("user")), "merged_by": _user_of(pull.get("merged_by")),
        },
        "reviews": [
            {"id": r.get("id"), "state": r.get("state"), "submitted_at": r.get("submitted_at"),
             "user": _user_of(r.get("user")), "commit_id": r.get("commit_id")}
            for r in reviews
        ],
    }
    if dismissals is not None:
        out["review_dismissed_events"] = [
            {"created_at": e.get("created_at"),
             "dismissed_review": {"review_id": (e.get("dismissed_review") or {}).get("review_id"),
                                  "state": str((e.get("dismissed_review") or {}).get("state") or "").upper()}}
            for e in dismissals
        ]
    return out


def evidence_from_graphql(node: dict[str, Any]) -> dict[str, Any]:
    """What a pull request record is built from, out of one ``PULLS_QUERY`` node (see
    ``evidence_from_rest``); the dismissals are kept only when a review shows DISMISSED, as
    the REST path reads them only then."""
    reviews = [r for r in ((node.get("reviews") or {}).get("nodes") or []) if isinstance(r, dict)]
    out: dict[str, Any] = {
        "pull": {
            "number": node.get("number"), "title": node.get("title"), "html_url": node.get("url"),
            "updated_at": node.get("updatedAt"), "merged_at": node.get("mergedAt"),
            "base": {"ref": node.get("baseRefName")}, "head": {"sha": node.get("headRefOid")},
            "merge_commit_sha": (node.get("mergeCommit") or {}).get("oid"),
            "user": _login(node.get("author")), "merged_by": _login(node.get("mergedBy")),
        },
        "reviews": [
            {"id": r.get("databaseId"), "state": r.get("state"), "submitted_at": r.get("submittedAt"),
             "user": _login(r.get("author")), "commit_id": (r.get("commit") or {}).get("oid")}
            for r in reviews
        ],
    }
    if any(r.get("state") == "DISMISSED" for r in reviews):
        events = (node.get("timelineItems") or {}).get("nodes") or []
        out["review_dismissed_events"] = [
            {"created_at": e.get("createdAt"),
             "dismissed_review": {"review_id": (e.get("review") or {}).get("databaseId"),
                                  "state": str(e.get("previousReviewState") or "").upper()}}
            for e in events if isinstance(e, dict) and e.get("__typename") == "ReviewDismissedEvent"
        ]
    return out


def _complete(node: dict[str, Any]) -> bool:
    """Whether a node holds all its reviews and dismissals (no nested page left unread)."""
    return not any(((node.get(part) or {}).get("pageInfo") or {}).get("hasNextPage")
                   for part in ("reviews", "timelineItems"))


class PullRequests(_GithubStream):
    """Merged pull requests of each repository with their reviews; cursor = {repo: updated_at}.

    Per repository the pulls are listed by ``updated`` descending and read back only to the
    repository's cursor, so a run with nothing new costs one list request (or query) per
    repository. What was read is yielded oldest first and the repository's cursor moves after
    its last item.

    With ``api = "graphql"`` one query returns ``per_page`` merged pulls with their reviews and
    dismissals (a pull with more than 100 reviews or dismissals is read again through REST);
    a server without GraphQL is read through REST. With ``api = "rest"`` the closed pulls are
    listed and each merged one costs two more requests (its detail, its reviews), three with a
    DISMISSED review (its issue's ``review_dismissed`` events say when and what it had been).
    Both paths build the record from the same object (``evidence_from_rest`` and
    ``evidence_from_graphql``), whose canonical JSON is the raw that ``raw_sha256`` hashes.
    """

    name = "pull_requests"
    kinds = frozenset({"code_change"})
    mode = "events"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        from connectors.github._client import GraphqlUnavailable

        state: dict[str, str] = dict(cursor.value or {})
        # A pull updated in the run's own second may still change within it: leave it to the
        # next run, so that stopping at ``updated_at <= cursor`` never skips a later update.
        limit = github_ts(cursor.ceiling)
        floor = github_ts(cursor.floor)
        client = self.session()
        graphql = self.config.api == "graphql"
        for repo in self.repositories(client):
            if graphql:
                try:
                    yield from self._graphql_repo(client, repo, state, limit, floor)
                    continue
                except GraphqlUnavailable:
                    graphql = False  # raised by the repository's first query, before any output
            yield from self._rest_repo(client, repo, state, limit, floor)

    def _rest_repo(self, client: GithubClient, repo: Repository, state: dict[str, str],
                   limit: str, floor: str) -> Iterator[StreamOutput]:
        full = repo.full_name
        since = state.get(full)
        newest = since
        merged: list[PullRequest] = []
        listing = repo.get_pulls(state="closed", sort="updated", direction="desc")
        for pull in client.each(listing, f"GET /repos/{full}/pulls"):
            try:
                updated_at, merged_at = client.converted(
                    functools.partial(_times, pull), "pull request")
            except ItemError as exc:
                yield ItemFailure(f"{full}#{pull.number}", str(exc))
                continue
            if updated_at is None:
                continue
            updated = github_ts(updated_at)
            if updated >= limit:
                continue
            if updated <= (since or "") or (since is None and updated < floor):
                break
            newest = max(newest or updated, updated)
            if merged_at is not None:
                merged.append(pull)
        for pull in reversed(merged):
            yield self._item(client, repo, pull.number, pull)
        if newest is not None and newest != since:
            state[full] = newest
            yield Checkpoint(dict(state))

    def _graphql_repo(self, client: GithubClient, repo: Repository, state: dict[str, str],
                      limit: str, floor: str) -> Iterator[StreamOutput]:
        full = repo.full_name
        owner, _, name = full.partition("/")
        since = state.get(full)
        newest = since
        merged: list[dict[str, Any]] = []
        after: str | None = None
        done = False
        while not done:
            data = client.graphql(PULLS_QUERY, {"owner": owner, "name": name, "first": self.config.per_page,
                                                "after": after}, f"POST /graphql (pulls of {full})")
            connection = (data.get("repository") or {}).get("pullRequests") or {}
            for node in connection.get("nodes") or []:
                updated_at = _instant(node.get("updatedAt"))
                if updated_at is None:
                    shown = repr(node.get("updatedAt"))[:80]
                    yield ItemFailure(f"{full}#{node.get('number')}",
                                      f"github: unreadable pull request updatedAt {shown}")
                    continue
                updated = github_ts(updated_at)
                if updated >= limit:
                    continue
                if updated <= (since or "") or (since is None and updated < floor):
                    done = True
                    break
                newest = max(newest or updated, updated)
                merged.append(node)
            page = connection.get("pageInfo") or {}
            after = page.get("endCursor")
            done = done or not page.get("hasNextPage") or not after
        for node in reversed(merged):
            if _complete(node):
                yield self._graphql_item(repo, node)
            else:  # more than a page of reviews or dismissals: REST reads them all
                yield self._item(client, repo, int(node["number"]), None)
        if newest is not None and newest != since:
            state[full] = newest
            yield Checkpoint(dict(state))

    @staticmethod
    def _graphql_item(repo: Repository, node: dict[str, Any]) -> SourceItem | ItemFailure:
        full = repo.full_name
        raw = evidence_from_graphql(node)
        merged_at = _instant(raw["pull"]["merged_at"])
        if merged_at is None:
            shown = repr(node.get("mergedAt"))[:80]
            return ItemFailure(f"{full}#{node.get('number')}",
                               f"github: unreadable pull request mergedAt {shown}")
        obj = {**raw, "repo": full, "default_branch": repo.default_branch}
        return SourceItem(f"{full}#{raw['pull']['number']}", merged_at, _raw(raw), obj)

    @staticmethod
    def _item(client: GithubClient, repo: Repository, number: int,
              listed: PullRequest | None) -> SourceItem | ItemFailure:
        full = repo.full_name
        pull = client.call(lambda: repo.get_pull(number), f"GET /repos/{full}/pulls/{{n}}")
        reviews = [received(r) for r in client.each(pull.get_reviews(),
                                                     f"GET /repos/{full}/pulls/{{n}}/reviews")]
        dismissals: list[dict[str, Any]] | None = None
        extra: dict[str, Any] = {}
        if any(r.get("state") == "DISMISSED" for r in reviews):
            # Only the issue's events say when a review was dismissed and what it had been.
            try:
                events = list(client.each(client.issue_events(repo, number),
                                          f"GET /repos/{full}/issues/{{n}}/events"))
            except RetriableError:
                raise
            except FatalError as exc:
                extra["dismissals_unread"] = str(exc)
            else:
                dismissals = [e for e in map(received, events) if e.get("event") == "review_dismissed"]
        raw = evidence_from_rest(received(pull), reviews, dismissals)
        obj = {**raw, **extra, "repo": full, "default_branch": repo.default_branch}
        try:
            merged_at = client.converted(
                lambda: pull.merged_at or (listed.merged_at if listed is not None else None), "pull request")
        except ItemError as exc:
            return ItemFailure(f"{full}#{number}", str(exc))
        if merged_at is None:  # listed as merged: a detail without the time is a broken item
            return ItemFailure(f"{full}#{number}", "github: the pull request has no merged_at")
        return SourceItem(f"{full}#{number}", merged_at.astimezone(UTC), _raw(raw), obj)

    def normalise(self, item: SourceItem) -> Normalised:
        """The merge, judged as of ``merged_at``: reviews submitted or dismissed after it change
        nothing. With ``require_final_approval`` an approval must be of the merged head commit."""
        obj: dict[str, Any] = item.obj
        pull: dict[str, Any] = obj["pull"]
        author = (pull.get("user") or {}).get("login")
        merged_by = (pull.get("merged_by") or {}).get("login")
        base = pull["base"]["ref"]
        head = (pull.get("head") or {}).get("sha")
        states = states_at_merge(obj)
        approvals = _approvals(author, obj["reviews"], states)
        on_head = any(r.get("commit_id") == head for r in approvals.values()) if head else False
        to_default = base == obj["default_branch"]
        data: dict[str, Any] = {
            "repo": obj["repo"],
            "number": pull["number"],
            "title": pull.get("title"),
            "author": author,
            "merged_by": merged_by,
            "merged_at": pull.get("merged_at"),
            "base": base,
            "default_branch": obj["default_branch"],
            "head_sha": head,
            "reviews": [
                {"user": (r.get("user") or {}).get("login"), "state": r.get("state"),
                 "submitted_at": r.get("submitted_at"), "commit_id": r.get("commit_id"), "at_merge": state}
                for r, state in zip(obj["reviews"], states, strict=True)
            ],
            "approvers": sorted(approvals),
            "approved_head_commit": on_head,
        }
        if "dismissals_unread" in obj:
            data["dismissals_unread"] = obj["dismissals_unread"]
        exception = None
        if to_default and not approvals:
            exception = UNREVIEWED
        elif to_default and self.config.require_final_approval and not on_head:
            exception = NOT_FINAL
        return Normalised(kind="code_change", actor=merged_by or author, source_url=pull.get("html_url"),
                          data=data, exception=exception)


class BranchProtection(_GithubStream):
    """Each repository's default-branch protection, read at the run's start."""

    name = "branch_protection"
    kinds = frozenset({"config_state"})
    mode = "state"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        client = self.session()
        for repo in self.repositories(client):
            full, branch_name = repo.full_name, repo.default_branch
            where = f"GET /repos/{full}/branches/{{branch}}"
            branch = client.call(functools.partial(repo.get_branch, branch_name), where)
            rule = client.protection(branch, f"{where}/protection")
            protection = None if rule is None else received(rule)
            state = {"repo": full, "branch": branch_name, "html_url": repo.html_url,
                     "protection": protection}
            yield SourceItem(f"{full}@{branch_name}", cursor.ceiling, _raw(state), state)

    def normalise(self, item: SourceItem) -> Normalised:
        state: dict[str, Any] = item.obj
        rule: dict[str, Any] | None = state["protection"]
        reviews = (rule or {}).get("required_pull_request_reviews")
        # Before the count existed (2018), requiring pull request reviews meant one approval.
        if isinstance(reviews, dict) and "required_approving_review_count" in reviews:
            stated, approvals = True, int(reviews["required_approving_review_count"] or 0)
        else:
            stated, approvals = False, 1 if reviews else 0

        def enabled(key: str) -> bool | None:
            value = (rule or {}).get(key)
            return bool(value.get("enabled")) if isinstance(value, dict) else None

        checks = ((rule or {}).get("required_status_checks") or {}).get("contexts") or []
        exception = None
        if rule is None:
            exception = "default branch is not protected"
        elif not approvals:
            exception = "default branch protection requires no approving review"
        return Normalised(
            kind="config_state",
            actor=None,
            source_url=f"{state['html_url']}/settings/branches",
            data={
                "repo": state["repo"],
                "branch": state["branch"],
                "protected": rule is not None,
                "required_approving_review_count": approvals,
                "review_count_stated": stated,
                "dismiss_stale_reviews": bool(reviews and reviews.get("dismiss_stale_reviews")),
                "require_code_owner_reviews": bool(reviews and reviews.get("require_code_owner_reviews")),
                "enforce_admins": enabled("enforce_admins"),
                "required_status_checks": sorted(str(c) for c in checks),
                "allow_force_pushes": enabled("allow_force_pushes"),
                "allow_deletions": enabled("allow_deletions"),
            },
            exception=exception,
        )


class OrgSettings(_GithubStream):
    """The org's 2FA requirement (one record) and each member with 2FA disabled (one each)."""

    name = "org_settings"
    kinds = frozenset({"mfa_status"})
    mode = "state"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        client = self.session()
        org = client.organization(self.config.org)
        raw = received(org)
        setting = {"org": org.login, "html_url": org.html_url,
                   "two_factor_requirement_enabled": raw.get("two_factor_requirement_enabled")}
        yield SourceItem(org.login, cursor.ceiling, _raw(raw), {"type": "org", **setting})
        members = org.get_members(filter_="2fa_disabled")
        try:
            for member in client.each(members, f"GET /orgs/{org.login}/members?filter=2fa_disabled"):
                user = {"type": "member", "org": org.login, "login": member.login,
                        "html_url": member.html_url}
                yield SourceItem(f"{org.login}/{member.login}", cursor.ceiling, _raw(received(member)), user)
        except FatalError as exc:
            # Only org owners may filter members by 2FA: keep the org record, mark the run partial.
            yield ItemFailure(f"{org.login}/members", str(exc), type(exc).__name__)

    def normalise(self, item: SourceItem) -> Normalised:
        obj: dict[str, Any] = item.obj
        if obj["type"] == "org":
            required = obj["two_factor_requirement_enabled"]
            exception = None
            if required is None:
                exception = "the token cannot read the org's 2FA requirement (it needs an org owner)"
            elif not required:
                exception = "organization does not require two-factor authentication"
            return Normalised(
                kind="mfa_status", actor=None, source_url=obj["html_url"],
                data={"org": obj["org"], "two_factor_requirement_enabled": required},
                exception=exception,
            )
        return Normalised(
            kind="mfa_status", actor=obj["login"], source_url=obj["html_url"],
            data={"org": obj["org"], "login": obj["login"], "two_factor_enabled": False},
            exception="member has two-factor authentication disabled",
        )
