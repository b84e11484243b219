"""A seeded, deterministic Okta org: users with MFA factors and days of system log events."""

from __future__ import annotations

import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

__all__ = [
    "EXCEPTION_LOGINS",
    "OktaOrg",
    "format_published",
    "make_event",
    "make_factor",
    "make_user",
    "okta_id",
    "seed_org",
]

_ALNUM = string.ascii_letters + string.digits

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret",
          "Dennis", "Radia", "Leslie", "Shafi", "Tim", "Hedy", "John", "Katherine", "Niklaus",
          "Sophie", "Linus", "Anita", "Guido", "Joan", "Bjarne", "Lynn", "Whitfield")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
         "Hamilton", "Ritchie", "Perlman", "Lamport", "Goldwasser", "Berners-Lee", "Lamarr",
         "Backus", "Johnson", "Wirth", "Wilson", "Torvalds", "Borg", "Rossum", "Clarke",
         "Stroustrup", "Conway", "Diffie")
_GROUPS = (("00g1engineering00001", "Engineering"), ("00g1finance000000001", "Finance"),
           ("00g1admins0000000001", "Okta Admins"), ("00g1prodaccess000001", "Production Access"))
_APPS = (("0oa1github0000000001", "GitHub Enterprise"), ("0oa1aws0000000000001", "AWS SSO"),
         ("0oa1jira000000000001", "Jira Cloud"))
_AGENTS = (
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
     "Mac OS X", "SAFARI"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
     "Windows 10", "CHROME"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Linux", "FIREFOX"),
)
_PLACES = (("Berlin", "Germany", "52.5200", "13.4050"), ("Austin", "United States", "30.2672",
           "-97.7431"), ("Dublin", "Ireland", "53.3498", "-6.2603"))

EXCEPTION_LOGINS = ("ken.thompson@example.com", "margaret.hamilton@example.com",
                    "tim.berners-lee@example.com", "hedy.lamarr@example.com",
                    "katherine.johnson@example.com", "niklaus.wirth@example.com")
"""Users who can sign in and the seed leaves without real MFA: the known ``okta.users`` exceptions
(ACTIVE without an ACTIVE factor, LOCKED_OUT and ACTIVE with only a security question,
PASSWORD_EXPIRED and RECOVERY without an ACTIVE factor)."""

# Applied after the random draw, so every other user and event stays as the seed made them.
_LAPSED = {"hedy.lamarr@example.com": "PASSWORD_EXPIRED", "katherine.johnson@example.com": "RECOVERY"}
_QUESTION_ONLY = ("tim.berners-lee@example.com", "niklaus.wirth@example.com")
_QUESTION_TOO = "grace.hopper@example.com"

_DEPROVISIONED = "dennis.ritchie@example.com"
_OTHER_STATUSES = {
    "radia.perlman@example.com": "SUSPENDED",
    "leslie.lamport@example.com": "STAGED",
    "shafi.goldwasser@example.com": "PROVISIONED",
    "tim.berners-lee@example.com": "LOCKED_OUT",
    "hedy.lamarr@example.com": "PASSWORD_EXPIRED",
}


def okta_id(prefix: str, rng: Random) -> str:
    """A 20-character Okta object id with the type's 3-character prefix (``00u`` users)."""
    return prefix + "".join(rng.choice(_ALNUM) for _ in range(20 - len(prefix)))


