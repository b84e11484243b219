"""Type 1 snapshots: the library, the newest state read and the documents in force as of a day, outside the chain."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import orjson
import pytest
from seal_helpers import Env, add, extract, library, pack, record, resign, utc

from collector.cli import main
from collector.errors import InputError
from collector.records import EvidenceRecord
from collector.seal.verify import TrustedKeys, verify_chain, verify_snapshot
from storage import Store
from storage.blobs import LocalBlobStore
from storage.snapshots import snapshot_rows


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _read(day: str, key: str, exception: str | None = None) -> EvidenceRecord:
    return record(f"2026-11-{day}T06:00:00", stream="synthetic.users", kind="mfa_status", key=key,
                  controls=("CC6.1",), exception=exception)


def _doc(blobs: LocalBlobStore, observed: str, content: bytes, stream: str = "manual.documents"
         ) -> EvidenceRecord:
    info = blobs.put(io.BytesIO(content))
    return record(observed, stream=stream, kind="config_state", key=f"mfa-policy/{info.sha256}",
                  controls=("CC5.3",), data={"file_sha256": info.sha256})


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "files")


@pytest.fixture
def state(env: Env, blobs: LocalBlobStore) -> dict[str, EvidenceRecord]:
    """Reads of two users before and after 2026-11-12, events, documents and an attestation."""
    rows = {
        "u1_old": _read("03", "u-1"), "u1": _read("10", "u-1", exception="no active factor"),
        "u1_after": _read("17", "u-1"), "u2": _read("05", "u-2"),
        "event": record("2026-11-11T10:00:00"),
        "policy_v1": _doc(blobs, "2026-10-01T09:00:00", b"MFA policy v1\n"),
        "policy_v2": _doc(blobs, "2026-11-08T09:00:00", b"MFA policy v2\n"),
        "policy_v3": _doc(blobs, "2026-11-14T09:00:00", b"MFA policy v3\n"),
        "attestation": _doc(blobs, "2026-11-09T09:00:00", b"ack\n", stream="manual.attestations"),
    }
    add(env.store, rows.values())
    return rows


def test_type1_holds_the_newest_state_read_before_its_day_and_verifies(
        env: Env, blobs: LocalBlobStore, state: dict[str, EvidenceRecord]) -> None:
    """As of 2026-11-12: each user's newest read by then, the documents observed by then with
    their files, the library; no events, no later reads; it verifies, names its day, and its
    OSCAL results validate."""
    env.clock.now = utc("2026-11-20T12:00:00")
    done = env.sealer(library=library(), files_url=blobs.url).seal_as_of("2026-11-12", {"synthetic.users"})
    assert done.path.name == "type1-2026-11-12.tar"
    m = _members(done.path)
    ids = [orjson.loads(line)["id"] for line in m["records.jsonl"].splitlines()]
    expected = sorted((state[k] for k in ("u1", "u2", "policy_v1", "policy_v2")),
                      key=lambda r: (r.observed_at, r.id))
    assert ids == [r.id for r in expected]
    manifest = orjson.loads(m["manifest.json"])
    assert manifest["type"] == "type1" and "previous" not in manifest and "window" not in manifest
    assert manifest["as_of"] == {"date": "2026-11-12", "timezone": "UTC",
                                 "end": "2026-11-13T00:00:00.000000Z"}
    assert manifest["state_streams"] == ["synthetic.users"]
    assert manifest["controls"] == {"ACME-DOC-1": 2, "ACME-IAM-7": 2, "ACME-IDLE": 0}
    assert {n.removeprefix("files/sha256/") for n in m if n.startswith("files/")} == {
        orjson.loads(state[k].body)["data"]["file_sha256"] for k in ("policy_v1", "policy_v2")}
    assert b"Type 1 (point in time) as of 2026-11-12" in m["README.txt"]
    from trestle.oscal.assessment_results import AssessmentResults

    oscal = orjson.loads(m["oscal/assessment-results.json"])["assessment-results"]
    (getattr(AssessmentResults, "model_validate", None) or AssessmentResults.parse_obj)(oscal)
    assert oscal["results"][0]["title"] == "Evidence for Type 1 as of 2026-11-12"
    verified = verify_snapshot(done.path, TrustedKeys.load([env.pub]))
    assert (verified.type, verified.as_of, verified.records, verified.files) == ("type1", "2026-11-12", 4, 2)


def test_type1_stands_outside_the_window_chain(env: Env, state: dict[str, EvidenceRecord],
                                               blobs: LocalBlobStore,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Sealing a Type 1 stores nothing and links nothing: the windows sealed before and after it
    chain to each other, and a Type 1 given among them is verified on its own."""
    env.clock.now = utc("2026-12-05T00:00:00")
    sealer = env.sealer(library=library(), files_url=blobs.url)
    october = sealer.seal("2026-10")
    type1 = sealer.seal_as_of("2026-11-12", {"synthetic.users"})
    assert [r.window_id for r in snapshot_rows(env.store)] == ["2026-10"]
    [november] = sealer.seal("2026-11")
    trust = TrustedKeys.load([env.pub])
    done = verify_chain([october[-1].path, type1.path, november.path], trust)
    assert [v.type for v in done] == ["window", "type1", "window"]
    assert done[2].previous == done[0].link()
    assert main(["verify", str(october[-1].path), str(type1.path), str(november.path),
                 "--key", str(env.pub)]) == 0
    out = capsys.readouterr().out
    assert "OK type1-2026-11-12.tar: Type 1 as of 2026-11-12, 4 records, 3 controls, 2 documents" in out
    assert "OK chain of 2 snapshots" in out


