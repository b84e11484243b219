"""`collector digest` end to end: collect with the synthetic connector, then write the digest files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from collector.cli import main
from collector.windows import window_containing


def _config(tmp_path: Path, extra: str = "") -> Path:
    """Synthetic events hourly from midnight nine days ago (48 of them), seven users."""
    start = (datetime.now(UTC) - timedelta(days=9)).replace(hour=0, minute=0, second=0, microsecond=0)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "evidence.db"}"\n'
        f'[digest]\nout_dir = "digests"\n{extra}\n'
        f'[connectors.synthetic]\ncount = 48\nstep_seconds = 3600\nusers = 7\n'
        f'start = "{start.strftime("%Y-%m-%dT%H:%M:%SZ")}"\n'
    )
    return path


def test_collect_then_digest_writes_the_three_files(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """After a collection, `collector digest --week W` writes JSON, Markdown and HTML to out_dir
    with the collected events counted and both streams ok."""
    config = _config(tmp_path)
    assert main(["--config", str(config), "collect"]) == 0
    start = (datetime.now(UTC) - timedelta(days=9)).replace(hour=0, minute=0, second=0, microsecond=0)
    week = window_containing(start, "week", "UTC")
    assert main(["--config", str(config), "digest", "--week", week.id]) == 0
    out = tmp_path / "digests"
    assert sorted(p.name for p in out.iterdir()) == [f"digest-{week.id}.{e}" for e in ("html", "json", "md")]
    digest = orjson.loads((out / f"digest-{week.id}.json").read_bytes())
    assert digest["week"] == week.id
    assert digest["coverage"]["in_scope"] == 33  # every security criterion, not only those filed
    events = next(s for s in digest["streams"] if s["id"] == "synthetic.events")
    in_week = sum(1 for k in range(48) if week.contains(start + timedelta(hours=k)))
    assert (events["status"], events["records_week"]) == ("ok", in_week)
    assert str(out / f"digest-{week.id}.html") in capsys.readouterr().out


@pytest.mark.parametrize(("week", "message"), [
    ("2026-W60", "window '2026-W60': 2026 has no ISO week 60"),
    ("2026-11", "--week 2026-11: expected an ISO week like 2026-W48"),
    ("2026-48", "--week 2026-48: expected an ISO week like 2026-W48"),
])
def test_bad_week_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], week: str,
                                     message: str) -> None:
    """A malformed or non-week --week is one error line and exit 2, and writes nothing."""
    config = _config(tmp_path)
    assert main(["--config", str(config), "digest", "--week", week]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"collector: error: {message}"]
    assert not (tmp_path / "digests").exists()


def test_a_week_not_begun_is_refused_and_the_current_one_is_marked_partial(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A future --week is exit 2 naming the last complete week; the current week's digest says
    partial, the last complete week's does not."""
    config = _config(tmp_path)
    now = datetime.now(UTC)
    future = window_containing(now + timedelta(days=21), "week", "UTC")
    assert main(["--config", str(config), "digest", "--week", future.id, "--no-deliver"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    last = window_containing(now, "week", "UTC").previous()
    assert f"--week {future.id}: that week has not begun" in line and f"last complete week is {last.id}" in line
    assert not (tmp_path / "digests").exists()
    current = window_containing(now, "week", "UTC")
    for week, partial in ((current, True), (last, False)):
        assert main(["--config", str(config), "digest", "--week", week.id, "--no-deliver"]) == 0
        digest = orjson.loads((tmp_path / "digests" / f"digest-{week.id}.json").read_bytes())
        assert digest["partial"] is partial
        md = (tmp_path / "digests" / f"digest-{week.id}.md").read_text()
        assert ("PARTIAL: this week is still in progress" in md) is partial


def test_delivery_failure_exits_1_but_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """With a Slack webhook configured but its variable unset, the files are written, the failure is
    printed and the exit code is 1; --out overrides out_dir."""
    monkeypatch.delenv("EC_TEST_UNSET_WEBHOOK", raising=False)
    config = _config(tmp_path, 'slack_webhook_env = "EC_TEST_UNSET_WEBHOOK"')
    out = tmp_path / "elsewhere"
    assert main(["--config", str(config), "digest", "--week", "2026-W40", "--out", str(out)]) == 1
    assert len(list(out.glob("digest-2026-W40.*"))) == 3
    assert "delivery slack: failed: environment variable $EC_TEST_UNSET_WEBHOOK is not set" in \
        capsys.readouterr().err


def test_daemon_entry_point_writes_and_returns_the_json_path(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`collector.digest.write_digest(settings, store, week)` (the daemon's weekly job) writes the
    files to out_dir and returns the JSON path; a failed delivery is recorded, not raised."""
    from collector.config import load_settings
    from collector.digest import write_digest
    from storage import Store

    monkeypatch.delenv("EC_TEST_UNSET_WEBHOOK", raising=False)
    settings = load_settings(_config(tmp_path, 'slack_webhook_env = "EC_TEST_UNSET_WEBHOOK"'))
    store = Store.open(settings.storage_url)
    try:
        path = write_digest(settings, store, "2026-W40")
        with store.engine.connect() as conn:
            logged = conn.exec_driver_sql("SELECT week, channel, status FROM digest_deliveries").all()
    finally:
        store.close()
    assert path == tmp_path / "digests" / "digest-2026-W40.json"
    assert orjson.loads(path.read_bytes())["week"] == "2026-W40"
    assert [tuple(r) for r in logged] == [("2026-W40", "slack", "failed")]
