"""The bad-input matrix shared by tests/e2e and bench/reliability.py: malformed configs, arguments, payloads."""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reliability_kit import checkpoint, fakes, lift_rate_limits, mutated, write_config

from sandbox._http import Response
from sandbox.aws_seed import ACCOUNT, console_login, log_file, log_key
from sandbox.world import BUCKET, REGION, SandboxWorld, WorldEndpoints


def run_main(*args: str) -> tuple[int, str, str]:
    """Run the `collector` command in this process, as a new process would run it (no state
    left by earlier commands: okta.system_log's factor-change reads): (exit code, stdout, stderr)."""
    from collector.cli import main
    from connectors.okta._factor_changes import FACTOR_CHANGES

    FACTOR_CHANGES.clear()

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse rejects an argument
            code = int(exc.code or 0)
        except Exception:  # a traceback: report it as the process would show it
            import traceback
            err.write(traceback.format_exc())
            code = 99
    return code, out.getvalue(), err.getvalue()


def edit_key(text: str, section: str, key: str, value: str | None) -> str:
    """``text`` with ``key`` in ``[section]`` set to the TOML literal ``value`` (None removes it)."""
    head = f"[{section}]\n"
    start = text.index(head) + len(head)
    nxt = text.find("\n[", start)
    end = len(text) if nxt < 0 else nxt + 1
    body = re.sub(rf"(?m)^{re.escape(key)} = .*\n", "", text[start:end])
    if value is not None:
        body = f"{key} = {value}\n" + body
    return text[:start] + body + text[end:]


@dataclass
class Bench:
    """A base store collected from the world, a sealed snapshot and key, and the world itself."""

    world: SandboxWorld
    ep: WorldEndpoints
    base: Path            # folder holding the collected store, keys and snapshots
    snapshot: Path
    root: Path
    n: int = 0

    def folder(self) -> Path:
        """A fresh copy of the base folder (store, keys, snapshots) for one case."""
        self.n += 1
        target = self.root / f"case{self.n:02d}"
        shutil.copytree(self.base, target)
        return target


def prepare(world: SandboxWorld, ep: WorldEndpoints, root: Path) -> Bench:
    """Collect everything once, create the key and seal the last ended month: the state every case starts from."""
    base = root / "base"
    config = write_config(base, ep)
    lift_rate_limits(world)
    code, _, err = run_main("--config", str(config), "collect")
    assert code == 0, err
    code, _, err = run_main("--config", str(config), "keys", "init")
    assert code == 0, err
    code, _out, err = run_main("--config", str(config), "seal")
    assert code == 0, err
    checkpoint(base / "evidence.db")
    snapshot = sorted((base / "snapshots").glob("*.tar"))[-1]
    return Bench(world, ep, base, snapshot, root)


def stored_ids(db: Path) -> set[str]:
    """Every record id in a store."""
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM evidence")}


@dataclass
class Outcome:
    """What one malformed input produced."""

    name: str
    clean: bool
    detail: str


@dataclass(frozen=True)
class ArgCase:
    """A malformed config edit or command line; ``expect`` must appear in the one stderr line."""

    name: str
    args: tuple[str, ...]
    expect: str
    edits: tuple[tuple[str, str, str | None], ...] = ()
    unset: tuple[str, ...] = ()
    prepare: Callable[[Path], None] | None = None
    codes: tuple[int, ...] = (2,)


def _garbage_key(folder: Path) -> None:
    (folder / "keys" / "seal-ed25519.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n")


def _key_is_a_folder(folder: Path) -> None:
    key = folder / "keys" / "seal-ed25519.pem"
    key.unlink()
    key.mkdir()


def _not_a_tar(folder: Path) -> None:
    (folder / "notes.tar").write_text("this is not a tar archive\n")


