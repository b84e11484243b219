"""Shared parts of the reliability suite (tests/e2e) and bench/reliability.py: configs, runs, record sets."""

from __future__ import annotations

import copy
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

from collector.config import DERIVED_STREAMS
from collector.demo import CONFIG
from sandbox._http import Drop, FakeServer, Fault, Response, Slow, Status, Truncated
from sandbox.github import internal_error, secondary_rate_limit, too_many_requests
from sandbox.okta import RateLimit
from sandbox.world import SandboxWorld, WorldEndpoints, running_world

ROOT = Path(__file__).resolve().parents[2]

# State streams store a new record per read (observed_at = read time): compare them by what
# was read, not by record id. aws.rds_snapshots mixes snapshots (events) with retention reads.
STATE_STREAMS = frozenset({
    "okta.users", "aws.iam_credential_report", "aws.rds_snapshots", "aws.iam_users",
    "github.branch_protection", "github.org_settings", "github.members",
})
ALL_STREAMS = (
    "aws.cloudtrail", "aws.iam_credential_report", "aws.backup_jobs", "aws.rds_snapshots", "aws.iam_users",
    "okta.system_log", "okta.users", "github.pull_requests", "github.branch_protection",
    "github.org_settings", "github.members", "jira.change_tickets", "jira.incidents",
)


# -- the world's fakes ----------------------------------------------------------------------

@contextmanager
def small_world(days: int = 21, seed: int = 7,
                env: Mapping[str, str] | None = None) -> Iterator[tuple[SandboxWorld, WorldEndpoints]]:
    """``sandbox.world.running_world`` over the last ``days`` days only (a third of the demo's
    volume, so a collection takes seconds), with ``env`` (default: the demo's credentials) set."""
    now = datetime.now(UTC)
    with running_world(now, seed, start=now - timedelta(days=days), env=env) as started:
        yield started


def fakes(world: SandboxWorld) -> dict[str, FakeServer]:
    """The four vendor fakes of a started world, by name (moto is left out: it has no fault queue)."""
    names = {"FakeBackup": "backup", "FakeOkta": "okta", "FakeGithub": "github", "FakeJira": "jira"}
    return {names[type(s).__name__]: s for s in world.servers if type(s).__name__ in names}


def lift_rate_limits(world: SandboxWorld) -> None:
    """Give the fakes' own rate-limit budgets room for many collections in a minute.

    Okta's buckets hold 600 a minute and GitHub's core budget 5000 an hour; the suite runs
    dozens of collections back to back, which a real org would not. Injected 429s stay.
    """
    f = fakes(world)
    okta: Any = f["okta"]
    okta.limits.update({b: RateLimit(limit=1_000_000) for b in okta.limits})
    github: Any = f["github"]
    with github.lock:
        github._used = 0


def clear_faults(world: SandboxWorld) -> None:
    """Turn every queued and random fault off."""
    for fake in fakes(world).values():
        fake.faults.clear()


def faults_logged(world: SandboxWorld) -> int:
    """How many requests the fakes answered with an injected fault so far."""
    return sum(1 for fake in fakes(world).values() for r in fake.requests if r.fault is not None)


def vendor_faults(world: SandboxWorld) -> dict[str, list[Fault]]:
    """For each fake: 429 with the vendor's own rate-limit headers, 5xx, truncated, slow, dropped."""
    f = fakes(world)
    okta: Any = f["okta"]
    jira_429 = Status(429, [("Retry-After", "1"), ("X-RateLimit-Limit", "350"),
                            ("X-RateLimit-Remaining", "0"), ("X-RateLimit-NearLimit", "true"),
                            ("RateLimit-Reason", "jira-burst-based")],
                      {"errorMessages": ["Rate limit exceeded."]})
    aws_429 = Status(429, [("Retry-After", "1")],
                     {"__type": "ThrottlingException", "message": "Rate exceeded"})
    common: list[Fault] = [Status(500), Status(503), Truncated(), Slow(0.3), Drop()]
    return {
        "okta": [okta.rate_limited("logs", reset_in=1), *common],
        "github": [too_many_requests(1), secondary_rate_limit(1), internal_error(502), *common],
        "jira": [jira_429, *common],
        "backup": [aws_429, Status(500, body={"__type": "ServiceUnavailableException"}), *common[1:]],
    }


@contextmanager
def mutated(fake: FakeServer, path: str, edit: Callable[[Any], Any]) -> Iterator[None]:
    """Answers for paths matching ``path`` (a regex) pass through ``edit`` (on a deep copy) while
    the block runs: how the suite serves a vendor payload the real API would not send."""
    original = fake._respond

    def respond(request: Any) -> Response:
        response = original(request)
        if response.status != 200 or not re.search(path, request.path):
            return response
        body = response.body
        if isinstance(body, bytes | bytearray):
            import json
            body = json.loads(body)
        return Response(200, edit(copy.deepcopy(body)), response.headers)

    fake._respond = respond  # type: ignore[method-assign]
    try:
        yield
    finally:
        del fake._respond


