"""A seeded, deterministic GitHub organisation for the fake, with its deliberate control failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random

from sandbox.github_data import GithubOrg, GithubRepo, GithubReview, Protection

__all__ = ["DEPARTED", "OUTSIDE_COLLABORATOR", "SAML_EMAILS", "UNLINKED", "KnownExceptions", "SeededOrg",
           "seed_org"]

SAML_EMAILS = {
    "alice": "ada.lovelace@example.com", "bob": "barbara.liskov@example.com",
    "carol": "grace.hopper@example.com", "dave": "donald.knuth@example.com",
    "erin": "edsger.dijkstra@example.com", "mallory": "margaret.hamilton@example.com",
    "dmr": "dennis.ritchie@example.com",
}
"""Members linked to an identity of the org's SAML provider (the Okta logins of the Okta fake)."""
DEPARTED = "dmr"
"""Dennis Ritchie's login: DEPROVISIONED in the Okta fake long ago, still an org member here."""
UNLINKED = "frank"
"""A member with no SAML identity (the demo links it to frances.allen@example.com by an override)."""
OUTSIDE_COLLABORATOR = "contractor-kim"
"""An outside collaborator: no SAML identity, no email; an orphan unless the config names it."""


@dataclass(frozen=True)
class KnownExceptions:
    """The seeded data set's deliberate control failures, by source key."""

    pr_unreviewed: str
    pr_self_approved: str
    pr_approval_withdrawn: str
    pr_dismissed_before_merge: str
    pr_approved_after_merge: str
    pr_dismissed_after_merge: str
    """Not an exception: judged as of the merge, when the approval stood."""
    pr_approved_earlier_commit: str
    """An exception only with ``require_final_approval``."""
    unprotected_branch: str
    zero_approvals_branch: str
    member_2fa_disabled: str
    org: str


@dataclass(frozen=True)
class SeededOrg:
    """A generated organisation and the exceptions it contains."""

    org: GithubOrg
    known: KnownExceptions


def seed_org(
    seed: int = 7,
    now: datetime | None = None,
    *,
    login: str = "acme",
    days: int = 60,
    every_hours: int = 40,
) -> SeededOrg:
    """An org with four repositories and ``days`` of pull requests before ``now``, the same for
    the same arguments, with the failures named in ``known``; everything else passes."""
    now = (now or datetime(2026, 11, 28, 12, 0, tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)
    rng = Random(seed)  # noqa: S311 - a reproducible data set, not security
    people = ["alice", "bob", "carol", "dave", "erin", "frank"]
    org = GithubOrg(login, two_factor_requirement_enabled=False,
                    members={p: True for p in people} | {"mallory": False})
    # api's protection comes in the older API shape (reviews required, no count: one approval).
    layout = [("api", Protection(count_stated=False)), ("infra", Protection(required_approvals=2)),
              ("web", Protection(required_approvals=0)), ("docs", None)]
    for index, (name, protection) in enumerate(layout):
        repo = GithubRepo(id=1000 + index, name=name)
        if protection is not None:
            repo.protection["main"] = protection
        org.repos[name] = repo
    start = now - timedelta(days=days)
    for name in org.repos:
        when = start + timedelta(minutes=rng.randrange(60 * every_hours))
        while when < now - timedelta(hours=2):
            author = rng.choice(people)
            reviewer = rng.choice([p for p in people if p != author])
            roll = rng.random()
            if roll < 0.08:  # closed without merging
                org.add_pull(name, author=author, merged_at=None, updated_at=when,
                             reviews=[(reviewer, "CHANGES_REQUESTED")])
            elif roll < 0.12:  # merged to a release branch without review: not the default branch
                org.add_pull(name, author=author, merged_at=when, base="release")
            else:
                reviews = [(reviewer, "APPROVED")]
                if rng.random() < 0.3:
                    reviews.insert(0, (reviewer, "COMMENTED"))
                merger = rng.choice([author, reviewer])
                pull = org.add_pull(name, author=author, merged_at=when, reviews=reviews,
                                    merged_by=merger)
                if rng.random() < 0.2:  # a comment after the merge moves updated_at on
                    pull.updated_at = when + timedelta(minutes=rng.randrange(1, 600))
            when += timedelta(minutes=rng.randrange(60, 60 * every_hours))
    api = org.repos["api"]
    middle = now - timedelta(days=days // 2)
    unreviewed = org.add_pull("api", author="dave", merged_at=middle, merged_by="dave",
                              title="Hotfix without review")
    self_approved = org.add_pull("api", author="erin", merged_at=middle + timedelta(hours=3),
                                 reviews=[("erin", "APPROVED")], title="Self-approved change")
    withdrawn = org.add_pull("api", author="frank", merged_at=middle + timedelta(hours=6),
                             reviews=[("alice", "APPROVED"), ("alice", "CHANGES_REQUESTED")],
                             title="Merged after approval was withdrawn")
    # Reviews judged as of the merge: a dismissal or an approval after it changes nothing.
    stale = org.add_pull("api", author="bob", merged_at=middle + timedelta(hours=9), merged_by="bob",
                         reviews=[("carol", "APPROVED")], title="Merged after its approval went stale")
    stale.reviews[0].dismiss(middle + timedelta(hours=8, minutes=30))
    late = org.add_pull("api", author="carol", merged_at=middle + timedelta(hours=12), merged_by="carol",
                        title="Approved only after the merge")
    late.reviews.append(GithubReview(late.number * 100, "dave", "APPROVED", middle + timedelta(hours=14)))
    late.updated_at = middle + timedelta(hours=14)
    kept = org.add_pull("api", author="dave", merged_at=middle + timedelta(hours=15), merged_by="dave",
                        reviews=[("erin", "APPROVED")], title="Approval dismissed after the merge")
    kept.reviews[0].dismiss(middle + timedelta(days=2))
    kept.updated_at = middle + timedelta(days=2)
    earlier = org.add_pull("api", author="erin", merged_at=middle + timedelta(hours=18), merged_by="erin",
                           reviews=[("frank", "APPROVED")], title="Pushed to after its approval")
    earlier.reviews[0].commit_id = f"{earlier.number:039x}e"
    # A repository with open work too: open pulls are never evidence of a merge.
    open_pull = org.add_pull("api", author="bob", merged_at=None, updated_at=now - timedelta(hours=1),
                             title="Work in progress")
    open_pull.closed_at = None
    api.pulls.sort(key=lambda p: p.number)
    # People across systems (no random draw, so the pulls above stay as the seed made them).
    org.members[DEPARTED] = True
    org.admins = {"alice"}
    org.outside_collaborators = {OUTSIDE_COLLABORATOR: True}
    org.saml_emails = dict(SAML_EMAILS)
    known = KnownExceptions(
        pr_unreviewed=f"{login}/api#{unreviewed.number}",
        pr_self_approved=f"{login}/api#{self_approved.number}",
        pr_approval_withdrawn=f"{login}/api#{withdrawn.number}",
        pr_dismissed_before_merge=f"{login}/api#{stale.number}",
        pr_approved_after_merge=f"{login}/api#{late.number}",
        pr_dismissed_after_merge=f"{login}/api#{kept.number}",
        pr_approved_earlier_commit=f"{login}/api#{earlier.number}",
        unprotected_branch=f"{login}/docs@main",
        zero_approvals_branch=f"{login}/web@main",
        member_2fa_disabled=f"{login}/mallory",
        org=login,
    )
    return SeededOrg(org, known)
