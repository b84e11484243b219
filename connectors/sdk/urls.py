"""One rule for every configured vendor URL: http(s) with a host, no credentials, https unless loopback."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

__all__ = ["is_loopback", "url_problems"]


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problems(key: str, url: str, example: str) -> list[tuple[str, str]]:
    """Each (key, problem) of the configured URL ``url``, for a ``ConnectorConfig.problems``.

    Refused: anything but ``http(s)://host``; credentials inside it (``user:secret@``), which
    would be sent in the clear of every log line and stored in every record's ``source_url``;
    a query string or fragment (a token pasted there); ``http://`` to a host that is not
    loopback (the token would cross the network in clear). A URL that may hold a secret is
    never echoed in the problem; ``example`` shows the expected shape.
    """
    try:
        parts: SplitResult = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return [(key, f'is not a valid URL (expected one like "{example}")')]
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return [(key, "must not hold credentials (user:password@): put secrets in the connector's "
                      "*_env variables, never in a URL")]
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        return [(key, "must not hold a query string or fragment (secrets go in *_env variables)")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [(key, f'expected a URL like "{example}", got "{url}"')]
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return [(key, "must be https:// (http:// is allowed only to a loopback host, for a sandbox)")]
    return []
