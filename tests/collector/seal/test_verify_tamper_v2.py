"""The tamper matrix of schema v2: controls.json, the controls' populations and the documents in files/."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from seal_helpers import Clock, Env, Members, add, extract, library, pack, record, resign, resum
from test_verify_tamper import collector_route, plain_route

from collector.seal.keys import create_key
from storage import Store
from storage.blobs import LocalBlobStore


@dataclass
class Sealed:
    env: Env
    paths: list[Path]


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Sealed:
    """September and October sealed in v2 with the tailored library, each with two documents."""
    base = tmp_path_factory.mktemp("v2")
    store = Store.open(f"sqlite:///{base / 'e.db'}")
    env = Env(store, create_key(base / "keys" / "seal.pem"), base / "snapshots", Clock())
    blobs = LocalBlobStore(base / "files")
    for month in ("09", "10"):
        rows = [record(f"2026-{month}-{d:02d}T10:00:00", exception="no MFA" if d == 2 else None)
                for d in range(1, 8)]
        rows += [record(f"2026-{month}-{d:02d}T06:00:00", stream="synthetic.users",
                        kind="mfa_status", key="u-1", controls=("CC6.1",)) for d in range(1, 4)]
        for doc_type in ("mfa-policy", "vendor-review"):
            info = blobs.put(io.BytesIO(f"{doc_type} {month}\n".encode()))
            rows.append(record(f"2026-{month}-05T09:00:00", stream="manual.documents",
                               kind="config_state", key=f"{doc_type}/{info.sha256}",
                               controls=("CC5.3",), data={"file_sha256": info.sha256}))
        add(store, rows)
    done = env.sealer(library=library(), files_url=blobs.url).seal("2026-10")
    store.close()
    return Sealed(env, [s.path for s in done])


def _doc(m: Members) -> str:
    return sorted(n for n in m if n.startswith("files/"))[0]


def _manifest(m: Members, edit: Callable[[dict[str, object]], None]) -> None:
    obj = orjson.loads(m["manifest.json"])
    edit(obj)
    m["manifest.json"] = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def flip_library_byte(m: Members, s: Sealed) -> None:
    m["controls.json"] = m["controls.json"].replace(b"iam-lead@", b"iam-leaf@", 1)


def flip_control_population_byte(m: Members, s: Sealed) -> None:
    m["controls/ACME-IAM-7.csv"] = m["controls/ACME-IAM-7.csv"].replace(b"u-1", b"u-2", 1)


def flip_document_byte(m: Members, s: Sealed) -> None:
    name = _doc(m)
    m[name] = m[name][:-2] + b"X\n"


def add_unlisted_file(m: Members, s: Sealed) -> None:
    m["files/sha256/" + "0" * 64] = b"planted\n"


def remove_document(m: Members, s: Sealed) -> None:
    del m[_doc(m)]


def remove_library(m: Members, s: Sealed) -> None:
    del m["controls.json"]


def drop_document_and_resign(m: Members, s: Sealed) -> None:
    del m[_doc(m)]
    resign(m, s.env.key)


def plant_document_and_resign(m: Members, s: Sealed) -> None:
    data = b"a document no record names\n"
    m["files/sha256/" + hashlib.sha256(data).hexdigest()] = data
    resign(m, s.env.key)


def misname_document_and_resign(m: Members, s: Sealed) -> None:
    name = _doc(m)
    m[name] += b"appended\n"
    resign(m, s.env.key)


def edit_library_and_resign(m: Members, s: Sealed) -> None:
    m["controls.json"] = m["controls.json"].replace(b'{"stream":"synthetic.users"},', b"", 1)
    resign(m, s.env.key)


def edit_library_and_its_hash_and_resign(m: Members, s: Sealed) -> None:
    m["controls.json"] = m["controls.json"].replace(b'{"stream":"synthetic.users"},', b"", 1)
    digest = hashlib.sha256(m["controls.json"]).hexdigest()
    _manifest(m, lambda o: o["library"].__setitem__("sha256", digest))  # type: ignore[attr-defined]
    resign(m, s.env.key)


def doctor_control_population_and_resign(m: Members, s: Sealed) -> None:
    rows = m["controls/ACME-IAM-7.csv"].splitlines(keepends=True)
    m["controls/ACME-IAM-7.csv"] = b"".join(rows[:-1])
    resign(m, s.env.key)


def drop_an_empty_criterion_and_resign(m: Members, s: Sealed) -> None:
    del m["criteria/CC9.2.csv"]
    _manifest(m, lambda o: o["criteria"].pop("CC9.2"))  # type: ignore[attr-defined]
    resign(m, s.env.key)


def drop_a_control_and_resign(m: Members, s: Sealed) -> None:
    del m["controls/ACME-IDLE.csv"]
    _manifest(m, lambda o: o["controls"].pop("ACME-IDLE"))  # type: ignore[attr-defined]
    resign(m, s.env.key)


def add_listed_file_and_resign(m: Members, s: Sealed) -> None:
    m["notes.txt"] = b"signed, but no part of a snapshot\n"
    resign(m, s.env.key)


@dataclass(frozen=True)
class Case:
    mutate: Callable[[Members, Sealed], None]
    expect: str
    plain: bool  # whether sha256sum + openssl see it


CASES = {
    "flip a byte in controls.json": Case(
        flip_library_byte, "controls.json: SHA-256 does not match SHA256SUMS", True),
    "flip a byte in a control's population": Case(
        flip_control_population_byte, "controls/ACME-IAM-7.csv: SHA-256 does not match", True),
    "flip a byte in a document": Case(flip_document_byte, ": SHA-256 does not match SHA256SUMS", True),
    "add a file": Case(add_unlisted_file, "extra file, not listed in SHA256SUMS", False),
    "remove a document": Case(remove_document, ": missing (listed in SHA256SUMS)", True),
    "remove controls.json": Case(remove_library, "controls.json: missing (listed in SHA256SUMS)", True),
    "drop a document, re-signed": Case(
        drop_document_and_resign, ": missing: a record refers to this document", False),
    "plant a document, re-signed": Case(
        plant_document_and_resign, ": extra document: no record refers to it", False),
    "change a document, re-signed": Case(
        misname_document_and_resign, "not the name it is filed under", False),
    "edit the library, re-signed": Case(
        edit_library_and_resign, "controls.json: SHA-256 is not the one manifest.json names", False),
    "edit the library and its hash, re-signed": Case(
        edit_library_and_its_hash_and_resign,
        "manifest.json: controls.ACME-IAM-7 is 3, but 0 records match its selectors", False),
    "doctor a control's population, re-signed": Case(
        doctor_control_population_and_resign,
        "controls/ACME-IAM-7.csv: does not list exactly the records the selectors of control "
        "ACME-IAM-7 match", False),
    "drop an empty criterion in scope, re-signed": Case(
        drop_an_empty_criterion_and_resign,
        "manifest.json: criteria has no count for CC9.2, which controls.json puts in scope", False),
    "drop a control's population, re-signed": Case(
        drop_a_control_and_resign,
        "manifest.json: controls does not count exactly the controls of controls.json", False),
    "add a listed file, re-signed": Case(
        add_listed_file_and_resign, "notes.txt: extra file: not one a snapshot holds", False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_v2_tampering_is_detected(name: str, sealed: Sealed, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Each tampering of a v2 snapshot fails `collector verify` in one line naming the file."""
    case = CASES[name]
    members = extract(sealed.paths[1])
    case.mutate(members, sealed)
    bad = pack(members, tmp_path / sealed.paths[1].name)
    code, err = collector_route([bad], sealed.env.pub, capsys)
    assert code == 1, err
    assert err.startswith(f"collector: error: {bad.name}: "), err
    assert case.expect in err, err
    assert len(err.strip().splitlines()) == 1
    assert plain_route(bad, sealed.env.pub, tmp_path) is (not case.plain)


def test_untouched_v2_chain_passes_both_routes(sealed: Sealed, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The sealed v2 chain verifies with the collector and with the plain tools."""
    code, err = collector_route(sealed.paths, sealed.env.pub, capsys)
    assert code == 0, err
    for path in sealed.paths:
        assert plain_route(path, sealed.env.pub, tmp_path)


def test_resum_alone_is_caught_by_the_signature(sealed: Sealed, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Editing controls.json and fixing SHA256SUMS without the key fails on the signature."""
    members = extract(sealed.paths[1])
    flip_library_byte(members, sealed)
    resum(members)
    bad = pack(members, tmp_path / sealed.paths[1].name)
    code, err = collector_route([bad], sealed.env.pub, capsys)
    assert code == 1 and "SHA256SUMS is not signed by a trusted key" in err
