"""Secrets never leave the environment: canaries planted in env and config appear in no output and no store byte."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

from _daemon import DaemonProcess, write_config


def test_canaries_in_env_and_config_never_reach_logs_responses_or_the_store(tmp_path: Path) -> None:
    """With debug logging, failing runs and item failures, no canary is in stdout, stderr, /healthz, /metrics or the db."""
    tag = uuid.uuid4().hex
    canaries = {
        "EC_CANARY_TOKEN": f"canary-token-{tag}",
        "EC_CANARY_SLACK": f"https://hooks.slack.invalid/services/canary-slack-{tag}",
        "EC_CANARY_SMTP": f"canary-smtp-{tag}",
    }
    config_canary = f"canary-config-{tag}"
    config = write_config(
        tmp_path,
        synthetic={"count": 80, "fail_at": 60, "bad_items": ["evt-000000007"],
                   "token_env": "EC_CANARY_TOKEN"},
        extra=(
            "\n[digest]\n"
            'slack_webhook_env = "EC_CANARY_SLACK"\n'
            'smtp_host = "smtp.invalid"\n'
            'mail_from = "collector@example.com"\n'
            'mail_to = ["lead@example.com"]\n'
            f'smtp_user = "{config_canary}"\n'
            'smtp_password_env = "EC_CANARY_SMTP"\n'
        ),
    )
    daemon = DaemonProcess(config, args=(), env=canaries, log_level="debug")
    bodies: list[bytes] = []
    try:
        daemon.wait_until("failing runs logged", lambda: daemon.metric(
            "collector_runs_total", stream="synthetic.events", status="failed") >= 2)
        bodies += [daemon.get("/healthz")[1], daemon.get("/metrics")[1]]
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    finally:
        daemon.kill()
    events = daemon.events()
    assert any(e["event"] == "item_failed" for e in events)
    assert any(e["event"] == "run_finished" and e["status"] == "failed" for e in events)
    outputs = {
        "stdout": daemon.stdout_path.read_bytes(),
        "stderr": daemon.stderr_path.read_bytes(),
        "responses": b"".join(bodies),
    }
    for db in tmp_path.glob("evidence.db*"):  # the database, its WAL and shared-memory files
        outputs[db.name] = db.read_bytes()
    assert outputs["evidence.db"], "the store is empty: nothing was scanned"
    for where, data in outputs.items():
        for secret in [*canaries.values(), config_canary]:
            assert secret.encode() not in data, f"{secret} leaked into {where}"
            assert tag.encode() not in data, f"part of a canary leaked into {where}"
