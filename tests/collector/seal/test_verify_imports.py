"""`collector verify` loads only what verification needs, and works without orjson."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seal_helpers import Env, add, record

from collector.canonical import canonical
from collector.seal import _format as fmt

HEAVY = ("sqlalchemy", "alembic", "structlog", "httpx", "boto3", "botocore", "github", "jira",
         "psycopg", "apscheduler", "rich", "jinja2", "prometheus_client", "storage", "connectors",
         "schedules", "rfc3161_client", "collector.records", "collector.config", "collector.catalog")

_PROBE = """
import json, sys
{block}
from collector.cli import main
code = main(sys.argv[1:])
fast = getattr(sys.modules.get("collector.seal._format"), "FAST", None)
print(json.dumps({{"code": code, "modules": sorted(sys.modules), "fast": fast}}))
"""


def _run(args: list[str], block: str = "") -> tuple[int, list[str], str]:
    code, modules, _, err = _run_fast(args, block)
    return code, modules, err


def _run_fast(args: list[str], block: str = "") -> tuple[int, list[str], bool, str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(block=block), *args],
                          capture_output=True, text=True, check=False)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report["code"], report["modules"], report["fast"], proc.stderr


@pytest.fixture
def sealed(env: Env) -> Path:
    add(env.store, [record(f"2026-10-{d:02d}T12:00:00", exception="x" if d == 3 else None)
                    for d in range(1, 9)])
    [snap] = env.sealer().seal("2026-10")
    return snap.path


def test_verify_imports_no_store_connectors_or_http(sealed: Path, env: Env) -> None:
    """Verifying a snapshot never imports the store, the connectors, HTTP clients or logging."""
    code, modules, err = _run(["verify", str(sealed), "--key", str(env.pub)])
    assert code == 0, err
    loaded = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []


def test_sample_imports_no_store_connectors_or_http(sealed: Path) -> None:
    """Sampling is as light as verifying."""
    code, modules, err = _run(["sample", str(sealed), "--criterion", "CC6.1", "--size", "2"])
    assert code == 0, err
    assert [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)] == []


def test_verify_works_with_only_the_standard_library_and_cryptography(sealed: Path, env: Env,
                                                                      tmp_path: Path) -> None:
    """With orjson unavailable, verification gives the same verdicts (valid, and tampered)."""
    block = "sys.modules['orjson'] = None"
    code, _, fast, err = _run_fast(["verify", str(sealed), "--key", str(env.pub)], block)
    assert code == 0 and fast is False, err

    bad = tmp_path / "2026-10.tar"
    with tarfile.open(sealed) as src, tarfile.open(bad, "w", format=tarfile.USTAR_FORMAT) as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "records.jsonl":
                data = data.replace(b"user.session.start", b"user.session.stopp", 1)
            dst.addfile(member, io.BytesIO(data))
    code, _, err = _run(["verify", str(bad), "--key", str(env.pub)], block)
    assert code == 1 and "records.jsonl line 1" in err


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127), max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_verifier_canonical_form_equals_the_collectors(value: object) -> None:
    """The verifier's stdlib JCS and its orjson JCS both equal the bytes the collector seals."""
    try:
        expected = canonical(value)
    except Exception:  # lone surrogates: the collector refuses them, so must the verifier
        with pytest.raises(Exception):
            fmt.stdlib_canonical(value)
        return
    assert fmt.stdlib_canonical(value) == expected
    assert fmt.canonical(value) == expected
    assert fmt.canonical(fmt.loads(expected)) == expected


def test_verifier_parser_refuses_values_outside_the_profile() -> None:
    """Floats, NaN and integers beyond 2**53 are not record JSON."""
    for text in (b'{"a":1.5}', b'{"a":NaN}', b'{"a":9007199254740993}', b'{"a":1e3}'):
        with pytest.raises(ValueError):
            fmt.loads(text)


_cells = st.none() | st.text(alphabet=st.sampled_from('ab,"\r\n x\u00e9=+-@\t'), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(_cells, min_size=8, max_size=8))
def test_population_rows_equal_the_csv_module(fields: list[str | None]) -> None:
    """Population rows are byte-for-byte what `csv.writer` writes, fast path or not, once a
    cell that a spreadsheet would run as a formula has its leading "'"."""
    import csv

    def neutral(f: str | None) -> str:
        if not f:
            return ""
        return "'" + f if f[0] in "=+-@\t\r" else f

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([neutral(f) for f in fields])
    expected = buf.getvalue().encode()
    line = fmt.CsvLine()
    assert line(fields) == expected
    assert line.row(*fields) == expected