ARG_CASES: tuple[ArgCase, ...] = (
    ArgCase("okta org_url over plain http", ("collect",), "connectors.okta.org_url",
            edits=(("connectors.okta", "org_url", '"http://acme.okta.com"'),)),
    ArgCase("okta org_url with a path", ("collect",), "connectors.okta.org_url",
            edits=(("connectors.okta", "org_url", '"https://acme.okta.com/admin/dashboard"'),)),
    ArgCase("okta page_size out of range", ("collect",), "connectors.okta.page_size",
            edits=(("connectors.okta", "page_size", "5000"),)),
    ArgCase("jira change_jql with ORDER BY", ("collect",), "connectors.jira.change_jql",
            edits=(("connectors.jira", "change_jql", '"project = CHG ORDER BY created DESC"'),)),
    ArgCase("jira url without a scheme", ("collect",), "connectors.jira.url",
            edits=(("connectors.jira", "url", '"acme.atlassian.net"'),)),
    ArgCase("jira without change_jql", ("collect",), "connectors.jira.change_jql",
            edits=(("connectors.jira", "change_jql", None),)),
    ArgCase("aws service_endpoints malformed", ("collect",), "connectors.aws.service_endpoints[0]",
            edits=(("connectors.aws", "service_endpoints", '["backup:http://127.0.0.1:9"]'),)),
    ArgCase("aws region misspelt", ("collect",), "connectors.aws.regions[0]",
            edits=(("connectors.aws", "regions", '["us-east"]'),)),
    ArgCase("aws bucket name invalid", ("collect",), "connectors.aws.cloudtrail_bucket",
            edits=(("connectors.aws", "cloudtrail_bucket", '"Org_Trail"'),)),
    ArgCase("aws role ARN malformed", ("collect",), "connectors.aws.assume_role_arns[0]",
            edits=(("connectors.aws", "assume_role_arns", '["arn:aws:iam::12:role/x"]'),)),
    ArgCase("github per_page 0", ("collect",), "connectors.github.per_page",
            edits=(("connectors.github", "per_page", "0"),)),
    ArgCase("github per_page 101", ("collect",), "connectors.github.per_page",
            edits=(("connectors.github", "per_page", "101"),)),
    ArgCase("github repo of another owner", ("collect",), "connectors.github.repos[0]",
            edits=(("connectors.github", "repos", '["someone-else/api"]'),)),
    ArgCase("github without org", ("collect",), "connectors.github.org",
            edits=(("connectors.github", "org", None),)),
    ArgCase("okta token variable unset", ("collect",), "$OKTA_API_TOKEN is not set",
            unset=("OKTA_API_TOKEN",)),
    ArgCase("jira email variable unset", ("collect",), "connectors.jira.email_env",
            edits=(("connectors.jira", "email_env", '"EC_NO_SUCH_VARIABLE"'),)),
    ArgCase("unknown --stream", ("collect", "--stream", "okta.nothing"), "--stream okta.nothing"),
    ArgCase("seal with a garbage key file", ("seal",), "seal-ed25519.pem", prepare=_garbage_key),
    ArgCase("seal with a folder as key file", ("seal",), "seal-ed25519.pem", prepare=_key_is_a_folder),
    ArgCase("seal --window 2026-13", ("seal", "--window", "2026-13"), "2026-13"),
    ArgCase("seal --window in the future", ("seal", "--window", "2099-01"), "2099-01"),
    ArgCase("digest --week 2026-W60", ("digest", "--no-deliver", "--week", "2026-W60"), "2026-W60"),
    ArgCase("digest --week last", ("digest", "--no-deliver", "--week", "last"), "last"),
    ArgCase("verify without a key", ("verify", "{snapshot}"), "--fingerprint"),
    ArgCase("verify a file that is not a tar", ("verify", "{folder}/notes.tar", "--fingerprint", "0" * 64),
            "notes.tar", prepare=_not_a_tar, codes=(1, 2)),
    ArgCase("verify a folder", ("verify", "{folder}", "--fingerprint", "0" * 64), "is a folder"),
    ArgCase("verify a missing file", ("verify", "{folder}/missing.tar", "--fingerprint", "0" * 64),
            "missing.tar", codes=(1, 2)),
    ArgCase("verify --key that does not exist", ("verify", "{snapshot}", "--key", "{folder}/nokey.pem"),
            "nokey.pem"),
    ArgCase("sample --size 0", ("sample", "{snapshot}", "--control", "CC6.1", "--size", "0"), "--size"),
    ArgCase("sample an unknown control", ("sample", "{snapshot}", "--control", "XX9.9", "--size", "5"),
            "XX9.9"),
    ArgCase("storage url in an unwritable place", ("collect",), "storage.url",
            edits=(("storage", "url", '"sqlite:////proc/evidence/e.db"'),)),
    ArgCase("storage url of an unknown driver", ("collect",), "storage.url",
            edits=(("storage", "url", '"postgresql+nope://x"'),)),
    ArgCase("seal_grace too long to compute", ("collect",), "windows.seal_grace",
            edits=(("windows", "seal_grace", '"99999999999d"'),)),
    ArgCase("seal --window in year 1", ("seal", "--window", "0001-01"), "outside 1970-9998"),
    ArgCase("digest --week in year 9999", ("digest", "--no-deliver", "--week", "9999-W52"),
            "outside 1970-9998"),
    ArgCase("digest --out onto a file", ("digest", "--no-deliver", "--out", "/etc/passwd"), "/etc/passwd"),
    ArgCase("digest mail_from with a header injected", ("digest",), "digest.mail_from",
            edits=(("digest", "smtp_host", '"mail.example.com"'), ("digest", "mail_to", '["a@b.c"]'),
                   ("digest", "mail_from", '"a@b.c\\nBcc: all@x.y"'))),
)


