"""A fake Jira Cloud REST API (v2/v3) on loopback: serverInfo, field, myself, /search/jql with
``nextPageToken``/``isLast`` and changelog expansion, the paginated issue changelog, and 410 on
the removed legacy ``/search``; Basic auth (email + API token) and Jira's 429 headers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox._http import FakeServer, Request, Response, Status
from sandbox._jira_data import Issue, JiraData, history_json, jira_time, seed
from sandbox._jql import JqlError, compile_jql

__all__ = ["DEFAULT_EMAIL", "DEFAULT_TOKEN", "FakeJira", "JiraData"]

DEFAULT_EMAIL = "collector-bot@example.com"
DEFAULT_TOKEN = "ATATT3xFfGF0-fake-jira-token"  # noqa: S105 - a sandbox credential
_API = r"/rest/api/(?:2|3)"
_FIELDS = (
    ("summary", "Summary", ["summary"]), ("issuetype", "Issue Type", ["issuetype", "type"]),
    ("project", "Project", ["project"]), ("status", "Status", ["status"]),
    ("resolution", "Resolution", ["resolution"]),
    ("resolutiondate", "Resolved", ["resolutiondate", "resolved"]),
    ("reporter", "Reporter", ["reporter"]), ("assignee", "Assignee", ["assignee"]),
    ("priority", "Priority", ["priority"]), ("created", "Created", ["created", "createdDate"]),
    ("updated", "Updated", ["updated", "updatedDate"]),
)
_LEGACY_GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)


def _sort_key(name: str) -> Callable[[Issue], tuple[bool, Any]]:
    """Sort by field ``name``, empty values last (as Jira does in ascending order)."""
    def key(issue: Issue) -> tuple[bool, Any]:
        value = issue.jql_value(name)
        return (value is None, value if value is not None else "")
    return key


def _error(status: int, *messages: str) -> Response:
    return Response(status, {"errorMessages": list(messages), "errors": {}})


class FakeJira(FakeServer):
    """Jira Cloud for one API user: ``email``/``token`` over Basic auth, dates in ``time_zone``.

    ``data`` holds the issues (mutable between runs); ``changelog_embed_limit`` is how many
    histories a search embeds per issue (Cloud embeds a bounded number; the rest come from
    ``/issue/{key}/changelog``); ``max_results`` caps a search page; ``deployment_type``
    "Server" imitates Jira Data Center, which has no ``/search/jql``.
    """

    def __init__(self, data: JiraData | None = None, *, email: str = DEFAULT_EMAIL,
                 token: str = DEFAULT_TOKEN, time_zone: str = "UTC",
                 changelog_embed_limit: int = 100, max_results: int = 100,
                 deployment_type: str = "Cloud") -> None:
        super().__init__()
        self.data = data or JiraData()
        self.email = email
        self.token = token
        self.time_zone = time_zone
        self.zone = ZoneInfo(time_zone)
        self.changelog_embed_limit = changelog_embed_limit
        self.max_results = max_results
        self.deployment_type = deployment_type
        self.cases: dict[str, str] = {}
        self.route("GET", rf"{_API}/serverInfo$", self._guard(self._server_info))
        self.route("GET", rf"{_API}/field$", self._guard(self._fields))
        self.route("GET", rf"{_API}/myself$", self._guard(self._myself))
        self.route("GET", rf"{_API}/search/jql$", self._guard(self._search))
        self.route("POST", rf"{_API}/search/jql$", self._guard(self._search))
        self.route("GET", rf"{_API}/search$", self._guard(self._legacy_search))
        self.route("POST", rf"{_API}/search$", self._guard(self._legacy_search))
        self.route("GET", rf"{_API}/issue/(?P<key>[^/]+)/changelog$", self._guard(self._changelog))
        self.route("GET", rf"{_API}/issue/(?P<key>[^/]+)$", self._guard(self._issue))

    @classmethod
    def seeded(cls, *, seed_value: int = 7, now: datetime | None = None, days: int = 60,
               changes: int = 40, incidents: int = 12, **kwargs: Any) -> FakeJira:
        """A fake holding ``days`` of change tickets and incidents ending just before ``now``;
        ``cases`` names the known exceptions (see ``sandbox._jira_data.seed``)."""
        fake = cls(**kwargs)
        fake.cases = seed(fake.data, seed=seed_value, now=now or datetime.now(UTC), days=days,
                          changes=changes, incidents=incidents)
        return fake

    # -- faults with Jira's own headers -------------------------------------------------

    def rate_limit(self, times: int = 1, retry_after: int = 1, path_prefix: str | None = None) -> None:
        """Answer the next ``times`` requests with Jira Cloud's 429 and its headers."""
        reset = (datetime.now(UTC) + timedelta(seconds=retry_after)).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = [("Retry-After", str(retry_after)), ("X-RateLimit-Limit", "350"),
                   ("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", reset),
                   ("X-RateLimit-NearLimit", "true"), ("RateLimit-Reason", "jira-burst-based")]
        self.faults.push(Status(429, headers, {"errorMessages": ["Rate limit exceeded."]}),
                         times=times, path_prefix=path_prefix)

    def searches(self) -> int:
        """How many enhanced-search requests (``/search/jql``) the server received."""
        return sum(1 for r in self.requests if r.path.endswith("/search/jql"))

    # -- routes ------------------------------------------------------------------------

    def _guard(self, handler: Any) -> Any:
        def guarded(request: Request) -> Response:
            if not self._authorised(request.headers.get("authorization", "")):
                return Response(401, b"Client must be authenticated to access this resource.",
                                [("Content-Type", "text/plain;charset=UTF-8"),
                                 ("WWW-Authenticate", 'Basic realm="protected-area"')])
            result: Response = handler(request)
            return result
        return guarded

    def _authorised(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.email}:{self.token}"

    def _server_info(self, request: Request) -> Response:
        return Response(200, {
            "baseUrl": request.base_url, "displayUrl": request.base_url, "version": "1001.0.0-SNAPSHOT",
            "versionNumbers": [1001, 0, 0], "deploymentType": self.deployment_type, "buildNumber": 100280,
            "buildDate": "2026-01-01T00:00:00.000+0000",
            "serverTime": jira_time(datetime.now(UTC), self.zone), "scmInfo": "fake",
            "serverTitle": "Fake Jira",
        })

    def _fields(self, request: Request) -> Response:
        return Response(200, [
            {"id": fid, "key": fid, "name": name, "custom": False, "orderable": True,
             "navigable": True, "searchable": True, "clauseNames": clauses}
            for fid, name, clauses in _FIELDS
        ])

    def _myself(self, request: Request) -> Response:
        user = self.data.user(self.email)
        return Response(200, {**user.json(), "timeZone": self.time_zone, "locale": "en_US"})

    def _legacy_search(self, request: Request) -> Response:
        return _error(410, _LEGACY_GONE)

    def _search(self, request: Request) -> Response:
        params = self._search_params(request)
        jql = str(params.get("jql") or "")

        def known(field: str, value: str) -> None:
            projects = {"CHG", "INC"} | {i.project for i in self.data.snapshot()}
            if field == "project" and value.upper() not in projects:
                raise JqlError(f"The value '{value}' does not exist for the field 'project'.")

        try:
            query = compile_jql(jql, self.zone, datetime.now(UTC), known)
        except JqlError as exc:
            return _error(400, str(exc))
        try:
            max_results = max(1, min(self.max_results, int(params.get("maxResults") or 50)))
        except (TypeError, ValueError):
            return _error(400, "maxResults must be an integer.")
        digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
        offset = 0
        token = params.get("nextPageToken")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
                if decoded["q"] != digest:
                    raise ValueError("token from another query")
                offset = int(decoded["o"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                return _error(400, "The provided next page token is invalid or expired.")
        fields = self._field_set(params.get("fields"))
        expand = {e.strip() for e in str(params.get("expand") or "").split(",") if e.strip()}
        with self.data.lock:
            matched = [i for i in self.data.snapshot() if query.matches(i.jql_value)]
            for name, desc in reversed(query.order):
                matched.sort(key=_sort_key(name), reverse=desc)
            if not query.order:
                matched.sort(key=lambda i: i.created, reverse=True)
            page = matched[offset: offset + max_results]
            limit = self.changelog_embed_limit if "changelog" in expand else None
            issues = [self.data.issue_json(i, request.base_url, self.zone, fields, limit) for i in page]
        body: dict[str, Any] = {"issues": issues, "isLast": offset + len(page) >= len(matched)}
        if not body["isLast"]:
            body["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps({"o": offset + len(page), "q": digest}).encode()).decode()
        return Response(200, body)

    @staticmethod
    def _search_params(request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = request.json
            return body if isinstance(body, dict) else {}
        out: dict[str, Any] = {k: v[0] for k, v in request.query.items()}
        if "fields" in request.query:
            out["fields"] = request.query["fields"]
        return out

    @staticmethod
    def _field_set(raw: Any) -> set[str] | None:
        """None for all fields; Cloud's /search/jql returns only ``id`` when none are named."""
        if raw is None:
            return set()
        names = raw if isinstance(raw, list) else [raw]
        wanted = {n.strip() for name in names for n in str(name).split(",") if n.strip()}
        if wanted & {"*all", "*navigable"}:
            return None
        return wanted

    def _changelog(self, request: Request) -> Response:
        key = request.params["key"]
        with self.data.lock:
            issue = self.data.issues.get(key)
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            try:
                start = max(0, int(request.arg("startAt") or 0))
                size = max(1, min(100, int(request.arg("maxResults") or 100)))
            except ValueError:
                return _error(400, "startAt and maxResults must be integers.")
            values = [history_json(h, self.zone) for h in issue.histories[start: start + size]]
            total = len(issue.histories)
        body: dict[str, Any] = {
            "self": f"{request.base_url}{request.path}?maxResults={size}&startAt={start}",
            "maxResults": size, "startAt": start, "total": total,
            "isLast": start + len(values) >= total, "values": values,
        }
        if not body["isLast"]:
            body["nextPage"] = f"{request.base_url}{request.path}?maxResults={size}&startAt={start + size}"
        return Response(200, body)

    def _issue(self, request: Request) -> Response:
        with self.data.lock:
            issue = self.data.issues.get(request.params["key"])
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            expand = request.arg("expand") or ""
            limit = self.changelog_embed_limit if "changelog" in expand else None
            return Response(200, self.data.issue_json(issue, request.base_url, self.zone, None, limit))
