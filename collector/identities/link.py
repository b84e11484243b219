"""Linking accounts to people: a person is an email; each link says how it was made."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from collector.config import IdentitySettings
from collector.identities.accounts import Account, Reads

__all__ = ["Directory", "Link", "Person", "link_accounts"]

HOW = ("okta", "email", "override", "service_account", "unlinked")
"""How a link was made: the Okta account itself, the source's email, an ``[identities]``
override, a declared service account (never a person), or not at all."""


class Link(NamedTuple):
    """One account and the person it belongs to (None: a service account or unlinked), how the
    link was made, and why it is unlinked when it is."""

    account: Account
    person: str | None
    how: str
    why: str | None = None


@dataclass(slots=True)
class Person:
    """A person (an email) and their linked accounts; ``left_at`` is when Okta deactivated or
    suspended them (None while they have an Okta account that is not departed)."""

    email: str
    links: list[Link] = field(default_factory=list)
    left_at: str | None = None

    def accounts(self, system: str) -> list[Link]:
        """The person's links in ``system``."""
        return [link for link in self.links if link.account.system == system]


@dataclass(frozen=True, slots=True)
class Directory:
    """Everyone the stored reads know of: the people (by email, sorted), the accounts linked to
    nobody (service accounts apart), and the declared service accounts found."""

    people: dict[str, Person]
    unlinked: tuple[Link, ...]
    service: tuple[Link, ...]
    reads: Reads
    has_okta: bool

    def links(self) -> Iterable[Link]:
        """Every link: people's accounts, then unlinked, then service accounts."""
        for person in self.people.values():
            yield from person.links
        yield from self.unlinked
        yield from self.service


def _left_at(okta: list[Account]) -> str | None:
    """A person has left when every Okta account of theirs is departed: the newest status change."""
    if not okta or not all(a.departed for a in okta):
        return None
    changed = [a.status_changed for a in okta if a.status_changed]
    return max(changed) if changed else None


def link_accounts(reads: Reads, identities: IdentitySettings) -> Directory:
    """Link every account of ``reads``.

    Okta accounts define the people (their email, else a login that is an email). A GitHub or
    AWS account is, in this order: a declared service account; linked by an
    ``[identities.overrides]`` entry for its name; linked by the source's own email; else
    unlinked. A link to an email no Okta account has is unlinked too ("matches no person"),
    except when no okta.users read is stored at all: then every email is a person.
    """
    people: dict[str, Person] = {}
    okta_by_person: dict[str, list[Account]] = {}
    unlinked: list[Link] = []
    service: list[Link] = []
    for account in reads.accounts.get("okta", ()):
        if account.email is None:
            unlinked.append(Link(account, None, "unlinked", "the Okta account has no email"))
            continue
        person = people.get(account.email)
        if person is None:
            person = people[account.email] = Person(account.email)
        person.links.append(Link(account, account.email, "okta"))
        okta_by_person.setdefault(account.email, []).append(account)
    has_okta = reads.read_at.get("okta") is not None
    for system in ("github", "aws"):
        overrides = identities.overrides.get(system, {})
        services = {n.removeprefix(f"{system}:") for n in identities.service_accounts
                    if ":" not in n or n.startswith(f"{system}:")}
        for account in reads.accounts.get(system, ()):
            lowered = account.name.lower()
            if lowered in services:
                service.append(Link(account, None, "service_account"))
                continue
            override = overrides.get(lowered)
            email, how = (override, "override") if override else (account.email, "email")
            if email is None:
                source = "SAML identity email" if system == "github" else '"email" tag'
                unlinked.append(Link(account, None, "unlinked",
                                     f"no {source} and no [identities.overrides.{system}] entry"))
            elif email not in people and has_okta:
                unlinked.append(Link(account, None, "unlinked", f"{email} ({how}) matches no Okta user"))
            else:
                person = people.get(email)
                if person is None:
                    person = people[email] = Person(email)
                person.links.append(Link(account, email, how))
    for email, accounts in okta_by_person.items():
        people[email].left_at = _left_at(accounts)
    return Directory(dict(sorted(people.items())), tuple(unlinked), tuple(service), reads, has_okta)
