"""Schema v2: criteria and the organisation's controls as populations, controls.json, documents in files/."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import orjson
import pytest
from seal_helpers import TAILORED, Env, add, library, record, utc

from collector.cli import main
from collector.records import EvidenceRecord
from collector.seal.sample import sample
from collector.seal.snapshot import SealError
from collector.seal.verify import TrustedKeys, verify_chain, verify_snapshot
from storage.blobs import LocalBlobStore
from storage.snapshots import snapshot_rows

HEADER = b"record_id,observed_at,stream,source_key,actor,status,exception_reason,source_url\r\n"


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _ids(population: bytes) -> list[str]:
    return [row[0] for row in csv.reader(io.StringIO(population.decode(), newline=""))][1:]


def _document(blobs: LocalBlobStore, observed: str, doc_type: str, content: bytes,
              **kw: object) -> EvidenceRecord:
    """A document record as the documents stream files it: the file in the blob store, its hash
    in ``data.file_sha256`` and in the source key. (Kind: any; documents match by type.)"""
    info = blobs.put(io.BytesIO(content))
    return record(observed, stream="manual.documents", kind="config_state",
                  key=f"{doc_type}/{info.sha256}", controls=("CC5.3",),
                  data={"file_sha256": info.sha256, "name": f"{doc_type}.pdf"}, **kw)  # type: ignore[arg-type]


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "files")


@pytest.fixture
def mixed(env: Env, blobs: LocalBlobStore) -> dict[str, list[EvidenceRecord]]:
    """October: sign-ins, change tickets, state reads, two documents (one an MFA policy)."""
    out = {
        "events": [record(f"2026-10-{d:02d}T10:00:00", exception="no MFA" if d == 3 else None)
                   for d in range(1, 6)],
        "tickets": [record(f"2026-10-{d:02d}T11:00:00", kind="change_ticket", controls=("CC8.1",))
                    for d in range(1, 4)],
        "users": [record(f"2026-10-{d:02d}T06:00:00", stream="synthetic.users", kind="mfa_status",
                         key="u-1", controls=("CC6.1",), exception="no factor" if d == 2 else None)
                  for d in range(1, 4)],
        "policy": [_document(blobs, "2026-10-04T09:00:00", "mfa-policy", b"%PDF-1.7 MFA policy v3\n")],
        "other": [_document(blobs, "2026-10-05T09:00:00", "vendor-review", b"vendor review 2026\n")],
    }
    for rows in out.values():
        add(env.store, rows)
    return out


def test_tailored_control_population_is_exactly_what_its_selectors_match(
        env: Env, blobs: LocalBlobStore, mixed: dict[str, list[EvidenceRecord]]) -> None:
    """A control of the organisation's own id mapped to CC6.1 gets controls/<id>.csv with exactly
    the records its selectors match; a control nothing matches gets the header alone; every
    criterion in scope has a population (empty ones too); the manifest counts both."""
    [snap] = env.sealer(library=library(), files_url=blobs.url).seal("2026-10")
    m = _members(snap.path)
    manifest = orjson.loads(m["manifest.json"])
    iam = {r.id for r in mixed["users"] + mixed["tickets"]}
    assert sorted(_ids(m["controls/ACME-IAM-7.csv"])) == sorted(iam)
    assert _ids(m["controls/ACME-DOC-1.csv"]) == [mixed["policy"][0].id]
    assert m["controls/ACME-IDLE.csv"] == HEADER
    assert manifest["schema"] == "evidence-collector/snapshot/v3" and manifest["type"] == "window"
    assert manifest["controls"] == {"ACME-DOC-1": 1, "ACME-IAM-7": 6, "ACME-IDLE": 0}
    assert len(manifest["criteria"]) == 33 and manifest["criteria"]["CC9.2"] == 0
    assert m["criteria/CC9.2.csv"] == HEADER
    assert manifest["criteria"]["CC6.1"] == len(mixed["events"]) + len(mixed["users"])
    assert sorted(_ids(m["criteria/CC8.1.csv"])) == sorted(r.id for r in mixed["tickets"])
    assert manifest["library"] == {"file": "controls.json",
                                   "sha256": hashlib.sha256(m["controls.json"]).hexdigest()}
    lib = orjson.loads(m["controls.json"])
    assert [c["id"] for c in lib["controls"]] == ["ACME-IAM-7", "ACME-DOC-1", "ACME-IDLE"]
    assert lib["controls"][0]["owner"] == "iam-lead@acme.example"
    assert lib["controls"][0]["statement"].startswith("Every account signs in with MFA")
    assert len(lib["scope"]["criteria"]) == 33 and lib["scope"]["categories"] == ["security"]
    verified = verify_snapshot(snap.path, TrustedKeys.load([env.pub]))
    assert verified.controls == manifest["controls"] and verified.criteria == manifest["criteria"]


def test_criteria_filed_outside_the_scope_still_get_a_population(env: Env) -> None:
    """A record filed under a criterion outside the scope adds that criterion's population too."""
    add(env.store, [record("2026-10-02T00:00:00", controls=("A1.2",))])
    [snap] = env.sealer(library=library()).seal("2026-10")
    manifest = orjson.loads(_members(snap.path)["manifest.json"])
    assert manifest["criteria"]["A1.2"] == 1 and len(manifest["criteria"]) == 34
    verify_snapshot(snap.path, TrustedKeys.load([env.pub]))


