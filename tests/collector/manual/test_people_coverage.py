"""People coverage: each person of the roster missing a required attestation is an exception record."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from manual_helpers import PEOPLE, Env, filings, open_env, rows, write_config

from collector.attestations import parse_columns
from collector.config import load_settings
from collector.errors import ConfigError, InputError
from collector.manual import check_people, import_attestations
from collector.records import build_record, format_ts

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
ACKS = parse_columns("person=Email,item=Policy,at=Signed")
TRAINING = parse_columns("person=Employee Email,item=Course,at=Completed On")


def _import(env: Env, name: str, text: str, doc_type: str = "policy_ack") -> None:
    path = env.dir / name
    path.write_text(text)
    import_attestations(env.settings, env.store, env.blobs, path, doc_type=doc_type,
                        columns=ACKS if doc_type == "policy_ack" else TRAINING, now=NOW)


def _check(env: Env, at: datetime = NOW) -> dict[str, dict[str, object]]:
    """Run a check at ``at`` and return the records of that read by source key."""
    check_people(env.settings, env.store, now=at)
    stamp = format_ts(at)
    return {r["source_key"]: r for r in rows(env.store, "people.coverage") if r["observed_at"] == stamp}


def test_a_person_missing_an_acknowledgement_is_an_exception_filed_under_its_controls(env: Env) -> None:
    """Carol never acknowledged the policy: one exception for her (actor carol, observed at the
    check), filed under the criteria of the controls requiring policy_ack, plus a summary record."""
    _import(env, "acks.csv", "Email,Policy,Signed\nalice@acme.example,infosec-policy@v3,2026-11-02\n"
                             "bob@acme.example,infosec-policy@v3,2026-11-03\n")
    found = _check(env)
    carol = found["policy_ack/carol@acme.example/infosec-policy@v3"]
    assert carol["status"] == "exception" and carol["actor"] == "carol@acme.example"
    assert carol["exception_reason"] == "no policy_ack of 'infosec-policy@v3' on record"
    assert carol["observed_at"] == "2026-11-20T09:30:00.000000Z" and carol["kind"] == "attestation"
    assert carol["controls"] == ["CC1.1", "CC1.5", "CC2.2", "CC5.3"] == filings(env.store, str(carol["id"]))
    summary = found["policy_ack/infosec-policy@v3"]
    assert summary["status"] == "ok"
    assert summary["data"] == {"type": "policy_ack", "item": "infosec-policy@v3", "every": None,
                               "roster": "roster.csv", "person": None, "people": 3, "covered": 2,
                               "missing": 1}
    assert "policy_ack/alice@acme.example/infosec-policy@v3" not in found


def test_yearly_training_older_than_a_year_is_missing_again(env: Env) -> None:
    """A completion 13 months old no longer covers `every = "1y"` training; one 11 months old does."""
    _import(env, "lms.csv", "Employee Email,Course,Completed On\n"
                            "alice@acme.example,Security awareness,2025-10-01\n"
                            "bob@acme.example,Security awareness,2025-12-20\n", doc_type="training")
    found = _check(env)
    assert found["training/alice@acme.example/Security awareness"]["exception_reason"] == (
        "training of 'Security awareness' last on 2025-10-01, older than 1y")
    assert "training/bob@acme.example/Security awareness" not in found
    assert found["training/Security awareness"]["data"]["missing"] == 2  # alice and carol


def test_each_check_is_a_new_read_and_nobody_missing_is_on_record_too(env: Env) -> None:
    """Checks at two times are two reads; once everyone has acknowledged, the read holds only its
    summary (status ok), so the latest read shows nobody missing."""
    _import(env, "acks.csv", "Email,Policy,Signed\nalice@acme.example,infosec-policy@v3,2026-11-02\n")
    first = _check(env)
    _import(env, "acks-2.csv", "Email,Policy,Signed\nbob@acme.example,infosec-policy@v3,2026-11-04\n"
                               "carol@acme.example,infosec-policy@v3,2026-11-05\n")
    second = _check(env, NOW + timedelta(hours=1))
    assert sum(1 for r in first.values() if r["status"] == "exception" and "policy_ack/" in str(r["source_key"])) == 2
    assert [k for k in second if k.startswith("policy_ack/")] == ["policy_ack/infosec-policy@v3"]


def _okta_user(login: str, status: str, read_at: datetime) -> object:
    return build_record(
        stream="okta.users", source_key=f"00u-{login}", kind="mfa_status", observed_at=format_ts(read_at),
        collected_at=format_ts(read_at), actor=login, source_url=None, raw_sha256="0" * 64,
        data={"login": login, "status": status}, exception_reason=None, controls=("CC6.1",), run_id="seed")


def test_the_okta_roster_is_the_active_users_of_the_latest_read(tmp_path: Path) -> None:
    """With roster = "okta", the people are the ACTIVE (or locked, expired) users of the newest
    okta.users read: a user deactivated since an older read owes nothing."""
    env = open_env(tmp_path, f"sqlite:///{tmp_path / 'evidence.db'}",
                   PEOPLE.replace('roster = "roster.csv"', 'roster = "okta"'))
    try:
        old, new = NOW - timedelta(days=1), NOW - timedelta(hours=1)
        records = [_okta_user("gone@acme.example", "ACTIVE", old),
                   _okta_user("ann@acme.example", "ACTIVE", new),
                   _okta_user("lee@acme.example", "LOCKED_OUT", new),
                   _okta_user("gone@acme.example", "DEPROVISIONED", new),
                   _okta_user("new@acme.example", "STAGED", new)]
        with env.store.engine.begin() as conn:
            env.store.insert_records(conn, records, [])  # type: ignore[arg-type]
        check = check_people(env.settings, env.store, now=NOW)
        assert check is not None
        assert check.roster.people == ("ann@acme.example", "lee@acme.example")
        assert check.roster.source == f"okta.users@{format_ts(new)}"
        assert check.missing[("policy_ack", "infosec-policy@v3")] == ("ann@acme.example", "lee@acme.example")
    finally:
        env.store.close()


def test_no_okta_read_yet_is_said_and_stores_nothing(tmp_path: Path) -> None:
    """Before okta.users was ever collected the check refuses, saying what to collect."""
    env = open_env(tmp_path, f"sqlite:///{tmp_path / 'evidence.db'}",
                   PEOPLE.replace('roster = "roster.csv"', 'roster = "okta"'))
    try:
        with pytest.raises(InputError, match=re.escape("no okta.users read is stored yet")):
            check_people(env.settings, env.store, now=NOW)
        assert rows(env.store, "people.coverage") == []
    finally:
        env.store.close()


@pytest.mark.parametrize(("extra", "key", "problem"), [
    ('[people]\nroster = "okta"\n[[people.require]]\ntype = "vendor_ack"\nitem = "x"\n',
     "people.require[0].type", 'no control of the library requires "vendor_ack"'),
    ('[[people.require]]\ntype = "policy_ack"\nitem = "x"\n', "people.roster", "required with"),
    ('[people]\nroster = "okta"\n[[people.require]]\ntype = "training"\nitem = "x"\nevery = 365\n',
     "people.require[0].every", "expected a string"),
    ('[people]\nroster = "okta"\n[[people.require]]\ntype = "training"\n', "people.require[0].item", "required"),
    ('[people]\nroster = "okta"\nrooster = "x"\n', "people.rooster", "unknown key"),
])
def test_a_wrong_people_section_names_its_key(tmp_path: Path, extra: str, key: str, problem: str) -> None:
    """Each mistake in [people] is a ConfigError naming the key."""
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'e.db'}", extra)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert error.value.key == key and problem in error.value.problem
