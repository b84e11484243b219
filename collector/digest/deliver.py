"""Delivers a written digest: a summary to a Slack incoming webhook, the HTML by e-mail (STARTTLS).

Each attempt is logged in the store (``digest_deliveries``) so that a failure is reported in
the next digest. Delivery runs only after the files are written, and never removes them.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

import httpx
import structlog

from collector.config import DigestSettings, Settings
from collector.errors import CollectorError, ConfigError
from collector.records import format_ts
from storage import Store
from storage.digest_queries import record_delivery

__all__ = [
    "Delivery",
    "DeliveryError",
    "check_delivery_config",
    "deliver",
    "email_message",
    "post_slack",
    "send_email",
    "slack_payload",
]

log = structlog.get_logger("collector.digest")

SLACK_TIMEOUT = 15.0
SMTP_TIMEOUT = 30.0


class DeliveryError(CollectorError):
    """One delivery channel failed; the message is safe to log and store (no URL, no secret).

    Exit 1: the digest is written; a later run (or the next week's digest) delivers again.
    """

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one channel's delivery attempt."""

    channel: str
    ok: bool
    error: str | None = None


def check_delivery_config(settings: Settings) -> None:
    """Delivery keys that only make sense together; ConfigError naming the key, before any work."""
    d, file = settings.digest, str(settings.path)
    if d.smtp_host:
        if not d.mail_from:
            raise ConfigError(file, "digest.mail_from", "required when digest.smtp_host is set")
        if not d.mail_to:
            raise ConfigError(file, "digest.mail_to", "required when digest.smtp_host is set")
        if not 0 < d.smtp_port < 65536:
            raise ConfigError(file, "digest.smtp_port", f"expected a TCP port, got {d.smtp_port}")
        if d.smtp_user and not d.smtp_starttls:
            raise ConfigError(file, "digest.smtp_starttls",
                              "must be true when digest.smtp_user is set (no password in clear text)")
        if d.smtp_user and not d.smtp_password_env:
            raise ConfigError(file, "digest.smtp_password_env",
                              "required when digest.smtp_user is set (names the variable holding it)")
        for key, values in (("digest.mail_from", [d.mail_from]), ("digest.mail_to", list(d.mail_to)),
                            ("digest.smtp_host", [d.smtp_host])):
            for value in values:
                if any(c in value for c in "\r\n\0") or value != value.strip():
                    raise ConfigError(file, key, "must not hold line breaks or surrounding spaces")
                if key != "digest.smtp_host" and "@" not in value:
                    raise ConfigError(file, key, f"{value!r} is not an e-mail address")
        if d.smtp_ca_file and not settings.resolve(d.smtp_ca_file).is_file():
            raise ConfigError(file, "digest.smtp_ca_file",
                              f"{settings.resolve(d.smtp_ca_file)} is not a readable file")


def _headline(digest: dict[str, Any]) -> str:
    cov = digest["coverage"]
    lines = len(digest["exceptions"])
    records = sum(e["occurrences"] for e in digest["exceptions"])
    return (f"Evidence coverage digest {digest['week']}: operating {cov['operating']} of "
            f"{cov['in_scope']} criteria ({cov['ratio'] * 100:.1f}%), designed {cov['designed']} of "
            f"{cov['in_scope']}, {lines} exception lines ({records} records)")


def slack_payload(digest: dict[str, Any], html_name: str) -> dict[str, Any]:
    """The Slack message: the headline, the design and operating gaps, who must act, what else
    needs attention, and where the full digest is."""
    in_scope = [c for c in digest["criteria"] if c["in_scope"]]
    design = [c["id"] for c in in_scope if not c["controls"]]
    operating = [f"{c['id']} ({c['status'].replace('_', ' ')})" for c in in_scope
                 if c["controls"] and not c["operating"]]
    acting = [f"{o['owner']} ({len(o['actions'])})" for o in digest["owners"] if o["actions"]]
    troubled = [f"{s['id']} ({s['status']})" for s in digest["streams"] if s["status"] != "ok"]
    changes = digest["changes"]
    parts = [f"*{_headline(digest)}*"]
    parts.append(f"Design gaps (no control): {', '.join(design)}" if design
                 else "Every criterion in scope has a control.")
    parts.append(f"Operating gaps: {', '.join(operating)}" if operating
                 else "Every criterion in scope has an operating control.")
    if acting:
        parts.append(f"Controls to act on, by owner: {', '.join(acting)}")
    if troubled:
        parts.append(f"Streams needing attention: {', '.join(troubled)}")
    parts.append(f"Since {changes['previous_week']}: {len(changes['new_exceptions'])} new, "
                 f"{len(changes['resolved_exceptions'])} resolved exceptions; operating "
                 f"{changes['coverage']['operating_delta']:+d} criteria")
    if digest.get("delivery_failures"):
        parts.append(f"{len(digest['delivery_failures'])} earlier digest deliveries failed")
    parts.append(f"Full digest: {html_name}")
    return {"text": "\n".join(parts)}


def post_slack(url: str, payload: dict[str, Any], timeout: float = SLACK_TIMEOUT) -> None:
    """POST ``payload`` to an incoming webhook; DeliveryError (without the URL) on failure."""
    try:
        response = httpx.post(url.strip(), json=payload, timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise DeliveryError(f"slack webhook unreachable: {type(exc).__name__}") from None
    if response.status_code // 100 != 2:
        # The webhook URL is the secret, its path included; a gateway may echo either.
        detail = _without_secret(response.text[:200], url)
        raise DeliveryError(f"slack webhook answered HTTP {response.status_code}: {detail}")


def _without_secret(text: str, url: str) -> str:
    """``text`` with every secret-bearing part of the webhook URL masked: the URL itself, its
    user info, its path and every path segment of 8+ characters, its query string, each query
    parameter and each value of 4+ characters, and its fragment; each as written and decoded
    (a gateway may echo either)."""
    raw = url.strip()
    parts = urlsplit(raw)
    secrets = {raw, parts.netloc.rpartition("@")[0] if "@" in parts.netloc else "", parts.path,
               parts.query, parts.fragment}
    secrets.update(p for p in parts.path.split("/") if len(p) >= 8)
    for pair in filter(None, parts.query.split("&")):
        secrets.add(pair)
        value = pair.partition("=")[2]
        if len(value) >= 4:
            secrets.add(value)
    secrets.update({unquote_plus(s) for s in secrets} | {unquote(s) for s in secrets})
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "<webhook>")
    return text


def email_message(settings: DigestSettings, digest: dict[str, Any], text: str, html: str,
                  json_bytes: bytes) -> EmailMessage:
    """The e-mail: Markdown text, the HTML as the rich alternative, and the JSON attached."""
    msg = EmailMessage()
    msg["Subject"] = _headline(digest)
    msg["From"] = settings.mail_from
    msg["To"] = ", ".join(settings.mail_to)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(json_bytes, maintype="application", subtype="json",
                       filename=f"digest-{digest['week']}.json")
    return msg


def send_email(settings: DigestSettings, password: str | None, msg: EmailMessage,
               timeout: float = SMTP_TIMEOUT, ca_file: Path | None = None) -> None:
    """Send ``msg`` over SMTP, upgrading with STARTTLS (certificate verified) before any AUTH."""
    where = f"smtp {settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                context = ssl.create_default_context(cafile=ca_file)
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, password or "")
            smtp.send_message(msg)
    except smtplib.SMTPException as exc:
        raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from None
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from None


