"""The record-line walker and the chain link: one definition for sealing and verifying alike."""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
from pathlib import Path

import orjson
from seal_helpers import Env, add, record, utc

from collector.seal import _format as fmt
from collector.seal.merkle import leaf_hash
from collector.seal.snapshot import _link
from collector.seal.verify import TrustedKeys, verify_snapshot
from storage.snapshots import snapshot_rows


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH over leaf hashes, by its recursive definition."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_the_walker_rebuilds_what_the_sealer_wrote(env: Env) -> None:
    """Walking a sealed records.jsonl line by line gives its Merkle root (leaves through
    ``merkle.leaf_hash``), its SHA-256, and each population file byte for byte."""
    add(env.store, [record(f"2026-10-{d:02d}T10:00:00", exception="no MFA" if d % 5 == 0 else None)
                    for d in range(1, 21)])
    add(env.store, [record("2026-10-07T11:00:00", controls=("CC8.1",), key="=cmd|' /C calc'!A0")])
    [snap] = env.sealer().seal("2026-10")
    members = _members(snap.path)
    lines = members["records.jsonl"].splitlines()
    written: dict[str, io.BytesIO] = {}
    walk = fmt.RecordWalk(lambda control: written.setdefault(control, io.BytesIO()))
    for line in lines:
        obj = orjson.loads(line)
        walk.add(line, walk.row(obj["id"], obj), obj["controls"], obj["status"] == "exception",
                 obj["collected_at"])
    manifest = orjson.loads(members["manifest.json"])
    assert walk.count == len(lines) == 21
    assert walk.tree.root_hex() == manifest["merkle"]["root"] == _mth([leaf_hash(x) for x in lines]).hex()
    assert walk.digest.hexdigest() == hashlib.sha256(members["records.jsonl"]).hexdigest()
    assert set(written) == {"CC6.1", "CC7.2", "CC8.1"}
    for control, out in written.items():
        assert out.getvalue() == members[f"criteria/{control}.csv"]
        pop = walk.populations[control]
        assert pop.digest.hexdigest() == hashlib.sha256(out.getvalue()).hexdigest()
        rows = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))[1:]
        assert pop.count == len(rows) == manifest["criteria"][control]
        assert pop.exceptions == sum(row[5] == "exception" for row in rows)
    assert walk.populations["CC6.1"].exceptions == 4


def test_the_sealer_writes_the_link_the_verifier_expects(env: Env) -> None:
    """The ``previous`` object made from a stored snapshot row equals the one the verifier builds
    from the snapshot file, and names exactly the chained fields."""
    add(env.store, [record("2026-09-03T00:00:00"), record("2026-10-09T00:00:00")])
    env.clock.now = utc("2026-11-20T12:00:00")
    sealed = env.sealer().seal("2026-10")
    rows = snapshot_rows(env.store)
    trust = TrustedKeys.load([env.pub])
    for row, snap in zip(rows, sealed, strict=True):
        link = _link(row)
        assert link is not None and tuple(link) == fmt.CHAINED_FIELDS
        assert link == verify_snapshot(snap.path, trust).link()
    assert _link(None) is None
