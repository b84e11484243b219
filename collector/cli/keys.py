"""`collector keys init` and `collector keys show`: the Ed25519 sealing key and its fingerprint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from collector.cli._common import settings_from
from collector.errors import ConfigError, InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from collector.config import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``init`` and ``show`` actions."""
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    actions.required = True
    actions.add_parser("init", help="create the sealing key and print its fingerprint")
    actions.add_parser("show", help="print the public key and its fingerprint")


def _key_file(args: argparse.Namespace) -> tuple[Settings, Path]:
    settings = settings_from(args)
    return settings, settings.resolve(settings.signing.key_file)


def _print_key(key_file: Path, public: Ed25519PublicKey) -> None:
    from collector.seal.keys import fingerprint, public_key_path, public_pem

    sys.stdout.write(public_pem(public).decode())
    print(f"private key:  {key_file}")
    print(f"public key:   {public_key_path(key_file)}")
    print(f"fingerprint:  {fingerprint(public)}  (SPKI SHA-256: give it to the auditor out of band)")


def _init(args: argparse.Namespace) -> int:
    """A new Ed25519 key (0600) and its public key; never overwrites."""
    from collector.seal.keys import KeyFileError, create_key

    _, key_file = _key_file(args)
    try:
        key = create_key(key_file)
    except KeyFileError as exc:
        raise InputError(str(exc)) from None
    _print_key(key_file, key.public)
    return 0


def _show(args: argparse.Namespace) -> int:
    """The public key and fingerprint of the configured sealing key."""
    from collector.seal.keys import KeyFileError, load_sealing_key

    settings, key_file = _key_file(args)
    try:
        key = load_sealing_key(key_file)
    except KeyFileError as exc:
        raise ConfigError(str(settings.path), "signing.key_file", str(exc)) from None
    _print_key(key_file, key.public)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the action named after ``keys``; exit 0."""
    return _init(args) if args.keys_command == "init" else _show(args)