# -- issue 16: the daemon's inputs, files and secrets (bounded reads, key mode, signatures) ----

def _nested_toml(folder: Path) -> None:
    config = folder / "config.toml"
    config.write_text("deep = " + "[" * 50_000 + "]" * 50_000 + "\n" + config.read_text())


def _fifo(folder: Path) -> None:
    os.mkfifo(folder / "pipe.pem")


def _key_readable_by_others(folder: Path) -> None:
    (folder / "keys" / "seal-ed25519.pem").chmod(0o644)


def _forged(folder: Path, manifest: Callable[[bytes], bytes], signed: bool) -> None:
    """``<folder>/forged.tar``: the bench snapshot with its manifest replaced, SHA256SUMS
    recomputed and, when ``signed``, signed again with the real key."""
    import hashlib
    import tarfile

    from collector.seal import _format as fmt
    from collector.seal._tar import write_tar
    from collector.seal.keys import load_sealing_key

    snapshot = sorted((folder / "snapshots").glob("*.tar"))[-1]
    with tarfile.open(snapshot) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    members[fmt.FILE_MANIFEST] = manifest(members[fmt.FILE_MANIFEST])
    members[fmt.FILE_SUMS] = fmt.sums_text({n: hashlib.sha256(d).hexdigest() for n, d in members.items()
                                            if n not in fmt.SIGNATURE_FILES})
    if signed:
        members[fmt.FILE_SIG] = load_sealing_key(folder / "keys" / "seal-ed25519.pem").sign(
            members[fmt.FILE_SUMS])
    with (folder / "forged.tar").open("wb") as out:
        write_tar(out, [(n, members[n]) for n in sorted(members)], 0)


def _nested_manifest(folder: Path) -> None:
    _forged(folder, lambda m: b'{"merkle":{"root":' + b"[" * 100_000 + b"]" * 100_000 + b"}}", True)


def _steered_manifest(folder: Path) -> None:
    import json

    def steer(data: bytes) -> bytes:
        doc = json.loads(data)
        doc["merkle"]["root"] = "0" * 64
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    _forged(folder, steer, False)


_PUB = "{folder}/keys/seal-ed25519.pub.pem"

ARG_CASES += (
    ArgCase("--config on /dev/zero", ("--config", "/dev/zero", "collect"), "/dev/zero"),
    ArgCase("config nesting 50,000 arrays", ("collect",), "nested too deeply", prepare=_nested_toml),
    ArgCase("key_file on /dev/zero", ("seal",), "signing.key_file",
            edits=(("signing", "key_file", '"/dev/zero"'),)),
    ArgCase("sealing key readable by others", ("seal",), "chmod 600", prepare=_key_readable_by_others),
    ArgCase("verify --key /dev/zero", ("verify", "{snapshot}", "--key", "/dev/zero"), "--key /dev/zero"),
    ArgCase("verify --tsa-ca /dev/zero", ("verify", "{snapshot}", "--fingerprint", "0" * 64, "--tsa-ca",
                                          "/dev/zero"), "--tsa-ca /dev/zero"),
    ArgCase("sample --key /dev/zero", ("sample", "{snapshot}", "--criterion", "CC6.1", "--size", "1",
                                       "--key", "/dev/zero"), "--key /dev/zero"),
    ArgCase("verify --key on a named pipe", ("verify", "{snapshot}", "--key", "{folder}/pipe.pem"),
            "named pipe", prepare=_fifo),
    ArgCase("sealing key_file on a named pipe", ("seal",), "named pipe",
            edits=(("signing", "key_file", '"pipe.pem"'),), prepare=_fifo),
    ArgCase("sample a manifest nesting 100,000 arrays", ("sample", "{folder}/forged.tar", "--criterion",
                                                         "CC6.1", "--size", "1"), "manifest.json",
            prepare=_nested_manifest, codes=(1,)),
    ArgCase("verify a signed manifest nesting 100,000 arrays", ("verify", "{folder}/forged.tar", "--key",
                                                                _PUB), "manifest.json",
            prepare=_nested_manifest, codes=(1,)),
    ArgCase("sample --key on a re-summed, unsigned manifest", ("sample", "{folder}/forged.tar",
                                                              "--criterion", "CC6.1", "--size", "1",
                                                              "--key", _PUB), "not signed by a trusted key",
            prepare=_steered_manifest, codes=(1,)),
    ArgCase("okta token pasted into token_env", ("collect",), "connectors.okta.token_env: must name",
            edits=(("connectors.okta", "token_env", '"00aBcD3fGhIjKlMnOpQr-pasted"'),)),
    ArgCase("okta backfill 999999d", ("collect",), "connectors.okta.backfill: '999999d' is too long",
            edits=(("connectors.okta", "backfill", '"999999d"'),)),
)