def _attempt(channel: str, action: Any) -> Delivery:
    """One channel's delivery; any failure is that channel's failure, never the others'."""
    try:
        action()
    except DeliveryError as exc:
        return Delivery(channel, False, str(exc))
    except Exception as exc:  # a malformed header, host or password: named, without its value
        return Delivery(channel, False, f"{channel}: {type(exc).__name__}")
    return Delivery(channel, True)


def deliver(settings: Settings, store: Store, digest: dict[str, Any], paths: Mapping[str, Path],
            now: datetime, env: Mapping[str, str]) -> list[Delivery]:
    """Deliver to every configured channel; log each attempt in the store and return outcomes."""
    d = settings.digest
    results: list[Delivery] = []
    if d.slack_webhook_env:
        def slack() -> None:
            url = env.get(d.slack_webhook_env, "")
            if not url:
                raise DeliveryError(f"environment variable ${d.slack_webhook_env} is not set")
            post_slack(url, slack_payload(digest, paths["html"].name))
        results.append(_attempt("slack", slack))
    if d.smtp_host:
        def email() -> None:
            password = None
            if d.smtp_user:
                password = env.get(d.smtp_password_env, "")
                if not password:
                    raise DeliveryError(f"environment variable ${d.smtp_password_env} is not set")
            msg = email_message(d, digest, paths["md"].read_text("utf-8"),
                                paths["html"].read_text("utf-8"), paths["json"].read_bytes())
            send_email(d, password, msg,
                       ca_file=settings.resolve(d.smtp_ca_file) if d.smtp_ca_file else None)
        results.append(_attempt("email", email))
    at = format_ts(now)
    for result in results:
        if result.ok:
            log.info("digest_delivered", week=digest["week"], channel=result.channel)
        else:
            log.warning("digest_delivery_failed", week=digest["week"], channel=result.channel,
                        error=result.error)
        try:
            record_delivery(store.engine, digest["week"], result.channel, at,
                            "ok" if result.ok else "failed", result.error)
        except Exception as exc:  # the files are written; a store hiccup must not hide the outcome
            log.error("digest_delivery_not_recorded", channel=result.channel,
                      error_class=type(exc).__name__)
    return results
