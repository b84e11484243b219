"""People across systems: accounts linked to people, the derived identity checks, access reviews."""

from collector.identities.accounts import ACCOUNT_STREAMS, Account, Reads, read_accounts
from collector.identities.checks import (
    CHECK_INPUTS,
    OFFBOARDING,
    ORPHANS,
    REVOCATIONS,
    run_identity_checks,
)
from collector.identities.decisions import REVIEW_TYPE, Decision, Revocation, read_decisions, revocations
from collector.identities.link import Directory, Link, Person, link_accounts

__all__ = [
    "ACCOUNT_STREAMS",
    "CHECK_INPUTS",
    "OFFBOARDING",
    "ORPHANS",
    "REVIEW_TYPE",
    "REVOCATIONS",
    "Account",
    "Decision",
    "Directory",
    "Link",
    "Person",
    "Reads",
    "Revocation",
    "link_accounts",
    "read_accounts",
    "read_decisions",
    "revocations",
    "run_identity_checks",
]
