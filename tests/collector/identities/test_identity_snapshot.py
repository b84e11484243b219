"""A review campaign's worksheet and decisions travel in the sealed window like any document and attestation."""

from __future__ import annotations

import tarfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
from identity_seed import iam_user, okta, store_read

from collector.config import load_settings
from collector.identities.demo import fill_in
from collector.identities.review import import_decisions, start_review
from collector.manual import open_files
from collector.seal.keys import create_key, public_key_path
from collector.seal.snapshot import sealer_from_settings
from collector.seal.verify import TrustedKeys, verify_snapshot
from storage import Store

READ = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
DECIDED = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)


def test_the_sealed_window_holds_the_worksheet_its_decisions_and_both_files(tmp_path: Path) -> None:
    """Sealing October: records.jsonl has the worksheet document and each decision attestation,
    files/ holds the worksheet's and the decision file's bytes, and the snapshot verifies."""
    create_key(tmp_path / "keys" / "seal.pem")
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "e.db"}"\n[files]\nurl = "files"\n'
                      '[signing]\nkey_file = "keys/seal.pem"\n[windows]\nperiod = "month"\n')
    settings = load_settings(config)
    store = Store.open(settings.storage_url)
    blobs = open_files(settings)
    try:
        store_read(store, "okta.users", [okta("00u1", "alice@acme.example")], READ)
        store_read(store, "aws.iam_users", [iam_user("alice", "alice@acme.example"), iam_user("old")], READ)
        sheet = tmp_path / "sheet.csv"
        started = start_review(settings, store, blobs, "aws", quarter="2026-Q4", out=sheet, now=READ)
        decided = fill_in(sheet, lambda account: ("keep", "on call") if "alice" in account else ("revoke", ""),
                          tmp_path / "decided.csv")
        imported = import_decisions(settings, store, blobs, decided, "lead@acme.example", now=DECIDED)
        [snap] = sealer_from_settings(settings, store, tmp_path / "snapshots").seal("2026-10")
        with tarfile.open(snap.path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
        records = [orjson.loads(line) for line in members["records.jsonl"].splitlines()]
        documents = {r["data"]["title"] for r in records if r["stream"] == "manual.documents"}
        assert documents == {"access review aws-2026-Q4 population (2 accounts)",
                             "access review decisions aws-2026-Q4 by lead@acme.example"}
        decisions = sorted((r["data"]["account"], r["data"]["decision"]) for r in records
                           if r["stream"] == "manual.attestations")
        assert decisions == [("arn:aws:iam::123456789012:user/alice", "keep"),
                             ("arn:aws:iam::123456789012:user/old", "revoke")]
        assert members[f"files/sha256/{started.campaign.file_sha256}"] == sheet.read_bytes()
        assert members[f"files/sha256/{imported.document.sha256}"] == decided.read_bytes()
        verify_snapshot(snap.path, TrustedKeys.load([public_key_path(tmp_path / "keys" / "seal.pem")]))
    finally:
        store.close()