def run_arg_case(bench: Bench, case: ArgCase) -> Outcome:
    """Apply one malformed config or argument and judge the answer: the expected exit code, one
    line on stderr naming the culprit, no traceback, and every stored record still there."""
    folder = bench.folder()
    config = folder / "config.toml"
    text = config.read_text()
    for section, key, value in case.edits:
        text = edit_key(text, section, key, value)
    config.write_text(text)
    if case.prepare is not None:
        case.prepare(folder)
    before = stored_ids(folder / "evidence.db")
    snapshot = folder / "snapshots" / bench.snapshot.name
    args = [a.format(snapshot=snapshot, folder=folder) for a in case.args]
    saved = {k: os.environ.pop(k, None) for k in case.unset}
    try:
        code, _out, err = run_main("--config", str(config), *args)
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    lines = err.strip().splitlines()
    problems = []
    if code not in case.codes:
        problems.append(f"exit {code}")
    if len(lines) != 1 or not (lines[0].startswith("collector: error:") or lines[0].startswith("usage:")
                               or "error:" in lines[0]):
        problems.append(f"{len(lines)} stderr lines")
    if "Traceback" in err:
        problems.append("traceback")
    if case.expect not in err:
        problems.append(f"{case.expect!r} not named")
    if not before <= stored_ids(folder / "evidence.db"):
        problems.append("stored records lost")
    return Outcome(case.name, not problems, "; ".join(problems) + f" | {err.strip()[-300:]}")


# -- malformed vendor payloads ------------------------------------------------------------

@dataclass
class PayloadCase:
    """A malformed item served by a fake. The run must fail naming the item (its key, or ``names``),
    or, for a ``tolerated`` oddity a vendor may really send, store the item as it came."""

    name: str
    stream: str
    install: Callable[[SandboxWorld, WorldEndpoints], contextlib.AbstractContextManager[str]]
    names: str | None = None
    tolerated: bool = False


def _now() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=2)


@contextlib.contextmanager
def _okta_event(world: SandboxWorld, ep: WorldEndpoints, edit: Callable[[dict[str, Any]], None]) -> Iterator[str]:
    okta: Any = fakes(world)["okta"]
    event = copy.deepcopy(okta.events[-1])
    key = str(uuid.uuid4())
    event["uuid"] = key
    event["published"] = _now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    okta.add_events([event])

    def bad(body: Any) -> Any:
        for item in body:
            if item.get("uuid") == key:
                edit(item)
        return body

    try:
        with mutated(okta, r"^/api/v1/logs$", bad):
            yield key
    finally:
        with okta._data_lock:
            okta._events = [(k, e) for k, e in okta._events if e.get("uuid") != key]


