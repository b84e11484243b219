"""`collector demo`: the whole product against the local sandbox, in one command."""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from collector.errors import InputError

__all__ = ["DemoResult", "run_demo"]

CONFIG = """\
# Written by `collector demo`: every connector points at a local fake on loopback.
[storage]
url = "sqlite:///evidence.db"

[windows]
period = "month"
timezone = "UTC"
seal_grace = "1d"

[signing]
key_file = "keys/seal-ed25519.pem"

[digest]
out_dir = "digests"

# `collector seal` and the daemon write snapshots here too.
[seal]
out_dir = "snapshots"

# Documents (policies, reports) go to this content-addressed, write-once folder.
[files]
url = "files"

# Everyone active in Okta acknowledges the policy and completes the yearly training.
[people]
roster = "okta"

[[people.require]]
type = "policy_ack"
item = "infosec-policy@v3"

[[people.require]]
type = "training"
item = "Security awareness"
every = "1y"

# People across systems: a GitHub login without a SAML identity linked by hand, and the
# accounts no person holds. contractor-kim (an outside collaborator) stays an orphan.
[identities]
service_accounts = ["ci-deploy", "svc-deploy"]

[identities.overrides.github]
frank = "frances.allen@example.com"

# The starter control library (`collector controls init` copies it for tailoring) judged on the
# security and availability criteria: CC1.1-CC9.2 and A1.1-A1.3, 36 in all.
[scope]
categories = ["security", "availability"]

[connectors.aws]
endpoint_url = "{aws}"
service_endpoints = ["backup={backup}"]
cloudtrail_bucket = "org-trail"
backfill = "120d"

[connectors.okta]
org_url = "{okta}"
backfill = "120d"
settle = "0s"    # the fake shows every event at once (a real org: the default "1m")

[connectors.github]
org = "acme"
base_url = "{github}"
request_spacing_ms = 0
backfill = "120d"

[connectors.jira]
url = "{jira}"
email_env = "JIRA_EMAIL"
token_env = "JIRA_API_TOKEN"
change_jql = "project = CHG"
incident_jql = "project = INC"
backfill = "120d"
"""


@dataclass
class DemoResult:
    """What the demo produced, for the report and the tests."""

    directory: Path
    config: Path
    runs: list[Any] = field(default_factory=list)
    digest: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    """The digest itself (its JSON), for the coverage the report prints."""
    snapshots: list[Path] = field(default_factory=list)
    fingerprint: str = ""
    public_key: Path | None = None
    exceptions: Counter[str] = field(default_factory=Counter)
    records: dict[str, int] = field(default_factory=dict)
    documents: list[Any] = field(default_factory=list)
    """The documents added (``collector.manual.AddedDocument``), the CSV exports included."""
    attestations: int = 0
    people_missing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Who misses which requirement (``type item``) at the demo's people check."""
    review: Any = None
    """The demo's access review (``collector.identities.demo.DemoReview``)."""
    seconds: float = 0.0
    endpoints: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every stream collected and every snapshot verified."""
        return all(r.status == "ok" for r in self.runs) and bool(self.snapshots)


def _prepare(directory: Path | None) -> Path:
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="evidence-demo-"))
    if directory.exists() and any(directory.iterdir()):
        raise InputError(f"--dir {directory}: not empty; the demo needs a new or empty folder")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def run_demo(directory: Path | None = None, *, now: datetime | None = None,
             say: Callable[[str], None] | None = None) -> DemoResult:
    """Start the sandbox, collect, digest, seal, verify; always stop every server started."""
    from collector.collect import collect
    from collector.config import load_settings
    from collector.digest.job import run_digest
    from collector.seal.keys import create_key, public_key_path
    from collector.seal.snapshot import sealer_from_settings
    from collector.seal.verify import TrustedKeys, verify_chain
    from collector.windows import window_containing
    from storage import Store

    try:
        from sandbox.world import running_world
    except ModuleNotFoundError as exc:  # the production image leaves the fakes out
        if exc.name not in ("sandbox", "sandbox.world"):
            raise
        raise InputError("the demo needs the sandbox (local fakes), which this installation "
                         "leaves out; run it from a clone: see README.md") from None

    say = say or (lambda _: None)
    started = time.monotonic()
    now = now or datetime.now(UTC)
    root = _prepare(directory)
    say(f"[1/7] starting the sandbox (moto for AWS; fake Okta, GitHub, Jira) in {root}")
    with running_world(now) as (world, ep):
        config = root / "config.toml"
        config.write_text(CONFIG.format(aws=ep.aws, backup=ep.backup, okta=ep.okta,
                                        github=ep.github, jira=ep.jira))
        settings = load_settings(config)
        result = DemoResult(directory=root, config=config,
                            endpoints=[ep.aws, ep.backup, ep.okta, ep.github, ep.jira])
        key = create_key(settings.resolve(settings.signing.key_file))
        result.fingerprint = key.fingerprint
        result.public_key = public_key_path(key.path)
        store = Store.open(settings.storage_url)
        try:
            say(f"[2/7] collecting {world.start:%Y-%m-%d} .. {now:%Y-%m-%d} from every connector")
            result.runs = collect(
                settings, store,
                on_done=lambda r: say(f"      {r.stream:<28} {r.status:<8} {r.records_new:>6,} records"),
            )
            say("[3/7] adding a policy, its acknowledgements, a training export and a restore test")
            _add_documents(settings, store, root / "documents", now, result)
            say("      and an AWS access review made 10 days ago, one revocation not carried out")
            from collector.identities.demo import seed_review
            from collector.manual import open_files

            result.review = seed_review(settings, store, open_files(settings), root / "reviews", now)
            result.records = store.record_counts()
            result.exceptions = Counter(store.filing_counts(status="exception"))
            say("[4/7] writing the digest of the last complete week")
            done = run_digest(settings, store, now=now, send=False)
            result.digest, result.summary = done.paths, done.digest
            windows = settings.windows
            last_ended = window_containing(now, windows.period, windows.timezone).previous()
            say(f"[5/7] sealing every ended window up to {last_ended.id}")
            sealer = sealer_from_settings(settings, store)
            # The real clock, never the `now` the sandbox started with: records were collected
            # after it, and nothing is sealed before it was collected.
            sealer.clock = lambda: max(now, datetime.now(UTC))
            sealed = sealer.seal(last_ended.id)
            result.snapshots = [s.path for s in sealed]
        finally:
            store.close()
    say(f"[6/7] verifying the chain of {len(result.snapshots)} snapshots against the key fingerprint")
    verified = verify_chain(result.snapshots, TrustedKeys.load((), [result.fingerprint]),
                            on_verified=lambda v: say(f"      {v.path.name:<28} valid "
                                                      f"({v.records:,} records)"))
    if len(verified) > 1:
        say(f"      the chain of {len(verified)} snapshots is valid")
    result.seconds = time.monotonic() - started
    say("[7/7] sandbox stopped")
    return result


_POLICY = """# Information security policy, version 3

