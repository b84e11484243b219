"""The tamper matrix for bench/reliability.py: each change to a sealed chain must fail verification.

Re-implements the cases of tests/collector/seal/test_verify_tamper.py on the public seal APIs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from seal_helpers import Members, extract, lines, pack, resum  # tests/collector/seal, on sys.path

from collector.records import build_record, format_ts
from collector.seal import _format as fmt
from collector.seal.keys import SealingKey, create_key, public_key_path, public_pem
from collector.seal.snapshot import Sealer, SealOptions
from collector.seal.verify import TrustedKeys, VerificationError, verify_chain
from storage import Store


@dataclass
class Chain:
    """Three sealed months and the key that sealed them."""

    paths: list[Path]
    key: SealingKey
    work: Path


def build_chain(work: Path) -> Chain:
    """Seal August to October 2026, 20 records a month, every fourth an exception."""
    store = Store.open(f"sqlite:///{work / 'tamper.db'}")
    key = create_key(work / "keys" / "seal.pem")
    rows, filings = [], []
    for month in (8, 9, 10):
        for day in range(1, 21):
            observed = datetime(2026, month, day, day % 10, tzinfo=UTC)
            r = build_record(
                stream="synthetic.events", source_key=f"evt-{month}-{day}", kind="access_log",
                observed_at=format_ts(observed), collected_at=format_ts(observed + timedelta(minutes=5)),
                actor=f"user{day % 7}@example.com", source_url=f"https://synthetic.invalid/{month}/{day}",
                raw_sha256="ab" * 32, data={"n": day}, exception_reason="no MFA" if day % 4 == 0 else None,
                controls=("CC6.1", "CC7.2"), run_id="run-1")
            rows.append(r)
            filings.extend((c, r.observed_at, r.id, r.stream, r.status) for c in ("CC6.1", "CC7.2"))
    with store.engine.begin() as conn:
        store.insert_records(conn, rows, filings)
    options = SealOptions(period="month", zone="UTC", out_dir=work / "snapshots")
    sealed = Sealer(store, options, key, clock=lambda: datetime(2026, 11, 20, 12, tzinfo=UTC)).seal("2026-10")
    store.close()
    return Chain([s.path for s in sealed], key, work)


def _records(edit: Callable[[list[bytes]], None]) -> Callable[[Members, Chain], None]:
    def mutate(m: Members, c: Chain) -> None:
        ls = lines(m)
        edit(ls)
        m["records.jsonl"] = b"".join(ls)
    return mutate


def _swap(ls: list[bytes]) -> None:
    ls[0], ls[1] = ls[1], ls[0]


def _resign_own_key(m: Members, c: Chain) -> None:
    m["records.jsonl"] = b"".join(lines(m)[1:])
    resum(m)
    attacker = Ed25519PrivateKey.generate()
    m["keys/seal.pub.pem"] = public_pem(attacker.public_key())
    resum(m)
    m["SHA256SUMS.ed25519"] = attacker.sign(m["SHA256SUMS"])


def _resign_population(m: Members, c: Chain) -> None:
    rows = m["criteria/CC6.1.csv"].splitlines(keepends=True)
    m["criteria/CC6.1.csv"] = b"".join(r for r in rows if b",exception," not in r)
    resum(m)
    m["SHA256SUMS.ed25519"] = c.key.sign(m["SHA256SUMS"])


def _set(name: str, value: Callable[[Members], bytes]) -> Callable[[Members, Chain], None]:
    def mutate(m: Members, c: Chain) -> None:
        m[name] = value(m)
    return mutate


def _delete(name: str) -> Callable[[Members, Chain], None]:
    def mutate(m: Members, c: Chain) -> None:
        del m[name]
    return mutate


SINGLE: dict[str, Callable[[Members, Chain], None]] = {
    "flip a byte in a record": _records(lambda ls: ls.__setitem__(1, ls[1].replace(b"evt-", b"evu-", 1))),
    "delete a line": _records(lambda ls: ls.__delitem__(2)),
    "duplicate a line": _records(lambda ls: ls.insert(2, ls[1])),
    "reorder lines": _records(_swap),
    "add a file": _set("notes.txt", lambda m: b"nothing to see\n"),
    "remove a file": _delete("criteria/CC6.1.csv"),
    "edit the manifest": _set("manifest.json",
                              lambda m: m["manifest.json"].replace(b'"CC6.1":20', b'"CC6.1":19')),
    "edit a population file": _set("criteria/CC6.1.csv",
                                   lambda m: m["criteria/CC6.1.csv"].replace(b",exception,", b",ok,", 1)),
    "edit the OSCAL": _set(fmt.FILE_OSCAL,
                           lambda m: m[fmt.FILE_OSCAL].replace(b"not-satisfied", b"satisfied", 1)),
    "forge the signature": _set("SHA256SUMS.ed25519",
                                lambda m: Ed25519PrivateKey.generate().sign(m["SHA256SUMS"])),
    "re-sign after editing, with another key": _resign_own_key,
    "re-sign a doctored population with the real key": _resign_population,
}


def _detected(paths: list[Path], trust: TrustedKeys) -> bool:
    try:
        verify_chain(paths, trust)
    except VerificationError:
        return True
    return False


def run_tamper(work: Path) -> tuple[int, int, list[str]]:
    """(detected, tried, names of undetected cases); the untouched chain must verify first."""
    chain = build_chain(work)
    trust = TrustedKeys.load([str(public_key_path(chain.key.path))], [])
    verify_chain(chain.paths, trust)  # raises if the untouched chain does not verify
    detected, tried, missed = 0, 0, []
    out = work / "tampered"
    out.mkdir()

    def check(name: str, paths: list[Path]) -> None:
        nonlocal detected, tried
        tried += 1
        if _detected(paths, trust):
            detected += 1
        else:
            missed.append(name)

    for n, (name, mutate) in enumerate(SINGLE.items()):
        members = extract(chain.paths[1])
        mutate(members, chain)
        folder = out / f"{n:02d}"
        folder.mkdir()
        check(name, [pack(members, folder / chain.paths[1].name)])
    cut = out / "cut" / chain.paths[1].name
    cut.parent.mkdir()
    data = chain.paths[1].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    check("truncate the archive", [cut])
    members = extract(chain.paths[1])
    members["README.txt"] += b"(edited later)\n"
    resum(members)
    members["SHA256SUMS.ed25519"] = chain.key.sign(members["SHA256SUMS"])
    (out / "rewrite").mkdir()
    rewritten = pack(members, out / "rewrite" / chain.paths[1].name)
    check("rewrite a sealed snapshot with the real key", [chain.paths[0], rewritten, chain.paths[2]])
    check("skip a link of the chain", [chain.paths[0], chain.paths[2]])
    check("give the chain out of order", [chain.paths[1], chain.paths[0]])
    other = TrustedKeys.load([], ["0" * 64])
    tried += 1
    try:
        verify_chain(chain.paths[:1], other)
        missed.append("verify against an unpinned key")
    except VerificationError:
        detected += 1
    return detected, tried, missed
