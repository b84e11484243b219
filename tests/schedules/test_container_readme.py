"""README's `docker run` example as written: its preparation runs on the host, and each container
it starts is run as the image runs it (entrypoint, env, cwd /data, non-root, the mounts)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _daemon import REPO, DaemonProcess
from test_container import _env, _one, _unprivileged

README = (REPO / "README.md").read_text()


def _docker_block() -> list[str]:
    """The commands of README's container block, continuation lines joined."""
    section = README.split("## Running the container", 1)[1]
    body = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in body.replace("\\\n", " ").splitlines() if line.strip()]


@dataclass
class DockerRun:
    """One `docker run` line: its options, image and the arguments after the image."""

    volumes: list[tuple[str, str]] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    group_add: list[str] = field(default_factory=list)
    restart: str = "no"
    image: str = ""
    args: list[str] = field(default_factory=list)


def _parse_run(line: str, pwd: Path) -> DockerRun:
    words = shlex.split(line.replace("$PWD", str(pwd)).replace("$(id -g)", str(os.getgid())),
                        comments=True)
    assert words[:2] == ["docker", "run"], line
    run, rest = DockerRun(), words[2:]
    with_value = {"-v": run.volumes, "-e": run.env, "-p": run.ports, "--group-add": run.group_add}
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in with_value:
            value = rest.pop(0)
            target: list[Any] = with_value[option]
            target.append(tuple(value.split(":")[:2]) if option == "-v" else value)
        elif option == "--restart":
            run.restart = rest.pop(0)
        elif option in ("--name", "--stop-timeout"):
            rest.pop(0)
        else:
            assert option in ("--rm", "-d"), f"unexpected docker option {option}: {line}"
    run.image, run.args = rest[0], rest[1:]
    return run


@pytest.fixture
def clone() -> Iterator[Path]:
    """A folder standing for the clone the README's commands run in (readable by the image's user)."""
    root = Path(tempfile.mkdtemp(prefix="ec-clone-"))
    root.chmod(0o755)
    (root / "deploy").mkdir()
    shutil.copy(REPO / "deploy" / "standalone.toml", root / "deploy" / "standalone.toml")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _container(run: DockerRun, clone: Path, volume: Path) -> tuple[list[str], dict[str, str], Path]:
    """The entrypoint argv, env and /data a container of ``run`` would have here: the named volume
    is ``volume``, a bind-mounted file is copied in, and a mount outside /data is reached by
    its host path (the config's container path rewritten to it)."""
    assert run.image == "evidence-collector"
    outside: dict[str, str] = {}
    for source, target in run.volumes:
        if target == "/data":
            assert "/" not in source, "the volume is a named volume"
        elif target.startswith("/data/"):
            shutil.copy(source, volume / target.removeprefix("/data/"))
        else:
            assert not source.startswith(str(volume)), "a secret mounted from inside the volume"
            outside[target] = source
    config = volume / "config.toml"
    text = config.read_text()
    for target, source in outside.items():
        text = text.replace(target, source)
    config.write_text(text)
    env = {k: v.replace("/data", str(volume)) for k, v in _env().items()}
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    for name in run.env:
        if name in os.environ:
            env[name] = os.environ[name]
    argv = [*json.loads(_one("ENTRYPOINT")), *(run.args or json.loads(_one("CMD")))]
    argv[0] = shutil.which(argv[0], path=env["PATH"]) or argv[0]
    return argv, env, volume


def test_readme_docker_run_sequence_starts_as_written(clone: Path) -> None:
    """The README's preparation makes a config and a key; `run --check` passes, `keys show` prints
    the key's openssl fingerprint, and the last command's daemon serves /healthz on a port published
    on 127.0.0.1, all as the unprivileged user reading the key through --group-add; the key never
    enters the volume."""
    lines = _docker_block()
    assert lines[0] == "docker build -t evidence-collector ."
    runs = [line for line in lines if line.startswith("docker run")]
    for line in lines[1:]:
        if not line.startswith("docker "):
            done = subprocess.run(["sh", "-c", line], cwd=clone, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{line}: {done.stderr}"
    key = clone / "secrets" / "seal-ed25519.pem"
    assert key.is_file() and key.stat().st_mode & 0o777 == 0o640
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    fingerprint = hashlib.sha256(der).hexdigest()

    volume = Path(tempfile.mkdtemp(prefix="ec-volume-"))
    volume.chmod(0o755)
    user = _unprivileged()
    if user is not None:
        shutil.chown(volume, "nobody", "nogroup")
    ids: dict[str, Any] = {} if user is None else {"user": user, "group": user, "extra_groups": [os.getgid()]}
    try:
        parsed = [_parse_run(line, clone) for line in runs]
        for run in parsed:
            assert run.group_add == [str(os.getgid())]
        check, show, daemon_run = parsed
        for run, expected in ((check, "the daemon can start"), (show, fingerprint)):
            argv, env, cwd = _container(run, clone, volume)
            done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
                                  **ids)
            assert done.returncode == 0 and expected in done.stdout, done.stdout + done.stderr
        assert daemon_run.restart == "unless-stopped" and daemon_run.args == []
        assert daemon_run.ports == ["127.0.0.1:9108:9108"]
        argv, env, cwd = _container(daemon_run, clone, volume)
        env["COLLECTOR_LISTEN"] = "127.0.0.1:0"  # the image binds 0.0.0.0:9108; tests stay on loopback
        daemon = DaemonProcess(volume / "config.toml", argv=argv, env=env, cwd=cwd, user=user,
                               extra_groups=(os.getgid(),), port_file=False)
        try:
            status, body = daemon.health()
            assert status == 200, body
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(timeout=10) == 0
        finally:
            daemon.kill()
        assert not [p for p in volume.rglob("*") if p.name.startswith("seal-ed25519")]
    finally:
        shutil.rmtree(volume, ignore_errors=True)