def format_published(moment: datetime) -> str:
    """Okta's timestamp format: UTC with milliseconds, ``2026-11-28T07:16:25.123Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_user(rng: Random, login: str, first: str, last: str, status: str,
              created: datetime, last_login: datetime | None) -> dict[str, Any]:
    """A user object as ``/api/v1/users`` returns it."""
    user_id = okta_id("00u", rng)
    stamp = format_published(created)
    return {
        "id": user_id,
        "status": status,
        "created": stamp,
        "activated": None if status in ("STAGED", "PROVISIONED") else stamp,
        "statusChanged": stamp,
        "lastLogin": format_published(last_login) if last_login else None,
        "lastUpdated": stamp,
        "passwordChanged": stamp if status not in ("STAGED", "PROVISIONED") else None,
        "type": {"id": "oty1defaultusertype1"},
        "profile": {
            "firstName": first, "lastName": last, "mobilePhone": None, "secondEmail": None,
            "login": login, "email": login,
        },
        "credentials": {
            "password": {}, "emails": [{"value": login, "status": "VERIFIED", "type": "PRIMARY"}],
            "provider": {"type": "OKTA", "name": "OKTA"},
        },
        "_links": {"self": {"href": f"/api/v1/users/{user_id}"}},
    }


def make_factor(rng: Random, factor_type: str, status: str, created: datetime) -> dict[str, Any]:
    """A factor object as ``/api/v1/users/{id}/factors`` returns it (phone numbers included,
    as Okta does, so a test can hold that the connector leaves them out)."""
    prefix, provider, profile = {
        "push": ("opf", "OKTA", {"credentialId": "device", "deviceType": "SmartPhone_IPhone",
                                  "name": "iPhone", "platform": "IOS", "version": "17.5"}),
        "token:software:totp": ("ost", "GOOGLE", {"credentialId": "totp"}),
        "sms": ("sms", "OKTA", {"phoneNumber": f"+1-555-01{rng.randint(10, 99)}"}),
        "webauthn": ("fwf", "FIDO", {"authenticatorName": "YubiKey 5"}),
        "question": ("ufs", "OKTA", {"question": "favorite_art_piece",
                                      "questionText": "What is your favorite piece of art?"}),
    }[factor_type]
    stamp = format_published(created)
    return {
        "id": okta_id(prefix, rng), "factorType": factor_type, "provider": provider,
        "vendorName": provider, "status": status, "created": stamp, "lastUpdated": stamp,
        "profile": profile,
    }


def make_event(
    rng: Random,
    event_type: str,
    published: datetime,
    actor: dict[str, Any],
    targets: list[dict[str, Any]] | None = None,
    *,
    result: str = "SUCCESS",
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """A LogEvent as ``/api/v1/logs`` returns it."""
    agent, os_name, browser = rng.choice(_AGENTS)
    city, country, lat, lon = rng.choice(_PLACES)
    ip = f"198.51.100.{rng.randint(1, 254)}"
    return {
        "actor": {"id": actor["id"], "type": actor.get("type", "User"),
                  "alternateId": actor["alternateId"], "displayName": actor["displayName"],
                  "detailEntry": None},
        "client": {
            "userAgent": {"rawUserAgent": agent, "os": os_name, "browser": browser},
            "zone": "null", "device": "Computer", "id": None, "ipAddress": ip,
            "geographicalContext": {"city": city, "state": None, "country": country,
                                    "postalCode": None,
                                    "geolocation": {"lat": float(lat), "lon": float(lon)}},
        },
        "device": None,
        "authenticationContext": {
            "authenticationProvider": None, "credentialProvider": None,
            "credentialType": None, "issuer": None, "interface": None,
            "authenticationStep": 0,
            "externalSessionId": "".join(rng.choice(_ALNUM) for _ in range(25)),
        },
        "displayMessage": message or event_type,
        "eventType": event_type,
        "outcome": {"result": result, "reason": reason},
        "published": format_published(published),
        "securityContext": {"asNumber": None, "asOrg": None, "isp": None, "domain": None,
                            "isProxy": None},
        "severity": "WARN" if result == "FAILURE" else "INFO",
        "debugContext": {"debugData": {"requestId": "".join(rng.choice(_ALNUM) for _ in range(24)),
                                       "requestUri": "/api/v1/authn", "url": "/api/v1/authn?"}},
        "legacyEventType": None,
        "transaction": {"type": "WEB", "id": "".join(rng.choice(_ALNUM) for _ in range(24)),
                        "detail": {}},
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "version": "0",
        "request": {"ipChain": [{"ip": ip, "geographicalContext": None, "version": "V4",
                                 "source": None}]},
        "target": targets or [],
    }


@dataclass
class OktaOrg:
    """Users (with their factors, keyed by user id) and system log events, oldest first."""

    users: list[dict[str, Any]] = field(default_factory=list)
    factors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


def _question(user: dict[str, Any]) -> dict[str, Any]:
    """An ACTIVE security-question factor for ``user``, its id derived from the user's (no draw)."""
    rng = Random(user["id"])  # noqa: S311 - deterministic fixture data, not security
    created = datetime.fromisoformat(user["created"].replace("Z", "+00:00"))
    factor = make_factor(rng, "question", "ACTIVE", created)
    factor["id"] = "ufs" + user["id"][3:]
    return factor


def _who(user: dict[str, Any]) -> dict[str, Any]:
    profile = user["profile"]
    return {"id": user["id"], "type": "User", "alternateId": profile["login"],
            "displayName": f"{profile['firstName']} {profile['lastName']}"}


def _target(kind: str, ident: str, alternate: str, name: str) -> dict[str, Any]:
    return {"id": ident, "type": kind, "alternateId": alternate, "displayName": name,
            "detailEntry": None}


