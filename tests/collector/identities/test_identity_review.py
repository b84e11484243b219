"""Access reviews: start writes and stores the population, import stores decisions, revocations are checked."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from identity_seed import DAY, HOUR, NOW, IdEnv, iam_user, okta, records_of, store_read

from collector.errors import InputError
from collector.identities import REVOCATIONS, run_identity_checks
from collector.identities.demo import fill_in
from collector.identities.review import campaign_status, import_decisions, start_review
from collector.manual import open_files

ARN = "arn:aws:iam::123456789012:user/"


def _seed(env: IdEnv) -> None:
    store_read(env.store, "okta.users", [okta("00u1", "alice@acme.example"), okta("00u2", "bob@acme.example")],
               NOW - HOUR)
    store_read(env.store, "aws.iam_users", [iam_user("alice", "alice@acme.example"),
                                             iam_user("bob", "bob@acme.example"), iam_user("ci-deploy")],
               NOW - HOUR)


def _start(env: IdEnv) -> Path:
    out = env.dir / "sheet.csv"
    start_review(env.settings, env.store, open_files(env.settings), "aws", quarter="2026-Q4", out=out, now=NOW)
    return out


def _decide(sheet: Path, decisions: dict[str, tuple[str, str]], name: str = "decided.csv") -> Path:
    return fill_in(sheet, lambda account: decisions.get(account, ("", "")), sheet.parent / name)


def test_start_writes_the_population_and_stores_it_as_a_document(env: IdEnv) -> None:
    """Without an aws.iam_users read there is nothing to review; with one, the worksheet is written
    and stored as an access_review document covering the quarter; starting again rewrites it."""
    with pytest.raises(InputError, match=r"no aws\.iam_users read is stored yet"):
        _start(env)
    _seed(env)
    sheet = _start(env)
    assert sheet.read_text().splitlines()[0] == "campaign,system,account,person,link,access,last_activity," \
                                                "decision,comment"
    documents = records_of(env.store, "manual.documents")
    (document,) = documents.values()
    assert document["data"]["type"] == "access_review"
    assert document["data"]["title"] == "access review aws-2026-Q4 population (3 accounts)"
    assert document["data"]["period"] == {"start": "2026-10-01T00:00:00.000000Z",
                                          "end": "2027-01-01T00:00:00.000000Z"}
    sheet.unlink()
    again = start_review(env.settings, env.store, open_files(env.settings), "aws", quarter="2026-Q4",
                         out=sheet, now=NOW + DAY)
    assert not again.new and sheet.exists() and len(records_of(env.store, "manual.documents")) == 1


def test_the_worksheet_rows_name_person_access_and_last_activity(env: IdEnv) -> None:
    """Each row: campaign, system, account, the linked person and how, access and last activity."""
    _seed(env)
    rows = list(csv.DictReader(io.StringIO(_start(env).read_text())))
    assert [(r["account"], r["person"], r["link"]) for r in rows] == [
        (f"{ARN}alice", "alice@acme.example", "email"), (f"{ARN}bob", "bob@acme.example", "email"),
        (f"{ARN}ci-deploy", "", "service_account")]
    assert rows[0]["campaign"] == "aws-2026-Q4" and rows[0]["access"] == "groups: developers; console"
    assert rows[0]["last_activity"] == "2026-11-10T10:00:00Z"
    assert rows[0]["decision"] == rows[0]["comment"] == ""


def test_import_turns_each_decided_row_into_an_attestation(env: IdEnv) -> None:
    """Decided rows become access_review attestations by the reviewer; undecided rows are left."""
    _seed(env)
    path = _decide(_start(env), {f"{ARN}alice": ("keep", "needs it"), f"{ARN}bob": ("Revoke", "moved team")})
    done = import_decisions(env.settings, env.store, open_files(env.settings), path, "Lead@acme.example",
                            now=NOW + HOUR)
    assert (done.keep, done.revoke) == (1, 1)
    found = records_of(env.store, "manual.attestations")
    bob = found[f"access_review/lead@acme.example/aws-2026-Q4/{ARN}bob"]
    assert bob["actor"] == "lead@acme.example" and bob["kind"] == "attestation"
    assert bob["data"]["decision"] == "revoke" and bob["data"]["comment"] == "moved team"
    assert bob["data"]["subject"] == "bob@acme.example" and bob["data"]["line"] == 3
    assert len(found) == 2
    status = campaign_status(env.settings, env.store, open_files(env.settings), now=NOW + HOUR)
    assert status == [{"campaign": "aws-2026-Q4", "system": "aws", "quarter": "2026-Q4",
                       "started_at": "2026-11-20T09:00:00.000000Z",
                       "worksheet_sha256": status[0]["worksheet_sha256"], "population": 3, "decided": 2,
                       "keep": 1, "revoke": 1, "revocations": {"done": 0, "pending": 1, "overdue": 0}}]


@pytest.mark.parametrize(("text", "problem"), [
    ("campaign,account,decision,comment\naws-2026-Q4,arn:aws:iam::123456789012:user/mallory,keep,\n",
     "line 2: account 'arn:aws:iam::123456789012:user/mallory' is not in the population of aws-2026-Q4"),
    ("campaign,account,decision,comment\naws-2026-Q4,arn:aws:iam::123456789012:user/bob,keep,\n"
     "aws-2026-Q4,arn:aws:iam::123456789012:user/alice,keep,\n"
     "aws-2026-Q4,arn:aws:iam::123456789012:user/bob,revoke,\n",
     "line 4: a second decision for aws-2026-Q4/arn:aws:iam::123456789012:user/bob (first on line 2)"),
    ("campaign,account,decision,comment\naws-2026-Q4,arn:aws:iam::123456789012:user/bob,maybe,\n",
     "line 2: decision 'maybe' is not keep or revoke"),
    ("campaign,account,decision,comment\ngithub-2026-Q4,acme/bob,keep,\n",
     "line 2: campaign 'github-2026-Q4' was never started"),
])
def test_a_bad_row_is_refused_with_its_line_and_nothing_is_stored(sqlite_env: IdEnv, text: str,
                                                                  problem: str) -> None:
    """A row outside the population, a second decision in the file, an unknown decision or campaign:
    the import names the line and stores no attestation and no document."""
    _seed(sqlite_env)
    _start(sqlite_env)
    path = sqlite_env.dir / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        import_decisions(sqlite_env.settings, sqlite_env.store, open_files(sqlite_env.settings), path,
                         "lead@acme.example", now=NOW + HOUR)
    assert records_of(sqlite_env.store, "manual.attestations") == {}
    assert len(records_of(sqlite_env.store, "manual.documents")) == 1  # the worksheet only


def test_a_row_already_decided_is_refused_with_its_line(sqlite_env: IdEnv) -> None:
    """A second import deciding a row someone already decided is refused, naming the line and the
    stored decision; the good row beside it is not stored either."""
    _seed(sqlite_env)
    sheet = _start(sqlite_env)
    blobs = open_files(sqlite_env.settings)
    import_decisions(sqlite_env.settings, sqlite_env.store, blobs, _decide(sheet, {f"{ARN}bob": ("keep", "")}),
                     "lead@acme.example", now=NOW + HOUR)
    second = _decide(sheet, {f"{ARN}alice": ("keep", ""), f"{ARN}bob": ("revoke", "")}, "second.csv")
    with pytest.raises(InputError, match=r"second.csv: line 3: aws-2026-Q4/arn:aws:iam::123456789012:user/bob "
                                         r"was already decided \(keep by lead@acme.example at "):
        import_decisions(sqlite_env.settings, sqlite_env.store, blobs, second, "other@acme.example",
                         now=NOW + 2 * HOUR)
    assert len(records_of(sqlite_env.store, "manual.attestations")) == 1


def test_a_revocation_still_active_after_the_grace_is_an_exception(env: IdEnv) -> None:
    """Bob's IAM user, revoked in review, is still active in a read 8 days later: an exception in
    identity.revocations (CC6.2, CC6.3); Alice's, revoked too but removed, is done; within the
    grace the decision is recorded as pending, not an exception."""
    _seed(env)
    path = _decide(_start(env), {f"{ARN}alice": ("revoke", "left team"), f"{ARN}bob": ("revoke", "left")})
    import_decisions(env.settings, env.store, open_files(env.settings), path, "lead@acme.example", now=NOW)
    store_read(env.store, "aws.iam_users", [iam_user("bob", "bob@acme.example")], NOW + 2 * DAY)
    run_identity_checks(env.settings, env.store, ["aws.iam_users"], now=NOW + 2 * DAY)
    early = records_of(env.store, REVOCATIONS, NOW + 2 * DAY)
    assert early[f"aws-2026-Q4/{ARN}bob"]["status"] == "ok"
    assert early[f"aws-2026-Q4/{ARN}bob"]["data"]["state"] == "pending"
    store_read(env.store, "aws.iam_users", [iam_user("bob", "bob@acme.example")], NOW + 8 * DAY)
    run_identity_checks(env.settings, env.store, ["aws.iam_users"], now=NOW + 8 * DAY)
    late = records_of(env.store, REVOCATIONS, NOW + 8 * DAY)
    bob = late[f"aws-2026-Q4/{ARN}bob"]
    assert bob["status"] == "exception" and bob["controls"] == ["CC6.2", "CC6.3"]
    assert bob["exception_reason"] == ("aws account arn:aws:iam::123456789012:user/bob still active more than "
                                       "1w after lead@acme.example decided to revoke it in review aws-2026-Q4 "
                                       "(2026-11-20T09:00:00.000000Z)")
    assert f"aws-2026-Q4/{ARN}alice" not in late
    assert late["summary"]["data"] | {"reads": None} == {
        "grace": "1w", "revokes": 2, "done": 1, "pending": 0, "overdue": 1, "reads": None}
    status = campaign_status(env.settings, env.store, open_files(env.settings), now=NOW + 8 * DAY)
    assert status[0]["revocations"] == {"done": 1, "pending": 0, "overdue": 1}


def test_vendor_text_that_looks_like_a_formula_is_quoted_and_still_matches(sqlite_env: IdEnv) -> None:
    """An Okta login starting with '=' is written as text ('=...) in the worksheet; a decision on
    it, with the quote kept or dropped by a spreadsheet, is stored against the Okta user id."""
    store_read(sqlite_env.store, "okta.users", [okta("00u9", "=2+3@acme.example"),
                                                 okta("00u1", "alice@acme.example")], NOW)
    sheet = sqlite_env.dir / "okta.csv"
    blobs = open_files(sqlite_env.settings)
    start_review(sqlite_env.settings, sqlite_env.store, blobs, "okta", quarter="2026-Q4", out=sheet, now=NOW)
    assert "okta-2026-Q4,okta,'=2+3@acme.example,'=2+3@acme.example,okta," in sheet.read_text()
    decided = sqlite_env.dir / "decided.csv"
    decided.write_text("campaign,account,decision,comment\nokta-2026-Q4,=2+3@acme.example,revoke,odd\n")
    import_decisions(sqlite_env.settings, sqlite_env.store, blobs, decided, "lead@acme.example", now=NOW)
    (decision,) = records_of(sqlite_env.store, "manual.attestations").values()
    assert decision["data"]["account"] == "=2+3@acme.example" and decision["data"]["account_key"] == "00u9"