def test_exclusions_travel_in_controls_json_with_their_reasons(env: Env) -> None:
    """An excluded criterion has no population, and controls.json says why it was left out."""
    excluded = library(exclude=({"criterion": "CC6.4", "reason": "no data centre: hosted on AWS"},))
    [snap] = env.sealer(library=excluded).seal("2026-10")
    m = _members(snap.path)
    assert "criteria/CC6.4.csv" not in m and len(orjson.loads(m["manifest.json"])["criteria"]) == 32
    assert orjson.loads(m["controls.json"])["scope"]["excluded"] == [
        {"criterion": "CC6.4", "reason": "no data centre: hosted on AWS"}]
    verify_snapshot(snap.path, TrustedKeys.load([env.pub]))


def test_documents_travel_in_files_and_verify_by_both_routes(
        env: Env, blobs: LocalBlobStore, mixed: dict[str, list[EvidenceRecord]], tmp_path: Path) -> None:
    """Every document a record names is in files/sha256/<hex> with its exact bytes, listed in
    SHA256SUMS: collector verify and sha256sum -c both pass."""
    [snap] = env.sealer(library=library(), files_url=blobs.url).seal("2026-10")
    m = _members(snap.path)
    docs = {n: d for n, d in m.items() if n.startswith("files/")}
    assert set(docs.values()) == {b"%PDF-1.7 MFA policy v3\n", b"vendor review 2026\n"}
    for name, data in docs.items():
        assert name == "files/sha256/" + hashlib.sha256(data).hexdigest()
        assert f"SHA256 ({name}) = ".encode() in m["SHA256SUMS"]
    assert orjson.loads(m["manifest.json"])["files"] == {"count": 2}
    verify_snapshot(snap.path, TrustedKeys.load([env.pub]))
    work = tmp_path / "x"
    work.mkdir()
    with tarfile.open(snap.path) as tar:
        tar.extractall(work, filter="data")
    subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=work, check=True,
                   capture_output=True)
    subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(env.pub), "-rawin",
                    "-in", "SHA256SUMS", "-sigfile", "SHA256SUMS.ed25519"], cwd=work, check=True,
                   capture_output=True)


def test_a_document_the_blob_store_lacks_fails_the_seal_naming_it(
        env: Env, blobs: LocalBlobStore, tmp_path: Path) -> None:
    """A referenced blob the store cannot produce, or no blob store at all, fails the seal with
    the hash named; no snapshot file and no snapshot row are left behind."""
    missing = hashlib.sha256(b"never stored").hexdigest()
    add(env.store, [record("2026-10-02T00:00:00", data={"file_sha256": missing})])
    with pytest.raises(SealError, match=f"document sha256/{missing} cannot be read"):
        env.sealer(files_url=blobs.url).seal("2026-10")
    with pytest.raises(SealError, match=f"sha256/{missing}, but no blob store is configured"):
        env.sealer().seal("2026-10")
    assert snapshot_rows(env.store) == [] and not list(env.out.glob("*.tar"))


