"""`collector verify`: verify snapshots offline, and the chain between them; needs no config.

Imports only what verification needs: no store, connectors, HTTP clients or logging.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from collector.errors import InputError

if TYPE_CHECKING:
    from collector.seal.verify import TrustedKeys, Verified

__all__ = ["add_arguments", "run", "trusted_keys"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Snapshots, and the keys and time-stamping CAs to trust."""
    parser.add_argument("snapshots", nargs="+", metavar="SNAPSHOT",
                        help="snapshot tars; several in window order are also checked as a chain")
    parser.add_argument("--key", action="append", default=[], metavar="PUB",
                        help="a trusted public key (PEM); repeatable for rotated keys")
    parser.add_argument("--fingerprint", action="append", default=[], metavar="HEX",
                        help="a trusted key's SPKI SHA-256; repeatable")
    parser.add_argument("--tsa-ca", action="append", default=[], metavar="PEM",
                        help="the time-stamping authority's CA certificate, to anchor timestamp tokens")


def trusted_keys(args: argparse.Namespace) -> TrustedKeys:
    """The keys ``--key`` and ``--fingerprint`` name; an InputError names the flag to fix."""
    from collector.seal.keys import FingerprintError, KeyFileError, NoTrustedKeyError
    from collector.seal.verify import TrustedKeys

    try:
        return TrustedKeys.load(args.key, args.fingerprint)
    except KeyFileError as exc:
        raise InputError(f"--key {exc}") from None
    except FingerprintError as exc:
        raise InputError(f"--fingerprint {exc}") from None
    except NoTrustedKeyError:
        raise InputError("no trusted key: pass --key PUB.pem or --fingerprint HEX (the SPKI "
                         "SHA-256 the organisation gave you out of band)") from None


def _tsa_roots(paths: list[str]) -> list[bytes]:
    """The ``--tsa-ca`` certificates; an InputError names the one that cannot be used."""
    roots = []
    for path in paths:
        from collector.readcap import MAX_CA_FILE, FileRefused, read_capped

        try:
            data = read_capped(Path(path), MAX_CA_FILE)
        except OSError as exc:
            raise InputError(f"--tsa-ca {path}: {exc.strerror or exc}") from None
        except FileRefused as exc:
            raise InputError(f"--tsa-ca {path}: {exc}") from None
        from collector.seal.tsa import certificate_problem  # only when a CA is given

        problem = certificate_problem(data)
        if problem:
            raise InputError(f"--tsa-ca {path}: {problem}")
        roots.append(data)
    return roots


def _report(v: Verified) -> None:
    if v.type == "type1":
        print(f"OK {v.path.name}: Type 1 as of {v.as_of}, {v.records:,} records, "
              f"{len(v.controls)} controls, {v.files} documents, Merkle root {v.merkle_root}, "
              f"key {v.key}, outside the chain" + (f", timestamp {v.timestamp}" if v.timestamp
                                                   else ""), flush=True)
        return
    what = f"window {v.window_id}" + (f" amendment {v.seq}" if v.seq else "")
    link = "genesis" if v.previous is None else (
        f"after {v.previous['window']}" + (f"#{v.previous['seq']}" if v.previous["seq"] else ""))
    stamp = f", timestamp {v.timestamp}" if v.timestamp else ""
    print(f"OK {v.path.name}: {what}, {v.records:,} records, Merkle root {v.merkle_root}, "
          f"key {v.key}, {link}{stamp}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every snapshot and the chain between them are valid (a VerificationError: 1)."""
    from collector.seal.verify import verify_chain

    for snapshot in args.snapshots:
        if not Path(snapshot).is_file():
            what = "is a folder" if Path(snapshot).is_dir() else "does not exist"
            raise InputError(f"{snapshot}: {what}; give snapshot .tar files")
    trust = trusted_keys(args)
    roots = _tsa_roots(args.tsa_ca)
    done = verify_chain(args.snapshots, trust, roots, on_verified=_report)
    chained = sum(1 for v in done if v.type == "window")
    if chained > 1:
        print(f"OK chain of {chained} snapshots")
    return 0