def seed_org(seed: int = 7, now: datetime | None = None, days: int = 60,
             users: int = 25) -> OktaOrg:
    """An org of ``users`` people and ``days`` days of events ending before ``now``.

    The same ``seed`` and ``now`` always give the same org. Known exceptions: the users in
    ``EXCEPTION_LOGINS`` can sign in without real MFA (no ACTIVE factor, or only a security
    question); one user also has a question beside a real factor (not an exception); one user
    is DEPROVISIONED; several events share a ``published`` millisecond (bulk group assignments).
    """
    rng = Random(seed)  # noqa: S311 - deterministic fixture data, not security
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start = now - timedelta(days=days)
    org = OktaOrg()
    admin: dict[str, Any] | None = None
    for n in range(users):
        first, last = _FIRST[n % len(_FIRST)], _LAST[n % len(_LAST)]
        suffix = str(n // len(_FIRST)) if n >= len(_FIRST) else ""  # logins stay unique past 26
        login = f"{first}.{last}{suffix}".lower() + "@example.com"
        status = "DEPROVISIONED" if login == _DEPROVISIONED else _OTHER_STATUSES.get(login, "ACTIVE")
        created = start - timedelta(days=rng.randint(30, 400))
        last_login = now - timedelta(hours=rng.randint(1, 300)) if status == "ACTIVE" else None
        user = make_user(rng, login, first, last, status, created, last_login)
        org.users.append(user)
        if login in EXCEPTION_LOGINS:
            # One has nothing enrolled; the other started enrolling and never finished.
            org.factors[user["id"]] = (
                [make_factor(rng, "sms", "PENDING_ACTIVATION", created)] if n % 2 else []
            )
        elif status in ("STAGED", "PROVISIONED"):
            org.factors[user["id"]] = []
        else:
            kinds = rng.sample(["push", "token:software:totp", "sms", "webauthn"], rng.randint(1, 2))
            org.factors[user["id"]] = [make_factor(rng, k, "ACTIVE", created) for k in kinds]
        if admin is None:
            admin = user
    assert admin is not None
    for user in org.users:
        login = user["profile"]["login"]
        if login in _LAPSED:
            user["status"] = _LAPSED[login]
            org.factors[user["id"]] = []
        if login in _QUESTION_ONLY:
            org.factors[user["id"]] = [_question(user)]
        elif login == _QUESTION_TOO:
            org.factors[user["id"]].append(_question(user))
    admin_actor = _who(admin)
    people = [u for u in org.users
              if u["status"] in ("ACTIVE", "LOCKED_OUT", "PASSWORD_EXPIRED", "RECOVERY")]
    for day in range(days):
        base = start + timedelta(days=day)
        for _ in range(rng.randint(18, 30)):
            user = rng.choice(people)
            at = base + timedelta(milliseconds=rng.randint(0, 86_399_999))
            who = _who(user)
            if rng.random() < 0.12:
                org.events.append(make_event(rng, "user.session.start", at, who,
                                             result="FAILURE", reason="INVALID_CREDENTIALS",
                                             message="User login to Okta"))
                continue
            org.events.append(make_event(rng, "user.session.start", at, who,
                                         message="User login to Okta"))
            org.events.append(make_event(rng, "user.authentication.auth_via_mfa",
                                         at + timedelta(milliseconds=rng.randint(900, 9000)), who,
                                         message="Authentication of user via MFA"))
        if day % 3 == 0:  # noise a collector must not store
            at = base + timedelta(hours=rng.randint(0, 23))
            org.events.append(make_event(rng, "policy.evaluate_sign_on", at, _who(rng.choice(people)),
                                         message="Evaluation of sign-on policy"))
        if day % 7 == 2:
            subject = rng.choice(org.users)
            user_target = _target("User", subject["id"], subject["profile"]["login"],
                                  _who(subject)["displayName"])
            at = base + timedelta(hours=10, milliseconds=rng.randint(0, 3_600_000))
            for offset, event_type in enumerate(("user.lifecycle.create", "user.lifecycle.activate")):
                org.events.append(make_event(rng, event_type, at + timedelta(seconds=offset), admin_actor,
                                             [user_target], message=event_type))
            # A bulk assignment: every membership event shares one millisecond.
            bulk = at + timedelta(minutes=5)
            for group_id, group_name in _GROUPS[: rng.randint(2, 4)]:
                org.events.append(make_event(
                    rng, "group.user_membership.add", bulk, admin_actor,
                    [user_target, _target("UserGroup", group_id, group_name, group_name)],
                    message="Add user to group membership"))
            app_id, app_name = rng.choice(_APPS)
            org.events.append(make_event(
                rng, "application.user_membership.add", bulk + timedelta(seconds=2), admin_actor,
                [user_target, _target("AppInstance", app_id, app_name, app_name)],
                message="Add user to application membership"))
        if day % 11 == 5:
            subject = rng.choice(org.users)
            user_target = _target("User", subject["id"], subject["profile"]["login"],
                                  _who(subject)["displayName"])
            at = base + timedelta(hours=15, milliseconds=rng.randint(0, 3_600_000))
            event_type = rng.choice(("user.lifecycle.suspend", "user.lifecycle.deactivate"))
            org.events.append(make_event(rng, event_type, at, admin_actor, [user_target],
                                         message=event_type))
            group_id, group_name = rng.choice(_GROUPS)
            org.events.append(make_event(
                rng, "group.user_membership.remove", at + timedelta(seconds=1), admin_actor,
                [user_target, _target("UserGroup", group_id, group_name, group_name)],
                message="Remove user from group membership"))
    org.events = [e for e in org.events if e["published"] < format_published(now)]
    org.events.sort(key=lambda e: e["published"])
    return org
