"""RFC 3161 timestamps from a local TSA (`openssl ts -reply` behind loopback HTTP) over the signature."""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from seal_helpers import Env, add, record

from collector.seal import _format as fmt
from collector.seal.snapshot import SealError
from collector.seal.tsa import TimestampError, http_timestamper
from collector.seal.verify import TrustedKeys, VerificationError, verify_snapshot
from storage.snapshots import snapshot_rows

_TS_CONF = """\
[ tsa ]
default_tsa = tsa1
[ tsa1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(root: Path, name: str) -> None:
    """A throwaway CA and a TSA certificate (critical EKU timeStamping) it issued."""
    root.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650", "-subj", f"/CN={name} Root",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=root)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/CN={name} TSA", cwd=root)
    (root / "ext.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                  "extendedKeyUsage=critical,timeStamping\n")
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "tsa.pem", "-days", "365", "-extfile", "ext.cnf", cwd=root)
    (root / "serial").write_text("01\n")
    (root / "ts.cnf").write_text(_TS_CONF.format(dir=root))


@dataclass
class Tsa:
    url: str
    ca: Path
    requests: list[int]
    server: ThreadingHTTPServer


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsa]:
    """A time-stamping authority on 127.0.0.1 answering with `openssl ts -reply`."""
    root = tmp_path_factory.mktemp("tsa")
    make_ca(root, "Test")
    requests: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(len(query))
            with tempfile.TemporaryDirectory() as work:
                (Path(work) / "q.tsq").write_bytes(query)
                proc = subprocess.run(
                    ["openssl", "ts", "-reply", "-config", str(root / "ts.cnf"), "-queryfile",
                     "q.tsq", "-out", "r.tsr"], cwd=work, capture_output=True, check=False)
                reply = (Path(work) / "r.tsr").read_bytes() if proc.returncode == 0 else b""
            self.send_response(200 if reply else 500)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Tsa(f"http://127.0.0.1:{server.server_address[1]}/tsa", root / "ca.pem", requests, server)
    finally:
        server.shutdown()
        server.server_close()


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _repack(path: Path, members: dict[str, bytes], out: Path) -> Path:
    from collector.seal._tar import write_tar

    with out.open("wb") as f:
        write_tar(f, [(n, members[n]) for n in sorted(members)], 0)
    return out


@pytest.fixture
def stamped(env: Env, tsa: Tsa) -> Path:
    add(env.store, [record(f"2026-10-{d:02d}T10:00:00") for d in range(1, 6)])
    [snap] = env.sealer(timestamper=http_timestamper(tsa.url)).seal("2026-10")
    return snap.path


def test_snapshot_carries_a_token_over_its_signature_verified_both_ways(
        stamped: Path, env: Env, tsa: Tsa, tmp_path: Path) -> None:
    """The .tsr verifies against the TSA's CA in the collector and with `openssl ts -verify`."""
    members = _members(stamped)
    assert fmt.FILE_TSR in members
    trust = TrustedKeys.load([env.pub])
    anchored = verify_snapshot(stamped, trust, [tsa.ca.read_bytes()])
    assert anchored.timestamp is not None and "not checked" not in anchored.timestamp
    unanchored = verify_snapshot(stamped, trust)
    assert unanchored.timestamp is not None and "not checked" in unanchored.timestamp
    with tarfile.open(stamped) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    proc = subprocess.run(["openssl", "ts", "-verify", "-in", fmt.FILE_TSR, "-data", fmt.FILE_SIG,
                           "-CAfile", str(tsa.ca)], cwd=tmp_path / "x", capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0 and "Verification: OK" in proc.stdout


def test_reseal_reuses_the_stored_token_without_asking_the_tsa(stamped: Path, env: Env, tsa: Tsa) -> None:
    """Re-sealing a stamped window is byte-identical and sends no request to the TSA."""
    before = stamped.read_bytes()
    asked = len(tsa.requests)
    [again] = env.sealer(timestamper=http_timestamper("http://127.0.0.1:9/unreachable")).seal("2026-10")
    assert again.path.read_bytes() == before and len(tsa.requests) == asked


def test_a_swapped_or_damaged_token_fails_verification(stamped: Path, env: Env, tsa: Tsa,
                                                       tmp_path: Path) -> None:
    """A token over other bytes, a corrupted token, or a token checked against another CA fails."""
    trust = TrustedKeys.load([env.pub])
    members = _members(stamped)
    other = http_timestamper(tsa.url)(b"some other signature bytes")
    swapped = _repack(stamped, {**members, fmt.FILE_TSR: other}, tmp_path / "a.tar")
    with pytest.raises(VerificationError, match=r"a\.tar: SHA256SUMS\.ed25519\.tsr: does not cover"):
        verify_snapshot(swapped, trust)
    broken = _repack(stamped, {**members, fmt.FILE_TSR: members[fmt.FILE_TSR][:-40]}, tmp_path / "b.tar")
    with pytest.raises(VerificationError, match=r"SHA256SUMS\.ed25519\.tsr: "):
        verify_snapshot(broken, trust)
    make_ca(tmp_path / "other", "Other")
    with pytest.raises(VerificationError, match="signature does not verify"):
        verify_snapshot(stamped, trust, [(tmp_path / "other" / "ca.pem").read_bytes()])


def test_an_unreachable_tsa_fails_the_seal_and_stores_nothing(env: Env) -> None:
    """When the TSA cannot be reached the seal fails with the config key named, and no row is stored."""
    add(env.store, [record("2026-10-03T10:00:00")])
    stamper = http_timestamper("http://127.0.0.1:9/tsa", timeout=1, attempts=1)
    with pytest.raises(TimestampError, match=r"\[signing\]\.tsa_url"):
        env.sealer(timestamper=stamper).seal("2026-10")
    assert snapshot_rows(env.store) == []
    assert not (env.out / "2026-10.tar").exists()
    assert SealError  # the store error type stays importable alongside


def test_verify_sh_checks_the_token_given_the_tsa_ca(stamped: Path, env: Env, tsa: Tsa,
                                                     tmp_path: Path) -> None:
    """verify.sh verifies the timestamp token against the TSA's CA certificate when given one,
    says it did not without, and fails naming the token against another CA."""
    with tarfile.open(stamped) as tar:
        tar.extractall(tmp_path / "s", filter="data")
    script = str(tmp_path / "s" / "verify.sh")
    fp = env.key.fingerprint
    done = subprocess.run(["sh", script, fp, str(tsa.ca)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "timestamp verified" in done.stdout, done.stderr
    done = subprocess.run(["sh", script, fp], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "timestamp not checked" in done.stdout
    make_ca(tmp_path / "other", "Other")
    done = subprocess.run(["sh", script, fp, str(tmp_path / "other" / "ca.pem")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("verify.sh: FAILED: SHA256SUMS.ed25519.tsr: ")