def test_a_malformed_file_reference_fails_the_seal_naming_the_record(env: Env) -> None:
    """data.file_sha256 that is not 64 lower-case hex is refused, naming the record."""
    bad = record("2026-10-02T00:00:00", data={"file_sha256": "ABC"})
    add(env.store, [bad])
    with pytest.raises(SealError, match=f"record {bad.id}: data.file_sha256 'ABC' is not a SHA-256"):
        env.sealer().seal("2026-10")


def test_changing_the_library_never_changes_a_sealed_snapshot(
        env: Env, blobs: LocalBlobStore, mixed: dict[str, list[EvidenceRecord]]) -> None:
    """Re-sealing after the library changed reproduces the old bytes (the sealed controls.json is
    kept with the snapshot); the next window is sealed with the new library."""
    [first] = env.sealer(library=library(), files_url=blobs.url).seal("2026-10")
    original = first.path.read_bytes()
    changed = library(TAILORED.replace('{stream = "synthetic.users"}, ', "").replace(
        'id = "ACME-IDLE"', 'id = "ACME-NEW"'), categories=("security", "availability"))
    first.path.unlink()
    env.clock.now = utc("2026-12-05T00:00:00")
    sealed = env.sealer(library=changed, files_url=blobs.url).seal("2026-10")
    assert [(s.window_id, s.reproduced) for s in sealed] == [("2026-10", True)]
    assert sealed[0].path.read_bytes() == original
    [november] = env.sealer(library=changed, files_url=blobs.url).seal("2026-11")
    later = orjson.loads(_members(november.path)["manifest.json"])
    assert set(later["controls"]) == {"ACME-IAM-7", "ACME-DOC-1", "ACME-NEW"}
    assert "A1.2" in later["criteria"]
    verify_chain([first.path, november.path], TrustedKeys.load([env.pub]))


def test_amendments_are_v2_with_every_population(env: Env) -> None:
    """An amendment carries controls.json and every population, and chains after the window."""
    add(env.store, [record("2026-10-03T00:00:00")])
    [first] = env.sealer(library=library()).seal("2026-10")
    add(env.store, [record("2026-10-04T00:00:00", stream="synthetic.users", kind="mfa_status")])
    amendment = env.sealer(library=library()).amend("2026-10")
    assert amendment is not None
    manifest = orjson.loads(_members(amendment.path)["manifest.json"])
    assert manifest["controls"]["ACME-IAM-7"] == 1 and len(manifest["criteria"]) == 33
    verify_chain([first.path, amendment.path], TrustedKeys.load([env.pub]))