def _okta_users(world: SandboxWorld, ep: WorldEndpoints, edit: Callable[[dict[str, Any]], None],
                path: str = r"^/api/v1/users$") -> contextlib.AbstractContextManager[str]:
    okta: Any = fakes(world)["okta"]
    target = sorted(u["id"] for u in okta.users if u["status"] == "ACTIVE")[0]

    @contextlib.contextmanager
    def cm() -> Iterator[str]:
        def bad(body: Any) -> Any:
            if isinstance(body, list) and path.endswith("users$"):
                for user in body:
                    if user.get("id") == target:
                        edit(user)
                return body
            return {"errorSummary": "not a list"}

        logged = None
        if "factors" in path:
            # okta.users reads factors only of users new or changed since its last run: log a change.
            logged = okta.change_factors(target, okta.factors_of(target))
        try:
            with mutated(okta, path.replace("{user}", re.escape(target)), bad):
                yield target
        finally:
            if logged is not None:  # the next case starts from the fake as the bench left it
                with okta._data_lock:
                    okta._events = [(k, e) for k, e in okta._events if e.get("uuid") != logged["uuid"]]
    return cm()


@contextlib.contextmanager
def _github_pull(world: SandboxWorld, ep: WorldEndpoints, edit: Callable[[dict[str, Any]], None],
                 graphql_edit: Callable[[dict[str, Any]], None]) -> Iterator[str]:
    """The pull as REST answers it passes through ``edit``, as the GraphQL query answers it
    (the connector's default) through ``graphql_edit``."""
    github: Any = fakes(world)["github"]
    with github.lock:
        repo = sorted(github.org.repos)[0]
        pull = github.org.add_pull(repo, author="bob", merged_at=_now(), reviews=[("carol", "APPROVED")])
    key = f"{github.org.login}/{repo}#{pull.number}"

    def bad(body: Any) -> Any:
        if isinstance(body, dict) and "data" in body:
            connection = ((body["data"] or {}).get("repository") or {}).get("pullRequests") or {}
            for node in connection.get("nodes") or []:
                if node.get("number") == pull.number and f"/{repo}/pull/" in node.get("url", ""):
                    graphql_edit(node)
            return body
        for item in body if isinstance(body, list) else [body]:
            if isinstance(item, dict) and item.get("number") == pull.number and repo in item.get("url", ""):
                edit(item)
        return body

    try:
        with mutated(github, rf"^/repos/[^/]+/{re.escape(repo)}/pulls(/\d+)?$|^/graphql$", bad):
            yield key
    finally:
        with github.lock:
            github.org.repos[repo].pulls.remove(pull)


@contextlib.contextmanager
def _github_protection(world: SandboxWorld, ep: WorldEndpoints) -> Iterator[str]:
    github: Any = fakes(world)["github"]

    def bad(body: Any) -> Any:
        body["required_pull_request_reviews"] = "yes, two of them"
        return body

    with mutated(github, r"/branches/[^/]+/protection$", bad):
        yield "protection"


@contextlib.contextmanager
def _jira_issue(world: SandboxWorld, ep: WorldEndpoints, project: str,
                edit: Callable[[dict[str, Any]], None]) -> Iterator[str]:
    jira: Any = fakes(world)["jira"]
    key = jira.data.add_issue(project, "malformed on purpose", reporter="bob@example.com", created=_now())

    def bad(body: Any) -> Any:
        for issue in body.get("issues", []) if isinstance(body, dict) else []:
            if issue.get("key") == key:
                edit(issue)
        return body

    try:
        with mutated(jira, r"/search/jql$", bad):
            yield key
    finally:
        with jira.data.lock:
            jira.data.issues.pop(key, None)


@contextlib.contextmanager
def _trail_object(world: SandboxWorld, ep: WorldEndpoints, body: bytes) -> Iterator[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=ep.aws, region_name=REGION)
    key = log_key(ACCOUNT, REGION, _now(), unique=uuid.uuid4().hex[:16])
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    try:
        yield key
    finally:
        s3.delete_object(Bucket=BUCKET, Key=key)


def _trail_json(records: list[dict[str, Any]]) -> bytes:
    return log_file(records)


@contextlib.contextmanager
def _backup(world: SandboxWorld, ep: WorldEndpoints, edit: Callable[[Any], Any]) -> Iterator[str]:
    backup: Any = fakes(world)["backup"]
    with mutated(backup, r"^/backup-jobs/?$", edit):
        yield "ListBackupJobs"