# -- configs and commands ----------------------------------------------------------------------

def write_config(folder: Path, ep: WorldEndpoints, extra: str = "") -> Path:
    """The demo's config for the world's endpoints (120 days of backfill, no request spacing)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    text = CONFIG.format(aws=ep.aws, backup=ep.backup, okta=ep.okta, github=ep.github, jira=ep.jira)
    path.write_text(text + extra)
    return path


def cli(config: Path | None, *args: str, env: Mapping[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``collector`` in a fresh process and capture its output."""
    head = ["--config", str(config)] if config is not None else []
    return subprocess.run([sys.executable, "-m", "collector.cli", *head, *args], capture_output=True,
                          text=True, timeout=timeout, env=dict(env) if env is not None else None,
                          cwd=ROOT)


def start_collect(config: Path, stderr: Path) -> subprocess.Popen[bytes]:
    """Start ``collector collect`` in the background; its stderr goes to ``stderr``."""
    with stderr.open("ab") as err:
        return subprocess.Popen([sys.executable, "-m", "collector.cli", "--config", str(config), "collect"],
                                stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)


# -- what a store holds ----------------------------------------------------------------------

@dataclass(frozen=True)
class RecordSet:
    """A store's evidence, comparable across runs: event records by id, state reads by what was read."""

    events: frozenset[tuple[str, str]]            # (stream, id)
    states: frozenset[tuple[str, str, str, str]]  # (stream, source_key, kind, status)
    ids: tuple[str, ...] = field(repr=False, default=())

    def stream(self, stream: str) -> tuple[frozenset[Any], frozenset[Any]]:
        """This set restricted to one stream."""
        return (frozenset(e for e in self.events if e[0] == stream),
                frozenset(s for s in self.states if s[0] == stream))

    def differences(self, other: RecordSet) -> list[str]:
        """What differs, per stream, as short lines (empty when equal)."""
        out = []
        for stream in ALL_STREAMS:
            mine, theirs = self.stream(stream), other.stream(stream)
            for label, a, b in (("events", mine[0], theirs[0]), ("state reads", mine[1], theirs[1])):
                if a != b:
                    out.append(f"{stream} {label}: {len(a - b)} extra, {len(b - a)} missing")
        return out


def store_problems(db: Path) -> list[str]:
    """Integrity problems: SQLite's own check, duplicate ids, records whose filings are not all there."""
    problems = []
    with sqlite3.connect(db) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            problems.append(f"integrity_check: {check}")
        tables = _tables(conn)
        if "evidence" not in tables:  # killed before the schema committed: all of it or none
            return problems + ([f"half-migrated store: {sorted(tables)}"] if tables else [])
        dup = conn.execute("SELECT count(*) - count(DISTINCT id) FROM evidence").fetchone()[0]
        if dup:
            problems.append(f"{dup} duplicate record ids")
        unfiled = conn.execute(
            "SELECT count(*) FROM evidence e WHERE json_array_length(json_extract(e.body, '$.controls'))"
            " != (SELECT count(*) FROM filings f WHERE f.record_id = e.id)").fetchone()[0]
        if unfiled:
            problems.append(f"{unfiled} records without all their filings")
    return problems


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def record_set(db: Path) -> RecordSet:
    """The comparable content of a store."""
    events, states, ids = set(), set(), []
    with sqlite3.connect(db) as conn:
        if "evidence" not in _tables(conn):
            return RecordSet(frozenset(), frozenset(), ())
        for rid, stream, key, kind, status in conn.execute(
                "SELECT id, stream, source_key, kind, status FROM evidence ORDER BY id"):
            if stream in DERIVED_STREAMS:
                # Derived checks read the store, not a vendor: after a kill or a fault they see
                # whatever of their inputs was stored then, so each store's reads differ by design.
                # Collection is what these comparisons prove; the checks have their own tests.
                continue
            ids.append(rid)
            if stream in STATE_STREAMS:
                states.add((stream, key, kind, status))
            else:
                events.add((stream, rid))
    return RecordSet(frozenset(events), frozenset(states), tuple(ids))


def latest_runs(db: Path) -> dict[str, tuple[str, str | None]]:
    """Each stream's most recent run: (status, error)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT stream, status, error FROM runs ORDER BY started_at").fetchall()
    return {stream: (status, error) for stream, status, error in rows}


def checkpoint(db: Path) -> None:
    """Fold the WAL into the database file, so the file alone is the whole store."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# -- crash safety ----------------------------------------------------------------------------

@dataclass
class KillReport:
    """The outcome of the kill rounds."""

    tried: int = 0
    survived: int = 0
    where: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def slow_down(world: SandboxWorld, seconds: float) -> None:
    """Every request to every fake waits ``seconds`` (GitHub, with ~30x the requests, a tenth of it)."""
    for name, fake in fakes(world).items():
        fake.faults.random(Random(0), 1.0, [Slow(seconds / 10 if name == "github" else seconds)])


