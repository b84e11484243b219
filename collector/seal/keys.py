"""The Ed25519 sealing key: creation (PEM, mode 0600), loading and SPKI SHA-256 fingerprints."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from collector.errors import CollectorError
from collector.filemodes import DELIVERABLE, PRIVATE, PRIVATE_DIR, make_dirs, set_mode
from collector.readcap import MAX_KEY_FILE, FileRefused, read_private

__all__ = [
    "FingerprintError",
    "KeyFileError",
    "NoTrustedKeyError",
    "SealingKey",
    "create_key",
    "fingerprint",
    "load_public_key",
    "load_sealing_key",
    "public_key_path",
    "public_pem",
]


class KeyFileError(CollectorError):
    """A key file is missing, unreadable or not an Ed25519 key; the message names the file."""

    exit_code = 2


class FingerprintError(CollectorError):
    """A key fingerprint is not a SPKI SHA-256 (64 hex digits); the message names it."""

    exit_code = 2


class NoTrustedKeyError(CollectorError):
    """Nothing to verify against: neither a public key nor a fingerprint was given."""

    exit_code = 2


def public_key_path(key_file: Path) -> Path:
    """Where the public key lives beside the private one: ``seal-ed25519.pem`` ->
    ``seal-ed25519.pub.pem``; a key made before that name, whose public key is
    ``seal-ed25519.pem.pub.pem``, keeps it (found when only that one exists)."""
    base = key_file.name.removesuffix(".pem")
    current = key_file.with_name(base + ".pub.pem")
    earlier = key_file.with_name(key_file.name + ".pub.pem")
    return earlier if not current.exists() and earlier.exists() else current


def public_pem(key: Ed25519PublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of a public key."""
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo (``openssl pkey -pubin -outform DER | sha256sum``)."""
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class SealingKey:
    """A loaded private key with its public half and fingerprint."""

    private: Ed25519PrivateKey
    path: Path

    @property
    def public(self) -> Ed25519PublicKey:
        """The public key."""
        return self.private.public_key()

    @property
    def fingerprint(self) -> str:
        """SPKI SHA-256 of the public key."""
        return fingerprint(self.public)

    def sign(self, data: bytes) -> bytes:
        """The raw 64-byte Ed25519 signature of ``data`` (deterministic)."""
        return self.private.sign(data)


def create_key(key_file: Path) -> SealingKey:
    """Write a new private key (0600 in a 0700 folder when it creates it, never overwriting) and
    its public key (``public_key_path``, 0644) beside it, whatever the umask."""
    if key_file.exists():
        raise KeyFileError(f"{key_file}: a key already exists; `collector keys show` prints it")
    make_dirs(key_file.parent, PRIVATE_DIR)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), PRIVATE)  # exactly 0600, whatever the umask
        out.write(pem)
    public = public_key_path(key_file)
    public.write_bytes(public_pem(private.public_key()))
    set_mode(public, DELIVERABLE)
    return SealingKey(private, key_file)


def load_sealing_key(key_file: Path) -> SealingKey:
    """Load the private sealing key; KeyFileError naming the file when it cannot be used: missing,
    unreadable, not a regular file, larger than ``MAX_KEY_FILE``, readable by others or writable
    by its group
    (the message names the fix, ``chmod 600 <file>``)."""
    try:
        data = read_private(key_file, MAX_KEY_FILE)
    except FileNotFoundError:
        raise KeyFileError(f"{key_file}: no sealing key; create one with `collector keys init`") from None
    except OSError as exc:
        raise KeyFileError(f"{key_file}: cannot read the sealing key: {exc.strerror or exc}") from None
    except FileRefused as exc:
        raise KeyFileError(f"{key_file}: the sealing key {exc}") from None
    try:
        private = load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{key_file}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{key_file}: the sealing key must be Ed25519")
    return SealingKey(private, key_file)


def load_public_key(data: bytes, where: str) -> Ed25519PublicKey:
    """Parse a PEM public key; KeyFileError naming ``where`` when it is not an Ed25519 key."""
    try:
        key = load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{where}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{where}: not an Ed25519 public key")
    return key
