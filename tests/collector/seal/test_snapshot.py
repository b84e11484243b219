"""Sealing: deterministic tars, windows sealed in order, empty windows, amendments, refusals."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import orjson
import pytest
from seal_helpers import Clock, Env, add, record, utc

from collector.canonical import canonical
from collector.errors import InputError
from collector.records import full_record
from collector.seal.merkle import EMPTY_ROOT
from collector.seal.verify import TrustedKeys, verify_chain, verify_snapshot
from storage import Store
from storage.snapshots import snapshot_rows


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _trust(env: Env) -> TrustedKeys:
    return TrustedKeys.load([env.pub])


def test_reseal_is_byte_identical_and_late_records_go_to_an_amendment(env: Env) -> None:
    """Re-sealing a window reproduces the same bytes even after late records arrive; --amend holds them."""
    add(env.store, [record(f"2026-10-{d:02d}T10:00:00") for d in range(1, 29)])
    [first] = env.sealer().seal("2026-10")
    original = first.path.read_bytes()
    late = record("2026-10-15T11:00:00", exception="late and failing")
    add(env.store, [late])
    env.clock.now = utc("2026-11-25T00:00:00")
    first.path.unlink()
    [again] = env.sealer().seal("2026-10")
    assert again.reproduced and again.path.read_bytes() == original
    amendment = env.sealer().amend("2026-10")
    assert amendment is not None and amendment.path.name == "2026-10.amend-1.tar"
    lines = _members(amendment.path)["records.jsonl"].splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == [late.id]
    manifest = orjson.loads(_members(amendment.path)["manifest.json"])
    assert manifest["amends"] == "2026-10" and manifest["seq"] == 1
    assert env.sealer().amend("2026-10") is None
    verify_chain([first.path, amendment.path], _trust(env))
    # Both the snapshot and its amendment are re-written identically.
    amended_bytes = amendment.path.read_bytes()
    again = env.sealer().seal("2026-10")
    assert [r.path.read_bytes() for r in again] == [original, amended_bytes]


def test_sealing_a_window_seals_every_earlier_unsealed_window_first_including_empty_ones(env: Env) -> None:
    """Records in August and October: sealing October seals August, empty September, then October, chained."""
    add(env.store, [record("2026-08-03T00:00:00"), record("2026-10-09T00:00:00")])
    sealed = env.sealer().seal("2026-10")
    assert [s.window_id for s in sealed] == ["2026-08", "2026-09", "2026-10"]
    september = sealed[1]
    assert september.records == 0 and september.merkle_root == EMPTY_ROOT.hex()
    assert _members(september.path)["records.jsonl"] == b""
    done = verify_chain([s.path for s in sealed], _trust(env))
    assert done[0].previous is None and done[2].previous == done[1].link()
    rows = snapshot_rows(env.store)
    assert [r.window_id for r in rows] == ["2026-08", "2026-09", "2026-10"]
    assert rows[0].sealed_at < rows[1].sealed_at < rows[2].sealed_at


def test_empty_store_seals_an_empty_genesis_window(env: Env) -> None:
    """With no evidence at all, the due window is still sealed: empty, genesis, valid."""
    env.clock.now = utc("2026-11-02T01:00:00")
    [only] = env.sealer().seal()
    assert only.window_id == "2026-10" and only.records == 0
    verified = verify_snapshot(only.path, _trust(env))
    assert verified.previous is None and verified.controls == {} and verified.criteria == {}


def test_default_window_waits_for_the_grace_period(env: Env) -> None:
    """The default is the last window whose end plus the grace period has passed."""
    env.clock.now = utc("2026-12-01T12:00:00")
    assert env.sealer().due_window().id == "2026-10"
    env.clock.now = utc("2026-12-02T00:00:01")
    assert env.sealer().due_window().id == "2026-11"
    env.clock.now = utc("2026-12-02T00:00:01")
    assert env.sealer(period="week").due_window().id == "2026-W48"


def test_refuses_windows_that_have_not_ended_or_are_of_another_period(env: Env) -> None:
    """Sealing an unfinished window, or a week when windows are months, is an input error."""
    with pytest.raises(InputError, match="has not ended"):
        env.sealer().seal("2026-11")
    with pytest.raises(InputError, match="is a week"):
        env.sealer().seal("2026-W40")
    with pytest.raises(InputError, match="not sealed yet"):
        env.sealer().amend("2026-10")
    assert snapshot_rows(env.store) == []


def test_tar_is_deterministic_ustar_with_sorted_members_and_fixed_owner(env: Env) -> None:
    """Members are sorted, regular, owned by 0/0 with mode 0644 and the sealed_at mtime."""
    add(env.store, [record("2026-10-01T00:00:00")])
    [snap] = env.sealer(in_scope=("CC8.1",)).seal("2026-10")
    with tarfile.open(snap.path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert set(names) == {"README.txt", "SHA256SUMS", "SHA256SUMS.ed25519", "criteria/CC6.1.csv",
                          "criteria/CC7.2.csv", "criteria/CC8.1.csv", "keys/seal.pub.pem",
                          "manifest.json", "oscal/assessment-results.json", "records.jsonl",
                          "controls.json", "verify.sh"}
    assert {(m.uid, m.gid, m.uname, m.gname, m.mode, m.type) for m in members} == {
        (0, 0, "", "", 0o644, tarfile.REGTYPE)}
    manifest = orjson.loads(_members(snap.path)["manifest.json"])
    assert {m.mtime for m in members} == {int(utc(manifest["sealed_at"][:19]).timestamp())}
    assert manifest["criteria"] == {"CC6.1": 1, "CC7.2": 1, "CC8.1": 0}
    assert _members(snap.path)["criteria/CC8.1.csv"] == (
        b"record_id,observed_at,stream,source_key,actor,status,exception_reason,source_url\r\n")


def test_records_file_is_canonical_sorted_and_hashes_to_the_ids(env: Env) -> None:
    """Each line is the full record's JCS bytes, sorted by (observed_at, id), with the stored id."""
    records = [record("2026-10-05T00:00:00"), record("2026-10-02T00:00:00"),
               record("2026-10-02T00:00:00")]
    add(env.store, records)
    [snap] = env.sealer().seal("2026-10")
    lines = _members(snap.path)["records.jsonl"].splitlines()
    expected = sorted(records, key=lambda r: (r.observed_at, r.id))
    assert lines == [canonical(full_record(r)) for r in expected]
    for line in lines:
        body = orjson.loads(line)
        rid = body.pop("id")
        del body["collected_at"], body["run_id"]
        assert hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest() == rid


