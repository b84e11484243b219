"""`collector identities` and `collector review` through the command's entry point."""

from __future__ import annotations

import orjson
import pytest
from identity_seed import HOUR, NOW, IdEnv, iam_user, member, okta, store_read

from collector.cli import main


def test_identities_json_lists_people_unlinked_and_service_accounts(sqlite_env: IdEnv,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """People with each account and how it was linked; the unlinked with why; the service accounts."""
    store_read(sqlite_env.store, "okta.users", [okta("00u1", "carol@acme.example")], NOW - HOUR)
    store_read(sqlite_env.store, "github.members", [member("carol-dev"), member("ghost")], NOW)
    store_read(sqlite_env.store, "aws.iam_users", [iam_user("ci-deploy")], NOW)
    assert main(["--config", str(sqlite_env.config), "identities", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    (carol,) = report["people"]
    assert carol["email"] == "carol@acme.example"
    assert [(a["system"], a["account"], a["how"]) for a in carol["accounts"]] == [
        ("okta", "carol@acme.example", "okta"), ("github", "acme/carol-dev", "override")]
    assert [(a["account"], a["why"]) for a in report["unlinked"]] == [
        ("acme/ghost", "no SAML identity email and no [identities.overrides.github] entry")]
    assert [a["account"] for a in report["service_accounts"]] == ["ci-deploy"]
    assert main(["--config", str(sqlite_env.config), "identities"]) == 0
    assert "acme/ghost" in capsys.readouterr().out


def test_review_commands_start_import_and_report_status(sqlite_env: IdEnv,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """start writes the worksheet, import stores its decisions, status counts them; a bad row is exit 2."""
    store_read(sqlite_env.store, "github.members", [member("carol-dev"), member("ghost")], NOW)
    config = ["--config", str(sqlite_env.config)]
    sheet = sqlite_env.dir / "sheet.csv"
    assert main([*config, "review", "start", "--system", "github", "--quarter", "2026-Q4",
                 "--out", str(sheet)]) == 0
    assert "github-2026-Q4: started: 2 accounts" in capsys.readouterr().out
    lines = sheet.read_text().splitlines()
    lines[2] = lines[2][:-1] + "revoke,nobody knows it"  # acme/ghost, the last two cells
    sheet.write_text("\n".join(lines) + "\n")
    bad = sqlite_env.dir / "bad.csv"
    bad.write_text(lines[0] + "\n" + lines[2].replace("acme/ghost", "acme/zed") + "\n")
    assert main([*config, "review", "import", str(bad), "--reviewer", "lead@acme.example"]) == 2
    assert "bad.csv: line 2: account 'acme/zed' is not in the population" in capsys.readouterr().err
    assert main([*config, "review", "import", str(sheet), "--reviewer", "lead@acme.example"]) == 0
    assert "stored 1 decisions (0 keep, 1 revoke)" in capsys.readouterr().out
    assert main([*config, "review", "status"]) == 0
    assert capsys.readouterr().out == ("github-2026-Q4: 1 of 2 decided (0 keep, 1 revoke); revocations "
                                       "0 done, 1 pending, 0 overdue\n")