def test_type1_refuses_a_day_not_ended_or_malformed(env: Env) -> None:
    """Only a past day, written YYYY-MM-DD, can be sealed as of."""
    env.clock.now = utc("2026-11-20T12:00:00")
    with pytest.raises(InputError, match="the day has not ended"):
        env.sealer().seal_as_of("2026-11-20", set())
    for bad in ("2026-13-01", "yesterday", "2026-1-5"):
        with pytest.raises(InputError, match="expected a date like 2026-11-15"):
            env.sealer().seal_as_of(bad, set())


def test_type1_as_of_ends_at_midnight_in_the_windows_time_zone(env: Env) -> None:
    """The day ends at local midnight: a read at 03:00 UTC on the next day is still in, in New York."""
    from collector.seal.snapshot import Sealer, SealOptions

    late = record("2026-11-13T03:00:00", stream="synthetic.users", kind="mfa_status", key="u-9")
    add(env.store, [late])
    options = SealOptions(period="month", zone="America/New_York", out_dir=env.out)
    done = Sealer(env.store, options, env.key, clock=lambda: utc("2026-11-20T00:00:00")).seal_as_of(
        "2026-11-12", {"synthetic.users"})
    manifest = orjson.loads(_members(done.path)["manifest.json"])
    assert manifest["as_of"]["end"] == "2026-11-13T05:00:00.000000Z"
    assert orjson.loads(_members(done.path)["records.jsonl"])["id"] == late.id
    verify_snapshot(done.path, TrustedKeys.load([env.pub]))


def test_a_type1_claiming_other_streams_fails_naming_the_record(
        env: Env, state: dict[str, EvidenceRecord], blobs: LocalBlobStore, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A re-signed Type 1 whose manifest drops the state stream its records come from is refused."""
    env.clock.now = utc("2026-11-20T12:00:00")
    done = env.sealer(files_url=blobs.url).seal_as_of("2026-11-12", {"synthetic.users"})
    members = extract(done.path)
    manifest = orjson.loads(members["manifest.json"])
    manifest["state_streams"] = []
    members["manifest.json"] = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)
    resign(members, env.key)
    bad = pack(members, tmp_path / done.path.name)
    assert main(["verify", str(bad), "--key", str(env.pub)]) == 1
    err = capsys.readouterr().err
    assert "records.jsonl line 2 (record" in err and "stream synthetic.users is neither a state stream" in err


def test_seal_as_of_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`collector seal --as-of DATE` writes type1-<DATE>.tar from the state streams the connectors
    declare; `collector verify` passes it; --as-of with --window is refused."""
    from collector.cli.seal import state_streams
    from collector.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text('[storage]\nurl = "sqlite:///data/evidence.db"\n')
    assert main(["--config", str(config), "keys", "init"]) == 0
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'evidence.db'}")
    add(store, [_read("03", "u-1"), _read("04", "u-1"), record("2026-11-04T00:00:00")])
    store.close()
    streams = state_streams(load_settings(config))
    assert {"synthetic.users", "okta.users", "aws.iam_credential_report", "github.org_settings",
            "github.branch_protection"} <= streams and "okta.system_log" not in streams
    capsys.readouterr()
    assert main(["--config", str(config), "seal", "--as-of", "2026-11-05"]) == 0
    tar = tmp_path / "data" / "snapshots" / "type1-2026-11-05.tar"
    assert f"sealed {tar} (Type 1 as of 2026-11-05: 1 records" in capsys.readouterr().out
    pub = tmp_path / "data" / "keys" / "seal-ed25519.pub.pem"
    assert main(["verify", str(tar), "--key", str(pub)]) == 0
    assert main(["--config", str(config), "seal", "--as-of", "2026-11-05", "--window", "2026-10"]) == 2
    assert "--as-of seals a Type 1 snapshot" in capsys.readouterr().err


def test_type1_and_a_v2_reseal_on_each_backend(tmp_path: Path, store_url: str) -> None:
    """On SQLite and PostgreSQL alike: the newest read per source key as of a day, and a v2
    window that re-seals byte for byte from the library stored with it."""
    from seal_helpers import Clock

    from collector.seal.keys import create_key
    from collector.seal.snapshot import Sealer, SealOptions

    store = Store.open(store_url)
    try:
        reads = [_read("03", "u-1"), _read("10", "u-1"), _read("05", "u-2"), _read("14", "u-2")]
        add(store, [*reads, record("2026-10-04T00:00:00")])
        options = SealOptions(period="month", zone="UTC", out_dir=tmp_path / "out", library=library())
        sealer = Sealer(store, options, create_key(tmp_path / "k.pem"),
                        clock=Clock(utc("2026-11-20T00:00:00")))
        done = sealer.seal_as_of("2026-11-12", {"synthetic.users"})
        ids = [orjson.loads(line)["id"] for line in _members(done.path)["records.jsonl"].splitlines()]
        assert ids == [reads[2].id, reads[1].id]
        [october] = sealer.seal("2026-10")
        first = october.path.read_bytes()
        october.path.unlink()
        [again] = Sealer(store, SealOptions(period="month", zone="UTC", out_dir=tmp_path / "out"),
                         sealer.key, clock=sealer.clock).seal("2026-10")
        assert again.reproduced and again.path.read_bytes() == first
    finally:
        store.close()


def test_sealed_libraries_are_append_only(env: Env) -> None:
    """The store refuses UPDATE and DELETE on the libraries sealed with snapshots."""
    import sqlalchemy as sa

    env.sealer(library=library()).seal("2026-10")
    for statement in ("UPDATE snapshot_libraries SET library = x'00'", "DELETE FROM snapshot_libraries"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), env.store.engine.begin() as conn:
            conn.exec_driver_sql(statement)