def _drop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def edit(item: dict[str, Any]) -> None:
        for k in keys:
            item.pop(k, None)
    return edit


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(item: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            item = item[p]
        item[last] = value
    return edit


def _first_job(edit: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
    def apply(body: Any) -> Any:
        edit(body["BackupJobs"][0])
        return body
    return apply


def _login_without_time() -> bytes:
    record = console_login(_now(), f"ct-bad-{uuid.uuid4().hex[:8]}")
    record.pop("eventTime")
    return _trail_json([record])


PAYLOAD_CASES: tuple[PayloadCase, ...] = (
    PayloadCase("okta event without published", "okta.system_log",
                lambda w, e: _okta_event(w, e, _drop("published"))),
    PayloadCase("okta event with a bad published", "okta.system_log",
                lambda w, e: _okta_event(w, e, _set("published", "yesterday at noon"))),
    PayloadCase("okta event without uuid", "okta.system_log",
                lambda w, e: _okta_event(w, e, _drop("uuid")), names="KeyError('uuid')"),
    PayloadCase("okta event with a null actor", "okta.system_log",
                lambda w, e: _okta_event(w, e, _set("actor", None)), tolerated=True),
    PayloadCase("okta user with a null profile", "okta.users",
                lambda w, e: _okta_users(w, e, _set("profile", None)), tolerated=True),
    PayloadCase("okta factors not a list", "okta.users",
                lambda w, e: _okta_users(w, e, _drop(), path=r"^/api/v1/users/{user}/factors$")),
    PayloadCase("github PR with a null user", "github.pull_requests",
                lambda w, e: _github_pull(w, e, _set("user", None), _set("author", None)), tolerated=True),
    PayloadCase("github PR with a bad merged_at", "github.pull_requests",
                lambda w, e: _github_pull(w, e, _set("merged_at", "last tuesday"),
                                          _set("mergedAt", "last tuesday"))),
    PayloadCase("github protection with a string for reviews", "github.branch_protection",
                _github_protection, names="acme/api@main"),
    PayloadCase("jira change with a bad updated date", "jira.change_tickets",
                lambda w, e: _jira_issue(w, e, "CHG", _set("fields.updated", "not-a-date"))),
    PayloadCase("jira change with a bad created date", "jira.change_tickets",
                lambda w, e: _jira_issue(w, e, "CHG", _set("fields.created", "31/02/2026"))),
    PayloadCase("jira incident with null fields", "jira.incidents",
                lambda w, e: _jira_issue(w, e, "INC", _set("fields", None))),
    PayloadCase("cloudtrail file of invalid JSON", "aws.cloudtrail",
                lambda w, e: _trail_object(w, e, gzip.compress(b'{"Records": [{"eventID": ', mtime=0))),
    PayloadCase("cloudtrail file not gzip", "aws.cloudtrail",
                lambda w, e: _trail_object(w, e, b"plain text, not a log file")),
    PayloadCase("cloudtrail record without eventTime", "aws.cloudtrail",
                lambda w, e: _trail_object(w, e, _login_without_time())),
    PayloadCase("backup job with a bad CreationDate", "aws.backup_jobs",
                lambda w, e: _backup(w, e, _first_job(_set("CreationDate", "soon")))),
    PayloadCase("backup answer not JSON", "aws.backup_jobs",
                lambda w, e: _backup(w, e, lambda body: b"<html>maintenance</html>")),
)


def run_payload_case(bench: Bench, case: PayloadCase) -> Outcome:
    """Serve one malformed item and collect its stream from a copy of the base store: no traceback,
    no record lost, and either the run fails naming the item or the item is stored as it came."""
    folder = bench.folder()
    db = folder / "evidence.db"
    before = stored_ids(db)
    lift_rate_limits(bench.world)
    with case.install(bench.world, bench.ep) as names:
        code, _out, err = run_main("--config", str(folder / "config.toml"), "collect", "--stream", case.stream)
    with sqlite3.connect(db) as conn:
        run_id, status, error = conn.execute(
            "SELECT id, status, coalesce(error, '') FROM runs WHERE stream = ? "
            "ORDER BY started_at DESC LIMIT 1", (case.stream,)).fetchone()
        kept = conn.execute("SELECT count(*) FROM evidence WHERE source_key = ? AND run_id = ?",
                            (names, run_id)).fetchone()[0]
    problems = []
    if "Traceback" in err or "connector_bug" in err or code == 99:
        problems.append("traceback")
    if not before <= stored_ids(db):
        problems.append("stored records lost")
    if case.tolerated:
        if status != "ok" or code != 0 or not kept:
            problems.append(f"{status}, exit {code}, {kept} records of {names!r}")
    elif status == "ok":
        problems.append("accepted as ok")
    elif (case.names or names) not in error:
        problems.append(f"{status} run does not name {case.names or names!r}")
    if not case.tolerated and code != 1:
        problems.append(f"exit {code}")
    return Outcome(case.name, not problems, "; ".join(problems) + f" | {status}: {error[:300]}")


# -- hardening against hostile sources and a tampered store (issue #16, items 1, 2, 5-8, 12, 13) --

_MIB = 1 << 20


def _altered_store(folder: Path) -> None:
    """Someone with the SQLite file drops the guards and turns stored exceptions into ok."""
    with sqlite3.connect(folder / "evidence.db") as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'evidence'"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE evidence SET status = 'ok', body = replace(body, '\"status\":\"exception\"', "
                     "'\"status\":\"ok\"') WHERE status = 'exception'")


ARG_CASES += (
    ArgCase("jira url with credentials in it", ("collect",), "connectors.jira.url: must not hold credentials",
            edits=(("connectors.jira", "url", '"https://bob:s3cr3t@acme.atlassian.net"'),)),
    ArgCase("okta org_url with a token in the query", ("collect",), "connectors.okta.org_url",
            edits=(("connectors.okta", "org_url", '"https://acme.okta.com/?token=s3cr3t"'),)),
    ArgCase("github base_url over plain http", ("collect",), "connectors.github.base_url: must be https://",
            edits=(("connectors.github", "base_url", '"http://github.example.com/api/v3"'),)),
    ArgCase("aws endpoint_url with credentials in it", ("collect",), "connectors.aws.endpoint_url",
            edits=(("connectors.aws", "endpoint_url", '"https://AKIA:s3cr3t@s3.example.com"'),)),
    ArgCase("aws cloudtrail_max_inflated_mib 0", ("collect",), "connectors.aws.cloudtrail_max_inflated_mib",
            edits=(("connectors.aws", "cloudtrail_max_inflated_mib", "0"),)),
    ArgCase("seal after stored records were altered", ("seal",), "does not hash to its id",
            prepare=_altered_store, codes=(1,)),
)


def _trail_bomb() -> bytes:
    """300 MiB of JSON from ~300 KB of gzip members: past the default 256 MiB cap."""
    return gzip.compress(b'{"Records":[' + b" " * (_MIB - 14) + b"]}", mtime=0) * 300


def _trail_nested() -> bytes:
    return gzip.compress(b'{"Records":[{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}]}", mtime=0)


def _trail_huge_record() -> bytes:
    record = console_login(_now(), f"ct-huge-{uuid.uuid4().hex[:8]}")
    record["userAgent"] = "x" * (65 * _MIB)
    return _trail_json([record])


@contextlib.contextmanager
def _okta_next_elsewhere(world: SandboxWorld, ep: WorldEndpoints) -> Iterator[str]:
    """Okta's System Log answers with a next link to another origin (nothing listens there)."""
    okta: Any = fakes(world)["okta"]
    original = okta._respond

    def respond(request: Any) -> Any:
        response = original(request)
        if request.path != "/api/v1/logs" or response.status != 200:
            return response
        headers = [(k, v) for k, v in response.headers if k.lower() != "link"]
        headers.append(("Link", '<http://127.0.0.2:9/api/v1/logs?after=x>; rel="next"'))
        return Response(200, response.body, headers)

    okta._respond = respond
    try:
        yield "next-link"
    finally:
        del okta._respond


PAYLOAD_CASES += (
    PayloadCase("cloudtrail decompression bomb", "aws.cloudtrail",
                lambda w, e: _trail_object(w, e, _trail_bomb())),
    PayloadCase("cloudtrail file nesting 100,000 arrays", "aws.cloudtrail",
                lambda w, e: _trail_object(w, e, _trail_nested())),
    PayloadCase("cloudtrail record of 65 MiB", "aws.cloudtrail",
                lambda w, e: _trail_object(w, e, _trail_huge_record()), names="a sealed snapshot's record line"),
    PayloadCase("okta page past the response cap", "okta.system_log",
                lambda w, e: _okta_event(w, e, _set("displayMessage", "x" * (65 * _MIB))),
                names="is larger than 64 MiB decoded"),
    PayloadCase("okta next link to another origin", "okta.system_log", _okta_next_elsewhere,
                names="not the configured"),
    PayloadCase("jira reporter email with a NUL", "jira.change_tickets",
                lambda w, e: _jira_issue(w, e, "CHG", _set("fields.reporter.emailAddress", "bob\x00@example.com")),
                tolerated=True),
)
