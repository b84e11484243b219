"""Commands for snapshots and keys: `seal`, `verify`, `sample`, `keys init` and `keys show`.

`verify` and `sample` need no config and import only what verification needs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the snapshot and key commands to the command parser."""
    p = sub.add_parser("seal", help="seal an ended window into a signed snapshot")
    p.add_argument("--window", metavar="ID", help="e.g. 2026-11, 2026-W48, 2026-Q4 "
                   "(default: the last window whose end plus [windows].seal_grace has passed)")
    p.add_argument("--amend", action="store_true",
                   help="seal records stored since the window was sealed into an amendment")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="where snapshots are written (default: data/snapshots beside the config)")
    p.set_defaults(func=cmd_seal)

    p = sub.add_parser("verify", help="verify snapshots (several, in order: also their chain)")
    p.add_argument("snapshots", nargs="+", metavar="SNAPSHOT")
    p.add_argument("--key", action="append", default=[], metavar="PUB",
                   help="a trusted public key (PEM); repeatable for rotated keys")
    p.add_argument("--fingerprint", action="append", default=[], metavar="HEX",
                   help="a trusted key's SPKI SHA-256; repeatable")
    p.add_argument("--tsa-ca", action="append", default=[], metavar="PEM",
                   help="the time-stamping authority's CA certificate, to anchor timestamp tokens")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("sample", help="a reproducible sample of a criterion's population")
    p.add_argument("snapshot", metavar="SNAPSHOT")
    p.add_argument("--control", required=True, metavar="ID", help="a criterion such as CC6.1")
    p.add_argument("--size", required=True, type=int, metavar="N")
    p.add_argument("--seed", default="", metavar="TEXT",
                   help="your own value, chosen after you received the snapshot, so that nobody "
                        "who sealed it could have steered the sample")
    p.set_defaults(func=cmd_sample)

    keys = sub.add_parser("keys", help="the Ed25519 sealing key")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    keys_sub.required = True
    p = keys_sub.add_parser("init", help="create the sealing key and print its fingerprint")
    p.set_defaults(func=cmd_keys_init)
    p = keys_sub.add_parser("show", help="print the public key and its fingerprint")
    p.set_defaults(func=cmd_keys_show)


def _key_file(args: argparse.Namespace) -> tuple[Any, Path]:
    from collector.cli_collect import settings_from

    settings = settings_from(args)
    return settings, settings.resolve(settings.signing.key_file)


def _print_key(key_file: Path, public: Any) -> None:
    from collector.seal.keys import fingerprint, public_key_path, public_pem

    sys.stdout.write(public_pem(public).decode())
    print(f"private key:  {key_file}")
    print(f"public key:   {public_key_path(key_file)}")
    print(f"fingerprint:  {fingerprint(public)}  (SPKI SHA-256: give it to the auditor out of band)")


def cmd_keys_init(args: argparse.Namespace) -> int:
    """`collector keys init`: a new Ed25519 key (0600) and its public key; never overwrites."""
    from collector.errors import InputError
    from collector.seal.keys import KeyFileError, create_key

    _, key_file = _key_file(args)
    try:
        key = create_key(key_file)
    except KeyFileError as exc:
        raise InputError(str(exc)) from None
    _print_key(key_file, key.public)
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    """`collector keys show`: the public key and fingerprint of the configured sealing key."""
    from collector.errors import ConfigError
    from collector.seal.keys import KeyFileError, load_sealing_key

    settings, key_file = _key_file(args)
    try:
        key = load_sealing_key(key_file)
    except KeyFileError as exc:
        raise ConfigError(str(settings.path), "signing.key_file", str(exc)) from None
    _print_key(key_file, key.public)
    return 0


def cmd_seal(args: argparse.Namespace) -> int:
    """`collector seal`: seal the window (earlier unsealed ones first) or amend it."""
    from collector.cli_collect import open_store, settings_from
    from collector.errors import InputError
    from collector.seal.snapshot import sealer_from_settings

    settings = settings_from(args)
    if args.amend and not args.window:
        raise InputError("--amend needs --window ID: the sealed window to amend")
    store = open_store(settings)
    try:
        sealer = sealer_from_settings(settings, store, Path(args.out) if args.out else None)
        if args.amend:
            amended = sealer.amend(args.window)
            if amended is None:
                print(f"window {args.window}: no records stored since it was sealed; nothing to amend")
                return 0
            results = [amended]
        else:
            results = sealer.seal(args.window)
    finally:
        store.close()
    for r in results:
        verb = "re-wrote" if r.reproduced else "sealed"
        print(f"{verb} {r.path} ({r.records:,} records, Merkle root {r.merkle_root})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """`collector verify`: exit 0 when every snapshot and the chain between them are valid."""
    from collector.errors import InputError
    from collector.seal.verify import TrustedKeys, Verified, verify_chain

    for snapshot in args.snapshots:
        if not Path(snapshot).is_file():
            what = "is a folder" if Path(snapshot).is_dir() else "does not exist"
            raise InputError(f"{snapshot}: {what}; give snapshot .tar files")
    trust = TrustedKeys.load(args.key, args.fingerprint)
    roots = []
    for path in args.tsa_ca:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(f"--tsa-ca {path}: {exc.strerror or exc}") from None
        from collector.seal.tsa import certificate_problem

        problem = certificate_problem(data)
        if problem:
            raise InputError(f"--tsa-ca {path}: {problem}")
        roots.append(data)

    def report(v: Verified) -> None:
        what = f"window {v.window_id}" + (f" amendment {v.seq}" if v.seq else "")
        link = "genesis" if v.previous is None else (
            f"after {v.previous['window']}" + (f"#{v.previous['seq']}" if v.previous["seq"] else ""))
        stamp = f", timestamp {v.timestamp}" if v.timestamp else ""
        print(f"OK {v.path.name}: {what}, {v.records:,} records, Merkle root {v.merkle_root}, "
              f"key {v.key}, {link}{stamp}", flush=True)

    done = verify_chain(args.snapshots, trust, roots, on_verified=report)
    if len(done) > 1:
        print(f"OK chain of {len(done)} snapshots")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """`collector sample`: print the sample as CSV with the population file's header."""
    import csv

    from collector.seal.sample import sample

    rows = sample(args.snapshot, args.control, args.size, args.seed)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerows(rows)
    return 0
