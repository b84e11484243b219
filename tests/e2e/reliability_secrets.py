"""Canary secrets: every secret env var holds a unique random string; no output or stored byte may hold one."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reliability_inputs import edit_key
from reliability_kit import cli, fakes, lift_rate_limits, write_config

from sandbox._http import FakeServer, Response
from sandbox.world import DEMO_ENV, SandboxWorld, WorldEndpoints


def canary(label: str) -> str:
    """A unique string no program would produce by chance."""
    return f"canary-{label}-{secrets.token_hex(12)}"


@dataclass
class Canaries:
    """The secret environment for one run, and every form a leak of it could take."""

    env: dict[str, str]
    forms: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fresh(cls, webhook_base: str) -> Canaries:
        """New canaries for every secret variable; the Slack webhook is a loopback URL holding one."""
        env = {
            **DEMO_ENV,
            "OKTA_API_TOKEN": canary("okta"),
            "GITHUB_TOKEN": canary("github"),
            "JIRA_EMAIL": f"{canary('jira-email')}@example.com",
            "JIRA_API_TOKEN": canary("jira"),
            "AWS_SECRET_ACCESS_KEY": canary("aws"),
            "SLACK_WEBHOOK_URL": f"{webhook_base}/services/T000/B000/{canary('slack')}",
        }
        forms = {k: env[k] for k in ("OKTA_API_TOKEN", "GITHUB_TOKEN", "JIRA_API_TOKEN",
                                     "AWS_SECRET_ACCESS_KEY", "SLACK_WEBHOOK_URL")}
        forms["SLACK_WEBHOOK_URL path"] = env["SLACK_WEBHOOK_URL"].rsplit("/", 1)[1]
        forms["SLACK_WEBHOOK_URL quoted"] = quote(env["SLACK_WEBHOOK_URL"], safe="")
        basic = f"{env['JIRA_EMAIL']}:{env['JIRA_API_TOKEN']}".encode()
        forms["Jira basic auth"] = base64.b64encode(basic).decode()
        return cls(env, forms)

    def found_in(self, data: bytes) -> list[str]:
        """The names of the canaries ``data`` holds."""
        return [name for name, value in self.forms.items() if value.encode() in data]


@contextmanager
def slack_receiver() -> Iterator[FakeServer]:
    """A loopback stand-in for Slack's incoming webhooks: any POST under /services/ answers ok."""
    server = FakeServer()
    server.route("POST", r"^/services/", lambda request: Response(200, b"ok", [("Content-Type", "text/plain")]))
    with server:
        yield server


def accept(world: SandboxWorld, canaries: Canaries) -> None:
    """Make the fakes accept exactly these credentials (a wrong one then gets the vendor's 401)."""
    f: dict[str, Any] = dict(fakes(world))
    f["okta"].token = canaries.env["OKTA_API_TOKEN"]
    f["github"].token = canaries.env["GITHUB_TOKEN"]
    f["jira"].email = canaries.env["JIRA_EMAIL"]
    f["jira"].token = canaries.env["JIRA_API_TOKEN"]


@dataclass
class Scan:
    """Where canaries were found, and what was looked at."""

    leaks: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0


def scan_outputs(scan: Scan, canaries: Canaries, name: str, result: Any) -> None:
    """Look for canaries in a command's stdout and stderr."""
    scan.commands.append(f"{name}: exit {result.returncode}")
    for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        for leak in canaries.found_in(text.encode()):
            scan.leaks.append(f"{name} {stream}: {leak}")


def scan_files(scan: Scan, canaries: Canaries, folder: Path) -> None:
    """Look for canaries in every byte of every file under ``folder`` (database, WAL, digests, tars)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        scan.files += 1
        scan.bytes += len(data)
        for leak in canaries.found_in(data):
            scan.leaks.append(f"{path.relative_to(folder)}: {leak}")


def secret_run(world: SandboxWorld, ep: WorldEndpoints, folder: Path, receiver: FakeServer) -> Scan:
    """Collect, digest (delivered to Slack), seal and verify with canary secrets at debug log level,
    then collect again with every token wrong; scan every output and every file written."""
    import os

    scan = Scan()
    right = Canaries.fresh(receiver.url)
    config = write_config(folder, ep)
    config.write_text(edit_key(config.read_text(), "digest", "slack_webhook_env", '"SLACK_WEBHOOK_URL"'))
    accept(world, right)
    lift_rate_limits(world)
    env = {**os.environ, **right.env}
    steps = [("collect", ("collect",)), ("digest", ("digest",)), ("keys init", ("keys", "init")),
             ("seal", ("seal",)), ("streams", ("streams",))]
    for name, args in steps:
        result = cli(config, "--log-level", "debug", *args, env=env)
        scan_outputs(scan, right, name, result)
        if result.returncode != 0:
            scan.leaks.append(f"{name} failed: exit {result.returncode}: {result.stderr[-300:]}")
    from collector.config import load_settings

    settings = load_settings(config)  # [seal] out_dir: where `seal` wrote, as the demo would
    tars = sorted(str(p) for p in settings.resolve(settings.seal.out_dir).glob("*.tar"))
    key = next((folder / "keys").glob("*.pub.pem"))
    result = cli(None, "--log-level", "debug", "verify", *tars, "--key", str(key), env=env)
    scan_outputs(scan, right, "verify", result)
    if result.returncode != 0 or not tars:
        scan.leaks.append(f"verify failed: exit {result.returncode}: {result.stderr[-300:]}")
    if receiver.count("POST", "/services/") == 0:
        scan.leaks.append("the digest was not delivered to the Slack receiver")
    wrong = Canaries.fresh(receiver.url)
    wrong_env = {**os.environ, **{k: v for k, v in wrong.env.items() if k != "SLACK_WEBHOOK_URL"}}
    result = cli(config, "--log-level", "debug", "collect", env=wrong_env)
    scan_outputs(scan, wrong, "collect with wrong tokens", result)
    if result.returncode != 1 or "401" not in result.stdout + result.stderr:
        scan.leaks.append(f"wrong tokens: exit {result.returncode}, no 401 reported")
    scan_files(scan, right, folder)
    scan_files(scan, wrong, folder)
    return scan