def test_sample_by_criterion_and_by_control(env: Env, blobs: LocalBlobStore,
                                            mixed: dict[str, list[EvidenceRecord]],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """--criterion samples criteria/<ID>.csv, --control the organisation's controls/<ID>.csv,
    each ranked by SHA-256(root:ID:record_id)."""
    [snap] = env.sealer(library=library(), files_url=blobs.url).seal("2026-10")
    m = _members(snap.path)
    root = orjson.loads(m["manifest.json"])["merkle"]["root"]

    def ranked(name: str, ident: str) -> list[str]:
        return sorted(_ids(m[name]), key=lambda r: hashlib.sha256(f"{root}:{ident}:{r}".encode()).hexdigest())

    assert [r[0] for r in sample(snap.path, "ACME-IAM-7", 3, by="control")[1:]] == ranked(
        "controls/ACME-IAM-7.csv", "ACME-IAM-7")[:3]
    assert [r[0] for r in sample(snap.path, "CC6.1", 4)[1:]] == ranked("criteria/CC6.1.csv", "CC6.1")[:4]
    assert main(["sample", str(snap.path), "--control", "ACME-DOC-1", "--size", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("record_id,") and out[1].startswith(mixed["policy"][0].id)
    assert main(["sample", str(snap.path), "--control", "CC6.1", "--size", "5"]) == 2
    assert "no population for CC6.1 (controls: ACME-DOC-1, ACME-IAM-7, ACME-IDLE)" in capsys.readouterr().err


def test_sample_checks_the_manifest_against_sha256sums(env: Env, tmp_path: Path) -> None:
    """A manifest whose Merkle root was swapped (to steer the sample) is refused before sampling."""
    from seal_helpers import extract, pack

    add(env.store, [record(f"2026-10-{d:02d}T00:00:00") for d in range(1, 9)])
    [snap] = env.sealer().seal("2026-10")
    members = extract(snap.path)
    manifest = orjson.loads(members["manifest.json"])
    manifest["merkle"]["root"] = "0" * 64
    members["manifest.json"] = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)
    bad = pack(members, tmp_path / "2026-10.tar")
    from collector.seal.verify import VerificationError

    with pytest.raises(VerificationError, match=r"manifest\.json: SHA-256 does not match SHA256SUMS"):
        sample(bad, "CC6.1", 3)


def test_oscal_names_owners_as_parties_and_each_control_with_its_statement(
        env: Env, blobs: LocalBlobStore, mixed: dict[str, list[EvidenceRecord]]) -> None:
    """The OSCAL results validate; the criteria in scope are the reviewed controls (exclusions
    with reasons); each control is an observation with its statement, its owner a party with the
    control-owner role; each document is a back-matter resource with its hash."""
    from trestle.oscal.assessment_results import AssessmentResults

    lib = library(exclude=({"criterion": "CC6.4", "reason": "hosted on AWS"},))
    [snap] = env.sealer(library=lib, files_url=blobs.url).seal("2026-10")
    m = _members(snap.path)
    doc = orjson.loads(m["oscal/assessment-results.json"])
    parse = getattr(AssessmentResults, "model_validate", None) or AssessmentResults.parse_obj
    parse(doc["assessment-results"])
    ar = doc["assessment-results"]
    parties = {p["name"]: p["uuid"] for p in ar["metadata"]["parties"]}
    assert set(parties) == {"iam-lead@acme.example", "security-lead@acme.example"}
    assert ar["metadata"]["responsible-parties"] == [
        {"role-id": "control-owner", "party-uuids": [parties[o] for o in sorted(parties)]}]
    result = ar["results"][0]
    selection = result["reviewed-controls"]["control-selections"][0]
    reviewed = {c["control-id"] for c in selection["include-controls"]}
    assert "cc9.2" in reviewed and "cc6.4" not in reviewed
    assert selection["exclude-controls"] == [{"control-id": "cc6.4"}]
    assert "CC6.4: hosted on AWS" in result["reviewed-controls"]["remarks"]
    by_id = {p["value"]: o for o in result["observations"] for p in o.get("props", [])
             if p["name"] == "control-id"}
    iam = by_id["ACME-IAM-7"]
    assert iam["description"].startswith("Every account signs in with MFA")
    assert iam["subjects"] == [{"subject-uuid": parties["iam-lead@acme.example"], "type": "party"}]
    assert {"name": "records", "value": "6"} in iam["props"]
    resources = {r["title"]: r["rlinks"][0]["hashes"][0]["value"]
                 for r in ar["back-matter"]["resources"]}
    for name in (n for n in m if n.startswith("files/")):
        assert resources[name] == hashlib.sha256(m[name]).hexdigest()
    assert resources["controls/ACME-IAM-7.csv"] == hashlib.sha256(m["controls/ACME-IAM-7.csv"]).hexdigest()
    assert resources["controls.json"] == hashlib.sha256(m["controls.json"]).hexdigest()


def test_verify_of_a_v2_snapshot_with_documents_imports_nothing_heavy(
        env: Env, blobs: LocalBlobStore, mixed: dict[str, list[EvidenceRecord]]) -> None:
    """Verifying and sampling v2 (controls.json, selectors, documents) stays as light as v1."""
    from test_verify_imports import HEAVY, _run

    [snap] = env.sealer(library=library(), files_url=blobs.url).seal("2026-10")
    for args in (["verify", str(snap.path), "--key", str(env.pub)],
                 ["sample", str(snap.path), "--control", "ACME-IAM-7", "--size", "2"]):
        code, modules, err = _run(args)
        assert code == 0, err
        assert [x for x in modules if any(x == h or x.startswith(h + ".") for h in HEAVY)] == []
