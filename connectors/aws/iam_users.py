"""`aws.iam_users`: one `account` record per IAM user per read, with its groups, policies and credentials."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from connectors.aws._access import AwsAccess, Target, as_connector_error, error_code
from connectors.aws._raw import BodyCapture, iso, reserialised, xml_elements
from connectors.aws.config import AwsConfig
from connectors.aws.parts import run_parts
from connectors.sdk.base import Stream, StreamOutput
from connectors.sdk.errors import PaginationError
from connectors.sdk.items import Cursor, Normalised, Skipped, SourceItem

__all__ = ["GONE", "IamUser", "IamUsersStream", "email_tag"]

GONE = "IAM user deleted while it was being read"
"""The ``Skipped`` reason for a listed user whose details answer NoSuchEntity: it is gone, and
the next read has no record of it."""

_PAGED = {
    "ListUsers": ("list_users", "Users"),
    "ListGroupsForUser": ("list_groups_for_user", "Groups"),
    "ListAttachedUserPolicies": ("list_attached_user_policies", "AttachedPolicies"),
    "ListUserPolicies": ("list_user_policies", "PolicyNames"),
    "ListAccessKeys": ("list_access_keys", "AccessKeyMetadata"),
    "ListUserTags": ("list_user_tags", "Tags"),
}
"""operation -> (client method, result list key); each pages by Marker / IsTruncated."""
_PAGE_LIMIT = 10_000


class _Gone(Exception):
    """The user answered NoSuchEntity: deleted between the listing and its details."""


@dataclass(frozen=True, slots=True)
class IamUser:
    """One IAM user as read: the ListUsers entry and each detail call's parsed result."""

    user: dict[str, Any]
    groups: list[str]
    attached_policies: list[str]
    inline_policies: list[str]
    login_profile: dict[str, Any] | None
    access_keys: list[dict[str, Any]]
    """Each key's metadata, with ``LastUsedDate`` from GetAccessKeyLastUsed (active keys only)."""
    tags: dict[str, str]


def email_tag(tags: dict[str, str]) -> str | None:
    """The value of the user's ``email`` tag (key compared without case), or None."""
    for key, value in sorted(tags.items()):
        if key.lower() == "email" and value.strip():
            return value.strip()
    return None


class _Reader:
    """The IAM calls of one account, each answer's exact ``<…Result>`` bytes kept for the raw record."""

    def __init__(self, iam: Any, where: str) -> None:
        self.iam = iam
        self.where = where
        self.capture = BodyCapture()

    def call(self, operation: str, method: str, **params: Any) -> tuple[dict[str, Any], bytes]:
        """One request: its parsed answer and the bytes of its result element (ResponseMetadata,
        which differs per request, left out; re-serialised when no body was captured)."""
        self.capture.attach(self.iam, "iam", operation)
        try:
            page: dict[str, Any] = getattr(self.iam, method)(**params)
        except Exception as exc:
            if error_code(exc) == "NoSuchEntity" and operation != "ListUsers":
                raise _Gone(operation) from exc
            raise as_connector_error(exc, f"iam:{operation} in {self.where}") from exc
        body = self.capture.take()
        spans = xml_elements(body, f"{operation}Result") if body is not None else []
        result = {k: v for k, v in page.items() if k != "ResponseMetadata"}
        return page, spans[0] if len(spans) == 1 else reserialised(result)

    def pages(self, operation: str, **params: Any) -> Iterator[tuple[list[Any], bytes]]:
        """Each page's items and its result bytes."""
        method, key = _PAGED[operation]
        marker: str | None = None
        seen: set[str] = set()
        for _ in range(_PAGE_LIMIT):
            page, raw = self.call(operation, method, **params, **({"Marker": marker} if marker else {}))
            yield list(page.get(key) or []), raw
            marker = page.get("Marker") if page.get("IsTruncated") else None
            if not marker:
                return
            if marker in seen:
                raise PaginationError(f"aws: iam:{operation} returned a marker twice in {self.where}")
            seen.add(marker)
        raise PaginationError(f"aws: iam:{operation} did not end within {_PAGE_LIMIT} pages in {self.where}")

    def listing(self, operation: str, **params: Any) -> tuple[list[Any], list[str]]:
        """Every item of a paged listing, with each page's result bytes (as text)."""
        items: list[Any] = []
        raws: list[str] = []
        for page, raw in self.pages(operation, **params):
            items.extend(page)
            raws.append(raw.decode("utf-8", "replace"))
        return items, raws


