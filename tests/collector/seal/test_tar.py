"""Crafted tars that other readers treat differently from `tar -xf` are refused before any check.

Each case starts from a genuine sealed snapshot and changes only the tar container: a second
header that tarfile would stop at but GNU tar would extract, sparse/pax/symlink members, a
negative base-256 size (a tarfile infinite loop), data after the end marker.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from seal_helpers import Env, add, record

from collector.seal.sample import sample
from collector.seal.verify import TrustedKeys, VerificationError, verify_snapshot


def _sealed(env: Env) -> Path:
    add(env.store, [record("2026-10-02T00:00:00", exception="no MFA"), record("2026-10-03T00:00:00")])
    [snap] = env.sealer().seal("2026-10")
    return snap.path


def _end_of_members(data: bytes) -> int:
    """Offset of the end-of-archive marker (the first all-zero header block)."""
    at = 0
    while data[at:at + 512] != bytes(512):
        size = int(data[at + 124:at + 136].rstrip(b"\0 ") or b"0", 8)
        at += 512 + size + (-size % 512)
    return at


def _header(name: str, length: int, typeflag: bytes = b"0", **fields: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode = length, 0o644
    block = bytearray(info.tobuf(format=tarfile.USTAR_FORMAT)[:512])
    block[156:157] = typeflag
    offsets = {"devmajor": (329, 337), "size": (124, 136)}
    for key, value in fields.items():
        start, end = offsets[key]
        block[start:end] = value
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _append(path: Path, out: Path, header: bytes, payload: bytes = b"") -> Path:
    data = path.read_bytes()
    end = _end_of_members(data)
    out.write_bytes(data[:end] + header + payload + bytes(-len(payload) % 512) + bytes(1024))
    return out


def _cases(path: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    genuine = tarfile.open(path)
    records = genuine.extractfile("records.jsonl").read()  # type: ignore[union-attr]
    genuine.close()
    doctored = records.replace(b'"status":"exception"', b'"status":"ok"')
    assert doctored != records
    return {
        # tarfile stops at the bad devmajor and never sees this copy; GNU tar extracts it.
        "second records.jsonl": (
            _append(path, tmp / "devmajor.tar",
                    _header("records.jsonl", len(doctored), devmajor=b"zzzzzzz\0"), doctored),
            "appears twice"),
        "sparse member": (
            _append(path, tmp / "sparse.tar", _header("notes.txt", 0, typeflag=b"S")),
            "is not a regular file"),
        "pax header": (
            _append(path, tmp / "pax.tar", _header("pax", 30, typeflag=b"x"), b"30 path=" + b"9" * 21 + b"\n"),
            "is not a regular file"),
        "symlink": (
            _append(path, tmp / "link.tar", _header("link", 0, typeflag=b"2")),
            "is not a regular file"),
        "negative base-256 size": (
            _append(path, tmp / "negsize.tar",
                    _header("big.txt", 0, size=b"\xff" + b"\xff" * 10 + b"\x00")),
            "not a plain octal number"),
        "path traversal": (
            _append(path, tmp / "dotdot.tar", _header("../evil.sh", 4), b"boo\n"),
            "is not one a snapshot has"),
        "data after the end marker": (
            tmp / "trailing.tar",
            "data after the end-of-archive marker"),
    }


def test_crafted_containers_are_refused_by_verify_and_sample(env: Env, tmp_path: Path) -> None:
    path = _sealed(env)
    trust = TrustedKeys.load([env.pub])
    verify_snapshot(path, trust)  # the genuine snapshot verifies
    cases = _cases(path, tmp_path)
    (tmp_path / "trailing.tar").write_bytes(path.read_bytes() + b"records.jsonl and more")
    for label, (crafted, problem) in cases.items():
        with pytest.raises(VerificationError, match=problem):
            verify_snapshot(crafted, trust)
        with pytest.raises(VerificationError, match=problem):
            sample(crafted, "CC6.1", 5)
        assert label


def test_genuine_snapshot_passes_the_strict_reader_and_gnu_tar_agrees(env: Env, tmp_path: Path) -> None:
    """The strict reader accepts exactly what the sealer writes: every member, same bytes as tar."""
    import subprocess

    from collector.seal._tar import SnapshotTar

    path = _sealed(env)
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(path), "-C", str(out)], check=True)
    with SnapshotTar(path) as tar:
        names = set(tar.members)
        for name in names:
            assert tar.read(name) == (out / name).read_bytes(), name
    assert names == {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
