"""A fake GitHub API on loopback (the REST endpoints PyGithub calls for PRs, branch protection,
org 2FA, members and outside collaborators, and GraphQL for the org's SAML identities and for
merged pull requests), with GitHub's rate-limit headers and its fault answers."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from sandbox._http import FakeServer, Request, Response, Status
from sandbox.github_data import GithubOrg, GithubPull, GithubRepo

__all__ = [
    "DOCS_URL",
    "WEB_URL",
    "FakeGithub",
    "internal_error",
    "secondary_rate_limit",
    "too_many_requests",
]

DOCS_URL = "https://docs.github.com/rest"
WEB_URL = "https://github.example"
"""Where ``html_url`` links point: stable across fake instances, so records do not depend on the port."""

RATE_LIMIT = 5000
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


def _ts(when: datetime) -> str:
    """GitHub's timestamp form: second resolution, UTC, ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rate_headers(used: int, reset: int) -> list[tuple[str, str]]:
    return [
        ("X-RateLimit-Limit", str(RATE_LIMIT)),
        ("X-RateLimit-Remaining", str(max(0, RATE_LIMIT - used))),
        ("X-RateLimit-Reset", str(reset)),
        ("X-RateLimit-Used", str(used)),
        ("X-RateLimit-Resource", "core"),
    ]


def _fault_headers(retry_after: int | None) -> list[tuple[str, str]]:
    reset = int(datetime.now(UTC).timestamp()) + 3600
    headers = _rate_headers(1, reset)
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return headers


def secondary_rate_limit(retry_after: int | None = 1) -> Status:
    """GitHub's secondary (abuse) rate limit: 403 with a message and, usually, Retry-After."""
    return Status(403, _fault_headers(retry_after),
                  {"message": SECONDARY_MESSAGE, "documentation_url": f"{DOCS_URL}#secondary-rate-limits"})


def too_many_requests(retry_after: int = 1) -> Status:
    """A 429 with Retry-After and the rate-limit headers."""
    return Status(429, _fault_headers(retry_after),
                  {"message": "API rate limit exceeded", "documentation_url": DOCS_URL})


def internal_error(code: int = 500) -> Status:
    """A 5xx as GitHub sends it."""
    return Status(code, _fault_headers(None), {"message": "Server Error"})


