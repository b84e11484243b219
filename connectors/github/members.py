"""`github.members`: one `account` record per org member and outside collaborator per read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from connectors.github.streams import _GithubStream, _raw, received
from connectors.sdk.base import StreamOutput
from connectors.sdk.errors import FatalError
from connectors.sdk.items import Cursor, ItemFailure, Normalised, SourceItem

if TYPE_CHECKING:
    from github.NamedUser import NamedUser
    from github.PaginatedList import PaginatedList

    from connectors.github._client import GithubClient

__all__ = ["COLLABORATOR_2FA_DISABLED", "MEMBER_2FA_DISABLED", "Members", "saml_email"]

MEMBER_2FA_DISABLED = "member has two-factor authentication disabled"
"""The same words as ``github.org_settings`` uses for its per-member record."""
COLLABORATOR_2FA_DISABLED = "outside collaborator has two-factor authentication disabled"


def saml_email(node: dict[str, Any]) -> str | None:
    """The email of a SAML external identity: its first listed email, else a name id that is
    one (IdPs such as Okta send the email as the NameID); None when it has neither."""
    identity = node.get("samlIdentity") or {}
    for entry in identity.get("emails") or []:
        value = (entry or {}).get("value")
        if isinstance(value, str) and "@" in value:
            return value
    name_id = identity.get("nameId")
    return name_id if isinstance(name_id, str) and "@" in name_id else None


class Members(_GithubStream):
    """Everyone who holds access through the org: members with their role (``admin`` for org
    owners, ``member``), outside collaborators, whether each has 2FA (None when the token may
    not read it), and the SAML identity's email (None when the org has no SAML or the account
    is not linked). Observed at the run's start, so each read is a new record.

    Requests per read: the members listing twice (all, and ``role=admin``), outside
    collaborators, both again with ``filter=2fa_disabled`` (org owners only), and one GraphQL
    page per 100 SAML identities. A refused 2FA filter or SAML query leaves the field None on
    every record and is reported as one ``ItemFailure`` (the run is partial), never silently.
    A member with 2FA disabled is an exception.
    """

    name = "members"
    kinds = frozenset({"account"})
    mode = "state"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        client = self.session()
        org = client.organization(self.config.org)
        login = org.login
        admins = {m.login for m in client.each(org.get_members(role="admin"),
                                               f"GET /orgs/{login}/members?role=admin")}
        members = list(client.each(org.get_members(), f"GET /orgs/{login}/members"))
        outside = list(client.each(org.get_outside_collaborators(),
                                   f"GET /orgs/{login}/outside_collaborators"))
        failures: list[ItemFailure] = []
        disabled = self._two_factor_disabled(client, login, org.get_members(filter_="2fa_disabled"),
                                             org.get_outside_collaborators(filter_="2fa_disabled"),
                                             failures)
        identities: dict[str, dict[str, Any]] = {}
        saml: bool | None
        try:
            nodes = client.saml_identities(login)
        except FatalError as exc:
            saml = None
            failures.append(ItemFailure(f"{login}/saml", str(exc), type(exc).__name__))
        else:
            saml = nodes is not None
            for node in nodes or []:
                user = (node.get("user") or {}).get("login")
                if isinstance(user, str):
                    identities[user] = node
        people = [(m, "admin" if m.login in admins else "member") for m in members]
        people += [(m, "outside_collaborator") for m in outside]
        for member, role in people:
            state: dict[str, Any] = {
                "org": login, "user": received(member), "role": role,
                "two_factor_disabled": None if disabled is None else member.login in disabled,
                "saml": saml, "saml_identity": identities.get(member.login),
            }
            yield SourceItem(f"{login}/{member.login}", cursor.ceiling, _raw(state), state)
        yield from failures

    @staticmethod
    def _two_factor_disabled(client: GithubClient, org: str, members: PaginatedList[NamedUser],
                             outside: PaginatedList[NamedUser],
                             failures: list[ItemFailure]) -> set[str] | None:
        """Logins with 2FA disabled, or None when GitHub refuses the filter (not an org owner)."""
        try:
            found = {m.login for m in client.each(members, f"GET /orgs/{org}/members?filter=2fa_disabled")}
            found |= {m.login for m in client.each(
                outside, f"GET /orgs/{org}/outside_collaborators?filter=2fa_disabled")}
        except FatalError as exc:
            failures.append(ItemFailure(f"{org}/members?filter=2fa_disabled", str(exc), type(exc).__name__))
            return None
        return found

    def normalise(self, item: SourceItem) -> Normalised:
        """The account as the agreed ``account`` shape; ``saml_email`` None also when the org has
        SAML and this account is not linked to an identity."""
        state: dict[str, Any] = item.obj
        user: dict[str, Any] = state["user"]
        disabled: bool | None = state["two_factor_disabled"]
        node = state["saml_identity"]
        role = state["role"]
        exception = None
        if disabled:
            exception = COLLABORATOR_2FA_DISABLED if role == "outside_collaborator" else MEMBER_2FA_DISABLED
        return Normalised(
            kind="account",
            actor=user["login"],
            source_url=user.get("html_url"),
            data={
                "org": state["org"],
                "login": user["login"],
                "user_id": user.get("id"),
                "role": role,
                "two_factor_enabled": None if disabled is None else not disabled,
                "saml_email": saml_email(node) if node else None,
                "active": True,
            },
            exception=exception,
        )