class IamUsersStream(Stream[AwsConfig, AwsAccess]):
    """Every IAM user of each account (``assume_role_arns``, else the collector's own), read at
    the run's start: groups, attached and inline policies, console access (a login profile),
    password last used, active access keys with their last use, and tags (``email`` links the
    user to a person). No exception here: the identity checks judge the accounts.

    Requests per user: ListGroupsForUser, ListAttachedUserPolicies, ListUserPolicies,
    GetLoginProfile (NoSuchEntity: no console password), ListAccessKeys, one
    GetAccessKeyLastUsed per active key, and ListUserTags; plus ListUsers, 100 users a page.
    The raw record is each answer's ``<…Result>`` element as received, in one JSON object.
    """

    name = "iam_users"
    kinds = frozenset({"account"})
    mode = "state"

    def fetch(self, cursor: Cursor) -> Iterator[StreamOutput]:
        def part(target: Target, region: str) -> Iterator[StreamOutput]:
            reader = _Reader(self.session().client(target, "iam", region, self.name), target.part())
            for users, result in reader.pages("ListUsers"):
                spans = xml_elements(result, "member")
                if len(spans) != len(users):  # a nested list, or no body: fall back per user
                    spans = [reserialised(user) for user in users]
                for user, span in zip(users, spans, strict=True):
                    try:
                        yield self._user(reader, user, span, cursor)
                    except _Gone:
                        yield Skipped(GONE)

        yield from run_parts(self.session().parts(regional=False), part)

    @staticmethod
    def _user(reader: _Reader, user: dict[str, Any], listed: bytes, cursor: Cursor) -> SourceItem:
        name = user["UserName"]
        raw: dict[str, Any] = {"ListUsers": listed.decode("utf-8", "replace")}
        groups, raw["ListGroupsForUser"] = reader.listing("ListGroupsForUser", UserName=name)
        attached, raw["ListAttachedUserPolicies"] = reader.listing("ListAttachedUserPolicies", UserName=name)
        inline, raw["ListUserPolicies"] = reader.listing("ListUserPolicies", UserName=name)
        try:
            answer, profile_raw = reader.call("GetLoginProfile", "get_login_profile", UserName=name)
        except _Gone as gone:
            if str(gone) != "GetLoginProfile":
                raise
            profile, raw["GetLoginProfile"] = None, None
        else:
            profile, raw["GetLoginProfile"] = answer.get("LoginProfile") or {}, profile_raw.decode()
        keys, raw["ListAccessKeys"] = reader.listing("ListAccessKeys", UserName=name)
        used: dict[str, str] = {}
        for key in keys:
            if key.get("Status") == "Active":
                answer, key_raw = reader.call("GetAccessKeyLastUsed", "get_access_key_last_used",
                                              AccessKeyId=key["AccessKeyId"])
                key["LastUsedDate"] = (answer.get("AccessKeyLastUsed") or {}).get("LastUsedDate")
                used[key["AccessKeyId"]] = key_raw.decode("utf-8", "replace")
        raw["GetAccessKeyLastUsed"] = used
        tags, raw["ListUserTags"] = reader.listing("ListUserTags", UserName=name)
        obj = IamUser(
            user=user,
            groups=[g["GroupName"] for g in groups],
            attached_policies=[p["PolicyArn"] for p in attached],
            inline_policies=list(inline),
            login_profile=profile,
            access_keys=keys,
            tags={t["Key"]: t["Value"] for t in tags},
        )
        return SourceItem(user["Arn"], cursor.ceiling, orjson.dumps(raw, option=orjson.OPT_SORT_KEYS), obj)

    def normalise(self, item: SourceItem) -> Normalised:
        """The account in the agreed ``account`` shape; ``active`` when it has console access or an
        active access key (an IAM user with neither cannot sign in or call AWS)."""
        read: IamUser = item.obj
        user = read.user
        arn = str(user["Arn"])
        console = read.login_profile is not None
        keys = sorted(
            ({"id": k["AccessKeyId"], "created": iso(k.get("CreateDate")),
              "last_used": iso(k.get("LastUsedDate"))}
             for k in read.access_keys if k.get("Status") == "Active"),
            key=lambda k: str(k["id"]))
        return Normalised(
            kind="account",
            actor=user["UserName"],
            source_url=f"https://console.aws.amazon.com/iam/home#/users/details/{user['UserName']}",
            data={
                "account_id": arn.split(":")[4] if arn.count(":") >= 5 else None,
                "user_name": user["UserName"],
                "user_id": user.get("UserId"),
                "arn": arn,
                "created": iso(user.get("CreateDate")),
                "groups": sorted(read.groups),
                "attached_policies": sorted(read.attached_policies),
                "inline_policies": sorted(read.inline_policies),
                "console_access": console,
                "password_last_used": iso(user.get("PasswordLastUsed")),
                "active_keys": keys,
                "tags": dict(sorted(read.tags.items())),
                "email": email_tag(read.tags),
                "active": console or bool(keys),
            },
            exception=None,
        )