class FakeGithub(FakeServer):
    """GitHub's REST API for one org, over loopback; ``org`` may be changed between requests
    (hold ``lock``); every answer carries the X-RateLimit headers."""

    def __init__(self, org: GithubOrg, token: str = "ghp_fake_token") -> None:  # noqa: S107
        super().__init__()
        self.org = org
        self.token = token
        self.lock = threading.RLock()
        self._used = 0
        self._reset = int(datetime.now(UTC).timestamp()) + 3600
        o = r"(?P<owner>[^/]+)"
        r = r"(?P<repo>[^/]+)"
        routes: list[tuple[str, Callable[[Request], Response]]] = [
            (rf"^/orgs/{o}$", self._org),
            (rf"^/orgs/{o}/repos$", self._org_repos),
            (rf"^/orgs/{o}/members$", self._members),
            (rf"^/orgs/{o}/outside_collaborators$", self._outside_collaborators),
            (rf"^/repos/{o}/{r}$", self._repo),
            (rf"^/repos/{o}/{r}/pulls$", self._pulls),
            (rf"^/repos/{o}/{r}/pulls/(?P<number>\d+)$", self._pull),
            (rf"^/repos/{o}/{r}/pulls/(?P<number>\d+)/reviews$", self._reviews),
            (rf"^/repos/{o}/{r}/issues/(?P<number>\d+)/events$", self._issue_events),
            (rf"^/repos/{o}/{r}/branches/(?P<branch>[^/]+)$", self._branch),
            (rf"^/repos/{o}/{r}/branches/(?P<branch>[^/]+)/protection$", self._protection),
        ]
        for pattern, handler in routes:
            self.route("GET", pattern, self._guarded(handler))
        self.graphql_enabled = True
        """False: ``POST /graphql`` answers 404, as a server without the GraphQL API does."""
        self.route("POST", r"^/graphql$", self._guarded(self._graphql))

    def remove_member(self, login: str) -> None:
        """Remove ``login`` from the org between requests (``GithubOrg.remove_member``)."""
        with self.lock:
            self.org.remove_member(login)

    # -- plumbing ----------------------------------------------------------------------

    def _headers(self) -> list[tuple[str, str]]:
        with self.lock:
            self._used += 1
            return _rate_headers(self._used, self._reset)

    def _answer(self, status: int, body: object, extra: Iterable[tuple[str, str]] = ()) -> Response:
        return Response(status, body, [*self._headers(), *extra])

    def _guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() not in ("token", "bearer") or token != self.token:
                return self._answer(401, {"message": "Bad credentials", "documentation_url": DOCS_URL})
            with self.lock:
                return handler(request)
        return guarded

    def not_found(self, request: Request) -> Response:
        """GitHub's 404 body."""
        return self._answer(404, {"message": "Not Found", "documentation_url": DOCS_URL})

    def _missing(self) -> Response:
        return self._answer(404, {"message": "Not Found", "documentation_url": DOCS_URL})

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """One page of ``items`` per ``page``/``per_page``, with GitHub's Link header."""
        try:
            per_page = min(100, max(1, int(request.arg("per_page", "30") or "30")))
            page = max(1, int(request.arg("page", "1") or "1"))
        except ValueError:
            return self._answer(422, {"message": "Validation Failed", "documentation_url": DOCS_URL})
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]

        def link(number: int) -> str:
            query = {k: v[0] for k, v in request.query.items() if k != "page"}
            query["per_page"] = str(per_page)
            query["page"] = str(number)
            return f"{request.base_url}{request.path}?{urlencode(query)}"

        rels: list[str] = []
        if page < last:
            rels += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page > 1:
            rels += [f'<{link(1)}>; rel="first"', f'<{link(page - 1)}>; rel="prev"']
        return self._answer(200, chunk, [("Link", ", ".join(rels))] if rels else [])

    def _find_repo(self, request: Request) -> GithubRepo | None:
        if request.params["owner"] != self.org.login:
            return None
        return self.org.repos.get(request.params["repo"])

    def _find_pull(self, request: Request) -> tuple[GithubRepo, GithubPull] | None:
        repo = self._find_repo(request)
        if repo is None:
            return None
        number = int(request.params["number"])
        for pull in repo.pulls:
            if pull.number == number:
                return repo, pull
        return None

    # -- JSON shapes -------------------------------------------------------------------

    def _user(self, base: str, login: str) -> dict[str, Any]:
        return {"login": login, "id": sum(map(ord, login)), "type": "User",
                "url": f"{base}/users/{login}", "html_url": f"{WEB_URL}/{login}"}

    def _org_json(self, base: str) -> dict[str, Any]:
        login = self.org.login
        return {"login": login, "id": 4242, "url": f"{base}/orgs/{login}",
                "repos_url": f"{base}/orgs/{login}/repos", "html_url": f"{WEB_URL}/{login}",
                "type": "Organization",
                "two_factor_requirement_enabled": self.org.two_factor_requirement_enabled}

    def _repo_json(self, base: str, repo: GithubRepo) -> dict[str, Any]:
        full = f"{self.org.login}/{repo.name}"
        return {"id": repo.id, "name": repo.name, "full_name": full, "private": repo.private,
                "archived": repo.archived, "default_branch": repo.default_branch,
                "owner": {"login": self.org.login, "id": 4242, "type": "Organization",
                          "url": f"{base}/orgs/{self.org.login}"},
                "url": f"{base}/repos/{full}", "html_url": f"{WEB_URL}/{full}",
                "pulls_url": f"{base}/repos/{full}/pulls{{/number}}"}

    def _pull_json(self, base: str, repo: GithubRepo, pull: GithubPull, *, detail: bool) -> dict[str, Any]:
        full = f"{self.org.login}/{repo.name}"
        body: dict[str, Any] = {
            "url": f"{base}/repos/{full}/pulls/{pull.number}", "id": repo.id * 100000 + pull.number,
            "number": pull.number, "state": pull.state, "title": pull.title,
            "user": self._user(base, pull.author),
            "created_at": _ts(pull.created_at), "updated_at": _ts(pull.updated_at),
            "closed_at": _ts(pull.closed_at) if pull.closed_at else None,
            "merged_at": _ts(pull.merged_at) if pull.merged_at else None,
            "merge_commit_sha": f"{pull.number:040x}"[::-1] if pull.merged_at else None,
            "html_url": f"{WEB_URL}/{full}/pull/{pull.number}",
            "issue_url": f"{base}/repos/{full}/issues/{pull.number}",
            "base": {"label": f"{self.org.login}:{pull.base}", "ref": pull.base, "sha": "b" * 40},
            "head": {"label": f"{pull.author}:topic-{pull.number}", "ref": f"topic-{pull.number}",
                     "sha": pull.head_sha},
        }
        if detail:  # the list endpoint leaves these out, as GitHub's does
            body["merged"] = pull.merged_at is not None
            body["merged_by"] = self._user(base, pull.merged_by) if pull.merged_by else None
            body["comments"] = 0
            body["review_comments"] = 0
        return body

    # -- routes ------------------------------------------------------------------------

    def _org(self, request: Request) -> Response:
        if request.params["owner"] != self.org.login:
            return self._missing()
        return self._answer(200, self._org_json(request.base_url))

    def _org_repos(self, request: Request) -> Response:
        if request.params["owner"] != self.org.login:
            return self._missing()
        repos = sorted(self.org.repos.values(), key=lambda r: r.id)
        return self._page(request, [self._repo_json(request.base_url, r) for r in repos])

    def _two_factor_filter(self, request: Request) -> Response | None:
        """None when the ``filter`` argument may be served; else GitHub's refusal of it."""
        wanted = request.arg("filter", "all")
        if wanted not in ("all", "2fa_disabled"):
            return self._answer(422, {"message": "Validation Failed", "documentation_url": DOCS_URL})
        if wanted == "2fa_disabled" and not self.org.owner_token:
            return self._answer(422, {"message": "Only owners can use this filter.",
                                      "documentation_url": f"{DOCS_URL}/orgs/members"})
        return None

    def _members(self, request: Request) -> Response:
        if request.params["owner"] != self.org.login:
            return self._missing()
        refused = self._two_factor_filter(request)
        if refused is not None:
            return refused
        role = request.arg("role", "all")
        if role not in ("all", "admin", "member"):
            return self._answer(422, {"message": "Validation Failed", "documentation_url": DOCS_URL})
        wanted = request.arg("filter", "all")
        logins = sorted(login for login, has_2fa in self.org.members.items()
                        if (wanted == "all" or not has_2fa)
                        and (role == "all" or (login in self.org.admins) == (role == "admin")))
        return self._page(request, [self._user(request.base_url, login) for login in logins])

    def _outside_collaborators(self, request: Request) -> Response:
        if request.params["owner"] != self.org.login:
            return self._missing()
        refused = self._two_factor_filter(request)
        if refused is not None:
            return refused
        wanted = request.arg("filter", "all")
        logins = sorted(login for login, has_2fa in self.org.outside_collaborators.items()
                        if wanted == "all" or not has_2fa)
        return self._page(request, [self._user(request.base_url, login) for login in logins])

    def _graphql(self, request: Request) -> Response:
        """``POST /graphql``: 404 when ``graphql_enabled`` is off; the merged-pull-requests query
        goes to ``_pulls_graphql``, any other to ``_saml_graphql``."""
        if not self.graphql_enabled:
            return self._missing()
        try:
            body = request.json
        except ValueError:
            body = None
        if isinstance(body, dict) and "pullRequests(" in str(body.get("query")):
            return self._pulls_graphql(request)
        return self._saml_graphql(request)

    def _saml_graphql(self, request: Request) -> Response:
        """The SAML GraphQL query the collector sends: ``organization(login).samlIdentityProvider
        .externalIdentities(first, after)``, paged by an opaque cursor (the offset)."""
        try:
            body = request.json
            query, variables = str(body["query"]), dict(body.get("variables") or {})
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._answer(400, {"message": "Problems parsing JSON", "documentation_url": DOCS_URL})
        if "samlIdentityProvider" not in query or "externalIdentities" not in query:
            return self._answer(
                200, {"errors": [{"message": "the fake answers the SAML identities query only"}]})
        if variables.get("org") != self.org.login:
            return self._answer(200, {"data": {"organization": None}, "errors": [{
                "type": "NOT_FOUND", "path": ["organization"],
                "message": "Could not resolve to an Organization with the login of "
                           f"'{variables.get('org')}'.",
            }]})
        if not self.org.owner_token:
            return self._answer(200, {"data": {"organization": {"samlIdentityProvider": None}}, "errors": [{
                "type": "FORBIDDEN", "path": ["organization", "samlIdentityProvider"],
                "message": "Resource not accessible by integration"}]})
        if self.org.saml_emails is None:
            return self._answer(200, {"data": {"organization": {"samlIdentityProvider": None}}})
        first = min(100, max(1, int(variables.get("first") or 100)))
        offset = int(variables.get("after") or 0)
        linked = sorted(self.org.saml_emails.items())
        nodes = [{"guid": f"guid-{login}", "samlIdentity": {"nameId": email, "emails": [{"value": email}]},
                  "user": {"login": login}}
                 for login, email in linked[offset:offset + first]]
        more = offset + first < len(linked)
        page = {"pageInfo": {"hasNextPage": more, "endCursor": str(offset + len(nodes)) if nodes else None},
                "nodes": nodes}
        return self._answer(200, {"data": {"organization": {"samlIdentityProvider": {
            "ssoUrl": f"{WEB_URL}/sso/saml", "externalIdentities": page}}}})

    def _repo(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if repo is None:
            return self._missing()
        return self._answer(200, self._repo_json(request.base_url, repo))

    def _pulls(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if repo is None:
            return self._missing()
        state = request.arg("state", "open")
        sort = request.arg("sort", "created")
        direction = request.arg("direction", "desc" if sort == "updated" else "asc")
        base = request.arg("base")
        if state not in ("open", "closed", "all") or sort not in ("created", "updated") or \
                direction not in ("asc", "desc"):
            return self._answer(422, {"message": "Validation Failed", "documentation_url": DOCS_URL})
        pulls = [p for p in repo.pulls
                 if state in ("all", p.state) and (base is None or p.base == base)]
        def key(p: GithubPull) -> tuple[datetime, int]:
            return (p.updated_at if sort == "updated" else p.created_at, p.number)

        pulls.sort(key=key, reverse=direction == "desc")
        return self._page(request, [self._pull_json(request.base_url, repo, p, detail=False) for p in pulls])

    def _pull(self, request: Request) -> Response:
        found = self._find_pull(request)
        if found is None:
            return self._missing()
        return self._answer(200, self._pull_json(request.base_url, *found, detail=True))

    def _reviews(self, request: Request) -> Response:
        found = self._find_pull(request)
        if found is None:
            return self._missing()
        repo, pull = found
        full = f"{self.org.login}/{repo.name}"
        reviews = [
            {"id": r.id, "user": self._user(request.base_url, r.user), "state": r.state,
             "body": "", "commit_id": r.commit_id or pull.head_sha,
             "submitted_at": _ts(r.submitted_at) if r.submitted_at else None,
             "html_url": f"{WEB_URL}/{full}/pull/{pull.number}#pullrequestreview-{r.id}",
             "pull_request_url": f"{request.base_url}/repos/{full}/pulls/{pull.number}"}
            for r in sorted(pull.reviews, key=lambda r: r.id)
        ]
        return self._page(request, reviews)

    def _issue_events(self, request: Request) -> Response:
        found = self._find_pull(request)
        if found is None:
            return self._missing()
        repo, pull = found
        base = request.base_url
        full = f"{self.org.login}/{repo.name}"
        events: list[tuple[datetime, dict[str, Any]]] = []

        def add(at: datetime, kind: str, actor: str, **fields: Any) -> None:
            number = len(events) + 1
            events.append((at, {
                "id": pull.number * 1000 + number, "url": f"{base}/repos/{full}/issues/events/{number}",
                "actor": self._user(base, actor), "event": kind, "commit_id": None, "commit_url": None,
                "created_at": _ts(at), "performed_via_github_app": None, **fields}))

        for review in pull.reviews:
            if review.dismissal is not None:
                at, was = review.dismissal
                add(at, "review_dismissed", pull.merged_by or pull.author, dismissed_review={
                    "state": was.lower(), "review_id": review.id,
                    "dismissal_message": "Dismissed", "dismissal_commit_id": None})
        if pull.merged_at is not None:
            add(pull.merged_at, "merged", pull.merged_by or pull.author,
                commit_id=f"{pull.number:040x}"[::-1])
        if pull.closed_at is not None:
            add(pull.closed_at, "closed", pull.merged_by or pull.author)
        return self._page(request, [e for _, e in sorted(events, key=lambda e: (e[0], e[1]["id"]))])

    def _branch(self, request: Request) -> Response:
        repo = self._find_repo(request)
        branch = request.params["branch"]
        if repo is None or branch not in {repo.default_branch, *repo.protection}:
            return self._answer(404, {"message": "Branch not found", "documentation_url": DOCS_URL})
        full = f"{self.org.login}/{repo.name}"
        url = f"{request.base_url}/repos/{full}/branches/{quote(branch, safe='')}"
        return self._answer(200, {
            "name": branch,
            "commit": {"sha": "c" * 40, "url": f"{request.base_url}/repos/{full}/commits/{'c' * 40}"},
            "protected": branch in repo.protection, "protection_url": f"{url}/protection",
            "_links": {"self": url, "html": f"{WEB_URL}/{full}/tree/{branch}"},
        })

    def _protection(self, request: Request) -> Response:
        repo = self._find_repo(request)
        if repo is None:
            return self._missing()
        branch = request.params["branch"]
        rule = repo.protection.get(branch)
        if rule is None:
            return self._answer(404, {"message": "Branch not protected", "documentation_url": DOCS_URL})
        url = f"{request.base_url}{request.path}"
        body: dict[str, Any] = {
            "url": url,
            "required_status_checks": {"url": f"{url}/required_status_checks", "strict": True,
                                       "contexts": list(rule.status_checks)},
            "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": rule.enforce_admins},
            "allow_force_pushes": {"enabled": rule.allow_force_pushes},
            "allow_deletions": {"enabled": rule.allow_deletions},
            "required_linear_history": {"enabled": False},
        }
        if rule.required_approvals is not None:
            reviews: dict[str, Any] = {
                "url": f"{url}/required_pull_request_reviews",
                "dismiss_stale_reviews": rule.dismiss_stale_reviews,
                "require_code_owner_reviews": rule.require_code_owner_reviews,
            }
            if rule.count_stated:
                reviews["required_approving_review_count"] = rule.required_approvals
            body["required_pull_request_reviews"] = reviews
        return self._answer(200, body)

    # -- GraphQL -------------------------------------------------------------------------

    def _pulls_graphql(self, request: Request) -> Response:
        """``POST /graphql``: the connector's merged-pull-requests query (``pullRequests`` of one
        repository with reviews and review-dismissed events), served from the same org as REST.

        The query is parsed only as far as the connector's own shape needs: the ``states`` and
        ``orderBy`` arguments; ``owner``, ``name``, ``first`` and ``after`` come as variables.
        Any other query is answered with a GraphQL error, as GitHub answers a query it cannot run.
        """
        try:
            payload = request.json
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return self._answer(400, {"message": "Problems parsing JSON", "documentation_url": DOCS_URL})
        query: str = payload["query"]
        variables: dict[str, Any] = payload.get("variables") or {}
        if "pullRequests(" not in query or "repository(owner: $owner, name: $name)" not in query:
            return self._answer(200, {"errors": [{"message": "the fake serves only the connector's "
                                                              "pullRequests query"}]})
        owner, name = str(variables.get("owner")), str(variables.get("name"))
        repo = self.org.repos.get(name) if owner == self.org.login else None
        if repo is None:
            return self._answer(200, {"data": {"repository": None}, "errors": [{
                "type": "NOT_FOUND", "path": ["repository"],
                "message": f"Could not resolve to a Repository with the name '{owner}/{name}'."}]})
        states_match = re.search(r"states:\s*\[([A-Z_,\s]*)\]", query)
        states = {s.strip() for s in states_match.group(1).split(",")} if states_match else set()
        descending = re.search(r"direction:\s*DESC", query) is not None
        first = max(1, min(100, int(variables.get("first") or 100)))
        after = variables.get("after")
        offset = int(base64.b64decode(after).decode().partition(":")[2]) if after else 0

        def state_of(pull: GithubPull) -> str:
            return "OPEN" if pull.closed_at is None else "MERGED" if pull.merged_at else "CLOSED"

        pulls = [p for p in repo.pulls if not states or state_of(p) in states]
        pulls.sort(key=lambda p: (p.updated_at, p.number), reverse=descending)
        chunk = pulls[offset: offset + first]
        end = offset + len(chunk)
        nested = re.search(r"reviews\(first:\s*(\d+)", query)
        connection = {
            "pageInfo": {"hasNextPage": end < len(pulls),
                         "endCursor": base64.b64encode(f"cursor:{end}".encode()).decode() if chunk else None},
            "nodes": [self._pull_node(repo, p, int(nested.group(1)) if nested else 100) for p in chunk],
        }
        return self._answer(200, {"data": {"repository": {"pullRequests": connection}}})

    @staticmethod
    def _actor_node(login: str | None) -> dict[str, Any] | None:
        """GraphQL's actor: a GitHub App's bot is a ``Bot`` whose login lacks REST's ``[bot]``."""
        if login is None:
            return None
        if login.endswith("[bot]"):
            return {"__typename": "Bot", "login": login.removesuffix("[bot]")}
        return {"__typename": "User", "login": login}

    def _pull_node(self, repo: GithubRepo, pull: GithubPull, first_reviews: int) -> dict[str, Any]:
        """One ``PullRequest`` node with the fields the connector's query selects; its first
        ``first_reviews`` reviews, saying whether there are more."""
        full = f"{self.org.login}/{repo.name}"
        every = sorted(pull.reviews, key=lambda r: r.id)
        reviews = every[:first_reviews]
        dismissed = sorted((r for r in pull.reviews if r.dismissal is not None),
                           key=lambda r: (r.dismissal or (pull.created_at, ""))[0])
        return {
            "number": pull.number, "title": pull.title, "url": f"{WEB_URL}/{full}/pull/{pull.number}",
            "updatedAt": _ts(pull.updated_at),
            "mergedAt": _ts(pull.merged_at) if pull.merged_at else None,
            "baseRefName": pull.base, "headRefOid": pull.head_sha,
            "mergeCommit": {"oid": f"{pull.number:040x}"[::-1]} if pull.merged_at else None,
            "author": self._actor_node(pull.author),
            "mergedBy": self._actor_node(pull.merged_by),
            "reviews": {
                "pageInfo": {"hasNextPage": len(every) > len(reviews), "endCursor": None},
                "nodes": [{"databaseId": r.id, "state": r.state,
                           "submittedAt": _ts(r.submitted_at) if r.submitted_at else None,
                           "author": self._actor_node(r.user),
                           "commit": {"oid": r.commit_id or pull.head_sha}} for r in reviews],
            },
            "timelineItems": {
                "pageInfo": {"hasNextPage": False, "endCursor": None},
                "nodes": [{"__typename": "ReviewDismissedEvent",
                           "createdAt": _ts(r.dismissal[0]), "previousReviewState": r.dismissal[1].upper(),
                           "review": {"databaseId": r.id}}
                          for r in dismissed if r.dismissal is not None],
            },
        }