def test_population_cells_that_look_like_formulas_are_neutralised(env: Env) -> None:
    """A source key or actor like "=HYPERLINK(...)" is text in the CSV, exact in records.jsonl."""
    from collector.records import build_record, format_ts, parsed_body

    base = record("2026-10-03T00:00:00", key="=HYPERLINK(\"http://x.invalid\",\"open\")")
    body = parsed_body(base)
    hostile = build_record(
        stream=base.stream, source_key=base.source_key, kind=base.kind,
        observed_at=format_ts(utc("2026-10-03T00:00:00")),
        collected_at=format_ts(utc("2026-10-03T00:05:00")), actor="@SUM(1+1)",
        source_url=body["source_url"], raw_sha256=body["raw_sha256"], data=body["data"],
        exception_reason="-2+3", controls=tuple(body["controls"]), run_id=base.run_id,
    )
    add(env.store, [hostile, record("2026-10-04T00:00:00")])
    [snap] = env.sealer().seal("2026-10")
    members = _members(snap.path)
    rows = members["criteria/CC6.1.csv"].decode().splitlines()
    [row] = [r for r in rows if r.startswith(hostile.id)]
    cells = row.split(",", 3)[3]
    assert cells.startswith("\"'=HYPERLINK(") and ",'@SUM(1+1),exception,'-2+3," in cells
    assert b'"actor":"@SUM(1+1)"' in members["records.jsonl"]
    verify_snapshot(snap.path, _trust(env))


def test_reseal_on_each_backend_is_identical(tmp_path: Path, store_url: str) -> None:
    """On SQLite and PostgreSQL alike, sealing, storing, and re-sealing give the same tar."""
    from collector.seal.keys import create_key
    from collector.seal.snapshot import Sealer, SealOptions

    store = Store.open(store_url)
    try:
        add(store, [record(f"2026-10-{d:02d}T08:00:00") for d in range(1, 11)])
        key = create_key(tmp_path / "k.pem")
        options = SealOptions(period="month", zone="UTC", out_dir=tmp_path / "out")
        clock = Clock()
        [snap] = Sealer(store, options, key, clock=clock).seal("2026-10")
        first = snap.path.read_bytes()
        add(store, [record("2026-10-03T09:00:00")])
        [again] = Sealer(store, options, key, clock=clock).seal("2026-10")
        assert again.reproduced and again.path.read_bytes() == first
        assert hashlib.sha256(io.BytesIO(first).getvalue()).hexdigest()
    finally:
        store.close()


def test_snapshot_tables_are_append_only(env: Env) -> None:
    """The store refuses UPDATE and DELETE on snapshots, their contents and their record ids."""
    import sqlalchemy as sa

    add(env.store, [record("2026-10-04T00:00:00")])
    env.sealer().seal("2026-10")
    for statement in ("UPDATE snapshots SET record_count = 0", "DELETE FROM snapshot_contents",
                      "UPDATE snapshot_record_ids SET ids = x'00'", "DELETE FROM snapshot_record_ids"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), env.store.engine.begin() as conn:
            conn.exec_driver_sql(statement)


def test_sealing_refuses_a_snapshot_stamped_before_its_evidence_was_collected(env: Env) -> None:
    """A record collected after the sealer's clock makes the seal fail naming the record, and stores
    nothing; once the clock has passed it the same window seals, stamped after the collection."""
    from collector.seal.snapshot import SealError
    from storage.snapshots import snapshot_rows

    late = record("2026-10-03T00:00:00", collected="2026-11-20T12:30:00")
    add(env.store, [record("2026-10-02T00:00:00"), late])
    with pytest.raises(SealError, match=f"record {late.id} was collected at 2026-11-20T12:35:00"):
        env.sealer().seal("2026-10")
    assert snapshot_rows(env.store) == []
    env.clock.now = utc("2026-11-20T13:00:00")
    [snap] = env.sealer().seal("2026-10")
    assert snap.records == 2


def test_verify_refuses_a_v3_snapshot_sealed_before_a_record_was_collected(
        env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A v3 manifest whose sealed_at is moved before a record's collected_at (and re-signed with the
    real key) fails `collector verify`, naming the record's line."""
    from seal_helpers import extract, pack, resign

    from collector.cli import main

    add(env.store, [record("2026-10-02T00:00:00", collected="2026-11-01T00:00:00")])
    [snap] = env.sealer().seal("2026-10")
    members = extract(snap.path)
    members["manifest.json"] = members["manifest.json"].replace(
        b'"sealed_at":"2026-11-20T12:00:00.000000Z"', b'"sealed_at":"2026-11-01T00:01:00.000000Z"')
    resign(members, env.key)
    bad = pack(members, tmp_path / snap.path.name)
    assert main(["verify", str(bad), "--key", str(env.pub)]) == 1
    err = capsys.readouterr().err
    assert "records.jsonl line 1 (record" in err and "at or before sealed_at" in err