Approved by the CTO. Every person with access to Acme's systems reads this policy and
acknowledges it when they join and whenever a new version is published.
"""
_MATERIAL = """# Security awareness 2026: course outline

Phishing, passwords and MFA, reporting an incident, handling customer data.
"""
_RESTORE = """# Restore test report

The production database was restored from its latest automated snapshot into an isolated
account; row counts and checksums of five tables matched the source. Time to restore: 41 min.
"""


def _add_documents(settings: Any, store: Any, folder: Path, now: datetime, result: DemoResult) -> None:
    """Documents and attestations dated early in the last ended window (so the sealed snapshot holds
    them and the digest's week sees them as current): the policy and its acknowledgements by every
    active Okta user but one, the training export and its material, a restore-test report."""
    from datetime import timedelta

    from collector.attestations import parse_columns
    from collector.manual import (
        DocumentFacts,
        add_document,
        check_people,
        import_attestations,
        open_files,
        parse_period,
        read_roster,
    )
    from collector.windows import window_containing

    windows = settings.windows
    start = window_containing(now, windows.period, windows.timezone).previous().start
    day = [start + timedelta(days=n, hours=10) for n in range(12)]
    people = read_roster(settings, store).people
    folder.mkdir()
    blobs = open_files(settings)

    def document(name: str, text: str, facts: DocumentFacts) -> None:
        (folder / name).write_text(text)
        result.documents.append(add_document(settings, store, blobs, folder / name, facts, now=now))

    document("infosec-policy-v3.md", _POLICY, DocumentFacts(
        "infosec-policy", ("POL-01",), title="Information security policy v3",
        approved_by="cto@example.com", observed_at=day[1]))
    document("security-awareness-2026.md", _MATERIAL, DocumentFacts(
        "training-material", ("HR-03",), title="Security awareness 2026", observed_at=day[1]))
    period = parse_period(f"{day[4]:%Y-%m-%d}..{day[5]:%Y-%m-%d}")
    document("restore-test.md", _RESTORE, DocumentFacts(
        "restore-test", ("AV-03",), title="Quarterly restore test", approved_by="cto@example.com",
        period=period))
    # Every active person but the last acknowledges the policy: the one missing shows in the digest.
    (folder / "policy-acks.csv").write_text("Email,Policy,Signed\n" + "".join(
        f"{p},infosec-policy@v3,{day[2 + n % 5]:%Y-%m-%dT%H:%M:%SZ}\n" for n, p in enumerate(people[:-1])))
    (folder / "training.csv").write_text("Employee Email,Course,Completed On\n" + "".join(
        f"{p},Security awareness,{day[3 + n % 7]:%Y-%m-%d}\n" for n, p in enumerate(people)))
    for name, kind, columns in (("policy-acks.csv", "policy_ack", "person=Email,item=Policy,at=Signed"),
                                ("training.csv", "training",
                                 "person=Employee Email,item=Course,at=Completed On")):
        done = import_attestations(settings, store, blobs, folder / name, doc_type=kind,
                                   columns=parse_columns(columns), now=now)
        result.documents.append(done.document)
        result.attestations += done.new
    check = check_people(settings, store, now=now)
    if check is not None:
        result.people_missing = {f"{t} {i}": m for (t, i), m in check.missing.items() if m}


def _print_coverage(console: Any, digest: dict[str, Any]) -> None:
    """Coverage as the digest judged it: designed and operating criteria of those in scope, the
    design gaps, and each operating gap with the controls mapped to it and their owners."""
    cov = digest["coverage"]
    owner = {c["id"]: c["owner"] for c in digest["controls"]}
    in_scope = [c for c in digest["criteria"] if c["in_scope"]]
    design = [c["id"] for c in in_scope if not c["controls"]]
    gaps = [c for c in in_scope if c["controls"] and not c["operating"]]
    lines = [
        f"Coverage in {digest['week']} ({digest['library']['source']}): operating {cov['operating']} "
        f"of {cov['in_scope']} criteria in scope ({cov['ratio'] * 100:.1f}%), designed "
        f"{cov['designed']} of {cov['in_scope']}; design gaps: {', '.join(design) or 'none'}",
        f"Operating gaps ({len(gaps)}): no control mapped to the criterion operated this week; "
        "the owners named act:" if gaps else "Operating gaps: none",
    ]
    lines += [f"  {c['id']:<6} {c['status']:<12} "
              + ", ".join(f"{cid} ({owner[cid]})" for cid in c["controls"]) for c in gaps]
    # The library's text is printed as written: no markup, no wrapping inside a control's name.
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def print_report(result: DemoResult, out: TextIO = sys.stdout) -> None:
    """The short report: records per stream, exceptions per criterion, files, manual checks."""
    from rich.console import Console
    from rich.table import Table

    from collector.cli._common import program

    console = Console(file=out, width=110)
    streams = Table(title="Records per stream", title_justify="left")
    for column in ("stream", "status", "records"):
        streams.add_column(column, justify="right" if column == "records" else "left")
    for run in result.runs:
        streams.add_row(run.stream, run.status, f"{result.records.get(run.stream, 0):,}")
    console.print(streams)
    exceptions = Table(title="Exceptions per criterion", title_justify="left")
    exceptions.add_column("criterion")
    exceptions.add_column("exception records", justify="right")
    for criterion, count in sorted(result.exceptions.items()):
        exceptions.add_row(criterion, f"{count:,}")
    console.print(exceptions)
    if result.summary:
        _print_coverage(console, result.summary)
    first = result.snapshots[-1] if result.snapshots else None
    chain = " ".join(str(p) for p in result.snapshots)
    lines = [
        f"Documents:  {len(result.documents)} stored write-once in {result.directory / 'files'}; "
        f"{result.attestations} attestations point to their CSV exports",
        *(f"            missing {req}: {', '.join(who)}" for req, who in result.people_missing.items()),
        *([f"Review:     {result.review.started.campaign.id}: {result.review.decisions} decisions "
           f"(collector review status)"] if result.review is not None else []),
        f"Everything is in {result.directory} (config: {result.config})",
        f"Digest:     {result.digest.get('html')}",
        f"            {result.digest.get('md')}",
        f"            {result.digest.get('json')}",
        "Snapshots:  " + "\n            ".join(str(p) for p in result.snapshots),
        f"Sealing key fingerprint (SPKI SHA-256), hand it to the auditor out of band:\n"
        f"            {result.fingerprint}",
        "",
        "Verify with the collector (needs no config):",
        f"  {program()} verify {chain} --fingerprint {result.fingerprint}",
    ]
    if first is not None:
        lines += [
            "Verify by hand with plain tools:",
            f'  cd "$(mktemp -d)" && tar -xf {first.absolute()}',
            f"  sh verify.sh {result.fingerprint}   # the steps below in one script, files not listed too",
            "  openssl pkey -pubin -in keys/seal.pub.pem -outform DER | sha256sum   "
            "# must print the fingerprint above",
            "  openssl pkeyutl -verify -pubin -inkey keys/seal.pub.pem -rawin -in SHA256SUMS "
            "-sigfile SHA256SUMS.ed25519",
            "  sha256sum -c --strict SHA256SUMS",
        ]
    lines.append(f"Done in {result.seconds:.1f} s; every server the demo started is stopped.")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)