def _kill_store(ep: WorldEndpoints, world: SandboxWorld, folder: Path, at: list[float],
                expected: RecordSet) -> KillReport:
    report = KillReport()
    config = write_config(folder, ep)
    db = folder / "evidence.db"
    log = folder / "stderr.log"
    for instant in at:
        lift_rate_limits(world)
        proc = start_collect(config, log)
        try:
            proc.wait(timeout=instant)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            report.tried += 1
            started = [ln for ln in log.read_text().splitlines() if ln.startswith("collecting ")]
            report.where.append(f"{instant:.2f}s {started[-1].split()[1] if started else '(starting)'}")
        if db.exists():
            problems = store_problems(db)
            extra = record_set(db).events - expected.events
            if problems or extra:
                report.failures.append(f"{folder.name} after a kill: {problems}, {len(extra)} unknown records")
    lift_rate_limits(world)
    final = cli(config, "collect")
    problems = store_problems(db)
    diff = record_set(db).differences(expected)
    if final.returncode != 0 or problems or diff:
        report.failures.append(f"{folder.name}: exit {final.returncode} {problems} {diff} {final.stderr[-500:]}")
    else:
        report.survived = report.tried
    return report


def kill_rounds(world: SandboxWorld, ep: WorldEndpoints, base: Path, expected: RecordSet, *,
                kills: int, seed: int, span: float, workers: int = 2) -> KillReport:
    """SIGKILL ``kills`` collections at seeded random instants within ``span`` seconds of their start
    (one or two per store, ``workers`` stores at a time), then rerun each store to completion and
    compare it with ``expected``. The caller slows the fakes (``slow_down``). An instant that comes
    after the process has finished is no kill and is not counted: stores are added until ``kills``
    kills landed (bounded)."""
    from concurrent.futures import ThreadPoolExecutor

    rng = Random(seed)
    total = KillReport()
    store_no = 0
    while total.tried < kills and store_no < kills * 2:
        plans = []
        need = kills - total.tried
        while need > 0:
            per_store = min(need, 1 + store_no % 2)
            plans.append((base / f"store{store_no}", [rng.uniform(0.8, span) for _ in range(per_store)]))
            store_no += 1
            need -= per_store
        with ThreadPoolExecutor(workers) as pool:
            for r in pool.map(lambda p: _kill_store(ep, world, p[0], p[1], expected), plans):
                total.tried += r.tried
                total.survived += r.survived
                total.where += r.where
                total.failures += r.failures
    return total


# -- fault tolerance --------------------------------------------------------------------------

FAULT_RATES = {"okta": 0.2, "github": 0.012, "jira": 0.4, "backup": 0.5}


@dataclass
class FaultReport:
    """The outcome of the fault rounds."""

    injected: int = 0
    converged: int = 0
    rounds: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def fault_rounds(world: SandboxWorld, ep: WorldEndpoints, base: Path, expected: RecordSet, *,
                 rounds: int, seed: int, max_reruns: int = 3,
                 rates: Mapping[str, float] = FAULT_RATES) -> FaultReport:
    """Collect with seeded random vendor faults in every fake; each stream must end ok with the
    clean run's records, or not ok and converge within ``max_reruns`` fault-free reruns."""
    report = FaultReport()
    kinds = vendor_faults(world)
    for n in range(rounds):
        folder = base / f"faults{n}"
        config = write_config(folder, ep)
        db = folder / "evidence.db"
        before = faults_logged(world)
        lift_rate_limits(world)
        for name, fake in fakes(world).items():
            fake.faults.random(Random(seed * 1000 + n * 10 + len(name)), rates[name], kinds[name])
        first = cli(config, "collect")
        clear_faults(world)
        injected = faults_logged(world) - before
        report.injected += injected
        ok = True
        if "Traceback" in first.stderr or store_problems(db):
            report.failures.append(f"round {n}: {store_problems(db)} {first.stderr[-800:]}")
            ok = False
        runs = latest_runs(db)
        got = record_set(db)
        not_ok = sorted(s for s, (status, _) in runs.items() if status != "ok")
        for stream, (status, _) in runs.items():
            if status == "ok" and got.stream(stream) != expected.stream(stream):
                report.failures.append(f"round {n}: {stream} ended ok with a different record set")
                ok = False
        reruns = 0
        while not_ok and reruns < max_reruns:
            reruns += 1
            lift_rate_limits(world)
            cli(config, "collect")
            not_ok = sorted(s for s, (status, _) in latest_runs(db).items() if status != "ok")
        diff = record_set(db).differences(expected)
        if not_ok or diff or store_problems(db):
            report.failures.append(f"round {n}: still not ok {not_ok}, {diff}")
            ok = False
        if ok:
            report.converged += injected
        report.rounds.append(f"round {n}: {injected} faults, first run not ok: "
                             f"{[s for s, (st, _) in runs.items() if st != 'ok']}, reruns {reruns}")
    return report
