"""Sampling is reproducible from the Merkle root; the OSCAL assessment results validate."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import orjson
import pytest
from seal_helpers import Env, add, record

from collector.cli import main
from collector.seal.sample import sample


def _member(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        return tar.extractfile(name).read()  # type: ignore[union-attr]


@pytest.fixture
def window(env: Env) -> Path:
    add(env.store, [record(f"2026-10-{d:02d}T{h:02d}:00:00", exception="no MFA" if h == 6 else None)
                    for d in range(1, 29) for h in range(0, 24, 3)])
    add(env.store, [record("2026-10-02T00:00:00", controls=("CC8.1",), exception="merged unreviewed")])
    [snap] = env.sealer().seal("2026-10")
    return snap.path


def test_sample_is_the_n_smallest_ranks_and_repeats_exactly(window: Path) -> None:
    """The sample is the N rows with the smallest SHA-256(root:control:id), the same every time."""
    rows = sample(window, "CC6.1", 10)
    assert rows == sample(window, "CC6.1", 10)
    root = orjson.loads(_member(window, "manifest.json"))["merkle"]["root"]
    population = list(csv.reader(io.StringIO(_member(window, "criteria/CC6.1.csv").decode(),
                                             newline="")))
    header, body = population[0], population[1:]
    expected = sorted(body, key=lambda r: hashlib.sha256(f"{root}:CC6.1:{r[0]}".encode()).hexdigest())
    assert rows == [header, *expected[:10]]
    assert sample(window, "CC6.1", 10_000) == [header, *expected]
    assert sample(window, "CC7.2", 10)[1:] != rows[1:]  # the control is part of the rank
    # The auditor's seed, chosen after the snapshot, is part of the rank too.
    seeded = sorted(body, key=lambda r: hashlib.sha256(f"4-2-6:{root}:CC6.1:{r[0]}".encode()).hexdigest())
    assert sample(window, "CC6.1", 10, seed="4-2-6") == [header, *seeded[:10]]
    assert seeded[:10] != expected[:10]


def test_readme_shell_recipe_gives_the_same_sample(window: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The recipe in README.txt, run in a shell, picks the same record ids as `collector sample`."""
    with tarfile.open(window) as tar:
        tar.extractall(tmp_path, filter="data")
    readme = (tmp_path / "README.txt").read_text()
    recipe = readme.split("In a shell:\n", 1)[1]
    script = "\n".join(line[2:] for line in recipe.splitlines() if line.startswith("  "))
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout
    ids = [line.split()[1] for line in out.splitlines()]
    assert "seed='your text'" in script
    assert main(["sample", str(window), "--criterion", "CC6.1", "--size", "25", "--seed", "your text"]) == 0
    printed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert printed[0][0] == "record_id"
    assert [r[0] for r in printed[1:]] == ids and len(ids) == 25


def test_sample_errors_are_one_line_input_errors(window: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown control or a bad size is exit 2 naming it."""
    assert main(["sample", str(window), "--criterion", "CC9.9", "--size", "3"]) == 2
    assert "no population for CC9.9" in capsys.readouterr().err
    assert main(["sample", str(window), "--criterion", "CC6.1", "--size", "0"]) == 2


def test_readme_merkle_recipe_recomputes_the_root(window: Path, tmp_path: Path) -> None:
    """The Python recipe in README.txt prints the manifest's Merkle root."""
    with tarfile.open(window) as tar:
        tar.extractall(tmp_path, filter="data")
    readme = (tmp_path / "README.txt").read_text()
    block = readme.split("As a Python file:\n", 1)[1].split("\n\n", 1)[0]
    (tmp_path / "m.py").write_text("\n".join(line[4:] for line in block.splitlines()) + "\n")
    import sys

    out = subprocess.run([sys.executable, "m.py"], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == orjson.loads(_member(window, "manifest.json"))["merkle"]["root"]


def _validate(doc: dict[str, object]) -> object:
    from trestle.oscal.assessment_results import AssessmentResults

    parse = getattr(AssessmentResults, "model_validate", None) or AssessmentResults.parse_obj
    return parse(doc["assessment-results"])


def test_oscal_assessment_results_validate_and_carry_exceptions_as_findings(window: Path) -> None:
    """compliance-trestle accepts the results; exceptions are observations and not-satisfied findings."""
    doc = orjson.loads(_member(window, "oscal/assessment-results.json"))
    _validate(doc)
    manifest = orjson.loads(_member(window, "manifest.json"))
    result = doc["assessment-results"]["results"][0]
    assert (result["start"], result["end"]) == (manifest["window"]["start"], manifest["window"]["end"])
    findings = {f["target"]["target-id"]: f for f in result["findings"]}
    assert set(findings) == {"cc6.1_obj", "cc7.2_obj", "cc8.1_obj"}
    assert {f["target"]["status"]["state"] for f in findings.values()} == {"not-satisfied"}
    exceptions = [o for o in result["observations"] if o["types"] == ["finding"]]
    assert len(exceptions) == 28 + 1
    assert all(o["collected"].endswith("Z") for o in exceptions)
    resources = {r["title"]: r for r in doc["assessment-results"]["back-matter"]["resources"]}
    sums = {}
    for line in _member(window, "SHA256SUMS").decode().splitlines():
        name, digest = line.removeprefix("SHA256 (").split(") = ")
        sums[name] = digest
    for name in ("records.jsonl", "criteria/CC6.1.csv", "manifest.json"):
        assert resources[name]["rlinks"][0]["hashes"][0]["value"] == sums[name]


def test_oscal_of_an_empty_window_validates(env: Env) -> None:
    """An empty window's results still validate (no observations, all controls in scope)."""
    [snap] = env.sealer().seal("2026-10")
    _validate(orjson.loads(_member(snap.path, "oscal/assessment-results.json")))
