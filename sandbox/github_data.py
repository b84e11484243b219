"""The fake GitHub's data: an organisation with members (role, 2FA, SAML identity), outside
collaborators, repositories, pull requests with their reviews, and branch protection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["GithubOrg", "GithubPull", "GithubRepo", "GithubReview", "Protection"]


@dataclass
class GithubReview:
    """One pull request review; ``submitted_at`` is None for a PENDING review.

    ``commit_id`` is the commit reviewed (None: the pull's head). A dismissed review shows
    ``state`` DISMISSED, and ``dismissal`` holds when it was dismissed and what it had been,
    which the pull's issue events report as ``review_dismissed``.
    """

    id: int
    user: str
    state: str
    submitted_at: datetime | None
    commit_id: str | None = None
    dismissal: tuple[datetime, str] | None = None

    def dismiss(self, at: datetime) -> None:
        """Dismiss this (APPROVED or CHANGES_REQUESTED) review at ``at``."""
        self.dismissal = (at, self.state)
        self.state = "DISMISSED"


@dataclass
class GithubPull:
    """One pull request; ``merged_at`` None and ``closed_at`` set means closed without merging."""

    number: int
    title: str
    author: str
    base: str
    head_sha: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    merged_by: str | None = None
    reviews: list[GithubReview] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``open`` or ``closed``."""
        return "open" if self.closed_at is None else "closed"


@dataclass
class Protection:
    """A branch's protection settings (the subset the collector reads)."""

    required_approvals: int | None = 1
    count_stated: bool = True
    """False: the older API shape, required reviews without ``required_approving_review_count``."""
    dismiss_stale_reviews: bool = True
    require_code_owner_reviews: bool = False
    enforce_admins: bool = True
    status_checks: tuple[str, ...] = ("ci",)
    allow_force_pushes: bool = False
    allow_deletions: bool = False


@dataclass
class GithubRepo:
    """A repository with its pulls and the protection of each protected branch."""

    id: int
    name: str
    default_branch: str = "main"
    private: bool = True
    archived: bool = False
    pulls: list[GithubPull] = field(default_factory=list)
    protection: dict[str, Protection] = field(default_factory=dict)


@dataclass
class GithubOrg:
    """An organisation: its 2FA requirement, members (login -> 2FA enabled), the members who are
    owners (``admins``), outside collaborators (login -> 2FA enabled), the SAML identity email of
    each linked member (``saml_emails``; None: the org has no SAML provider) and repositories.

    ``owner_token`` False answers as GitHub does a token that is not an org owner's: the
    ``2fa_disabled`` filter and the SAML identities are refused.
    """

    login: str
    two_factor_requirement_enabled: bool | None = True
    members: dict[str, bool] = field(default_factory=dict)
    repos: dict[str, GithubRepo] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)
    outside_collaborators: dict[str, bool] = field(default_factory=dict)
    saml_emails: dict[str, str] | None = None
    owner_token: bool = True

    def remove_member(self, login: str) -> None:
        """Remove ``login`` from the org (member or outside collaborator) and unlink its SAML
        identity, as an owner removing someone does; KeyError when it holds no such account."""
        if login not in self.members and login not in self.outside_collaborators:
            raise KeyError(login)
        self.members.pop(login, None)
        self.outside_collaborators.pop(login, None)
        self.admins.discard(login)
        if self.saml_emails is not None:
            self.saml_emails.pop(login, None)

    def add_pull(
        self,
        repo: str,
        *,
        author: str,
        merged_at: datetime | None,
        reviews: Iterable[tuple[str, str]] = (),
        base: str | None = None,
        merged_by: str | None = None,
        updated_at: datetime | None = None,
        title: str | None = None,
    ) -> GithubPull:
        """Append a closed pull request (merged when ``merged_at`` is set) with reviews
        ``(login, state)`` submitted an hour apart before the merge; returns it."""
        target = self.repos[repo]
        reviews = list(reviews)
        number = max((p.number for p in target.pulls), default=0) + 1
        closed = merged_at or updated_at or datetime.now(UTC)
        created = closed - timedelta(hours=len(reviews) + 2)
        submitted = [
            GithubReview(number * 100 + i, login, state, created + timedelta(hours=i + 1))
            for i, (login, state) in enumerate(reviews)
        ]
        pull = GithubPull(
            number=number,
            title=title or f"Change {number} to {repo}",
            author=author,
            base=base or target.default_branch,
            head_sha=f"{number:040x}",
            created_at=created,
            updated_at=updated_at or closed,
            closed_at=closed,
            merged_at=merged_at,
            merged_by=(merged_by or author) if merged_at else None,
            reviews=submitted,
        )
        target.pulls.append(pull)
        return pull
