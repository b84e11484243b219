"""Document and attestation intake benchmark: a large file into the blob store, a training CSV parsed.

  put     a --mb MiB file of random bytes (a temp dir) streamed into a local blob store
          (read, hash, write, fsync, publish), in its own subprocess so its peak RSS is its own
  parse   a generated --rows row training export parsed and validated by read_attestations
  s3      (--s3) the same file into an S3 blob store with Object Lock on a moto server subprocess
          (the client side: spool to a temp file while hashing, then one PutObject)

Baselines measured in the same run on the same file: `sha256sum` (read and hash every byte once:
the floor under put) and `cp` + `sync` (write every byte once and flush: the other half of put).
Bars: put peak RSS under 100 MB; parse (everything the import does before storing) under 5 s.
Usage: python bench/evidence_add.py [--mb 500] [--rows 10000] [--s3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAR_RSS_MB = 100.0
BAR_PARSE_SECONDS = 5.0
MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _phase_put(file: Path, store_url: str) -> dict[str, object]:
    from storage.blobs import open_blob_store

    store = open_blob_store(store_url)
    rss_before = _rss_mb()
    start = time.perf_counter()
    with file.open("rb") as stream:
        info = store.put(stream)
    return {"seconds": time.perf_counter() - start, "sha256": info.sha256, "size": info.size,
            "rss_mb": _rss_mb(), "rss_before_put_mb": rss_before}


def _phase_s3(file: Path, endpoint: str) -> dict[str, object]:
    import boto3

    from storage.blobs import open_blob_store

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="bench-locked", ObjectLockEnabledForBucket=True)
    store = open_blob_store("s3://bench-locked/docs", object_lock_days=1, s3_client=client)
    rss_before = _rss_mb()
    start = time.perf_counter()
    with file.open("rb") as stream:
        info = store.put(stream)
    return {"seconds": time.perf_counter() - start, "sha256": info.sha256, "size": info.size,
            "rss_mb": _rss_mb(), "rss_before_put_mb": rss_before}


def _phase_parse(csv_path: Path) -> dict[str, object]:
    start = time.perf_counter()
    from collector.attestations import parse_columns, read_attestations

    rows = read_attestations(csv_path, type="training",
                             columns=parse_columns("person=Employee Email,item=Course,at=Completed On"))
    return {"seconds": time.perf_counter() - start, "rows": len(rows), "rss_mb": _rss_mb()}


def _child(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout


def _make_file(path: Path, mb: int) -> None:
    with path.open("wb") as out:
        for _ in range(mb):
            out.write(os.urandom(MIB))


def _make_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("\ufeffEmployee Email,Full Name,Course,Completed On,Score\n")
        for n in range(rows):
            out.write(f"user{n:06d}@acme.example,User {n},Security awareness 2026,"
                      f"2026-01-{n % 28 + 1:02d}T09:{n % 60:02d}:00Z,{n % 100}\n")


def _moto_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start within 30 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="size of the document in MiB")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the training export")
    parser.add_argument("--s3", action="store_true", help="also upload to S3 with Object Lock on moto_server")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        phases = {"put": _phase_put, "s3": _phase_s3}
        result = _phase_parse(Path(rest[0])) if name == "parse" else phases[name](Path(rest[0]), rest[1])
        print(json.dumps(result))
        return 0

    work = args.keep or Path(tempfile.mkdtemp(prefix="ec-bench-evidence-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        doc, csv_path = work / "restore-test.bin", work / "training.csv"
        start = time.perf_counter()
        _make_file(doc, args.mb)
        made = time.perf_counter() - start
        _make_csv(csv_path, args.rows)
        size_mb = doc.stat().st_size / MIB
        print(f"document  {size_mb:.0f} MiB of random bytes written in {made:.1f} s ({work})")

        sha_s, sha_out = _timed(["sha256sum", str(doc)])
        copy = work / "copy.bin"
        cp_s, _ = _timed(["sh", "-c", f"cp '{doc}' '{copy}' && sync '{copy}'"])
        copy.unlink()
        put = _child("put", str(doc), str(work / "blobs"))
        assert put["sha256"] == sha_out.split()[0], "the blob store and sha256sum disagree"
        put_s = float(str(put["seconds"]))
        print(f"sha256sum {sha_s:6.2f} s  {size_mb / sha_s:7.0f} MiB/s  (baseline: read + hash)")
        print(f"cp + sync {cp_s:6.2f} s  {size_mb / cp_s:7.0f} MiB/s  (baseline: write + flush)")
        print(f"put       {put_s:6.2f} s  {size_mb / put_s:7.0f} MiB/s  peak RSS {put['rss_mb']:.1f} MB "
              f"(bar {BAR_RSS_MB:.0f} MB; {put['rss_before_put_mb']:.1f} MB before the put)  {put['sha256']}")

        ok = float(str(put["rss_mb"])) < BAR_RSS_MB
        if args.s3:
            server, endpoint = _moto_server()
            try:
                s3 = _child("s3", str(doc), endpoint)
            finally:
                server.terminate()
                server.wait()
            assert s3["sha256"] == put["sha256"]
            s3_s = float(str(s3["seconds"]))
            print(f"s3 put    {s3_s:6.2f} s  {size_mb / s3_s:7.0f} MiB/s  peak RSS {s3['rss_mb']:.1f} MB "
                  f"(boto3 imported: {s3['rss_before_put_mb']:.1f} MB)  moto_server on loopback, Object Lock")

        parse = _child("parse", str(csv_path))
        parse_s = float(str(parse["seconds"]))
        print(f"parse     {parse_s:6.2f} s  {parse['rows']} rows  peak RSS {parse['rss_mb']:.1f} MB "
              f"(bar {BAR_PARSE_SECONDS:.0f} s, with imports)")
        ok = ok and parse_s < BAR_PARSE_SECONDS and parse["rows"] == args.rows
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
