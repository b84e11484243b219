"""A document's media type from its name, and the file name as it may appear in a record."""

from __future__ import annotations

import mimetypes
import unicodedata

__all__ = ["DEFAULT_MEDIA_TYPE", "MAX_NAME_BYTES", "media_type", "sanitise_filename"]

DEFAULT_MEDIA_TYPE = "application/octet-stream"
MAX_NAME_BYTES = 255
"""A record's file name fits in one path component on every common file system (255 bytes)."""

# Python's built-in table only: the system's /etc/mime.types differs between machines, and the
# same file must get the same record wherever it is added.
_TABLE = mimetypes.MimeTypes(filenames=())
# Evidence formats the built-in table lacks (checked against Python 3.11's).
_EXTRA = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".jsonl": "application/jsonl",
    ".ndjson": "application/x-ndjson",
    ".log": "text/plain",
    ".pem": "application/x-pem-file",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".msg": "application/vnd.ms-outlook",
    ".7z": "application/x-7z-compressed",
}
# A compressed file is, first of all, that compressed format (`backup.tar.gz` is gzip).
_ENCODINGS = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}
# Cc: control characters; Cf: format characters (bidi overrides and isolates, zero-width joiners);
# Zl/Zp: line and paragraph separators. None of them belongs in a name shown to an auditor.
_DROPPED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}
_FALLBACK_NAME = "unnamed"
_MAX_SUFFIX = 16


def media_type(name: str) -> str:
    """The IANA media type for a file name's extension, or ``application/octet-stream``."""
    base = sanitise_filename(name).lower()
    guessed, encoding = _TABLE.guess_type(base, strict=False)
    if encoding is not None:
        return _ENCODINGS.get(encoding, DEFAULT_MEDIA_TYPE)
    if guessed is not None:
        return guessed
    dot = base.rfind(".")
    return _EXTRA.get(base[dot:], DEFAULT_MEDIA_TYPE) if dot > 0 else DEFAULT_MEDIA_TYPE


def sanitise_filename(name: str) -> str:
    """The name's last path component, NFC, without control or bidi characters, at most 255 UTF-8 bytes.

    Both ``/`` and ``\\`` separate components (names arrive from Windows exports too); whitespace
    runs become one space; an empty result, ``.`` or ``..`` becomes ``unnamed``. A name cut to
    length keeps its extension.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    normal = unicodedata.normalize("NFC", base)
    kept = "".join(ch for ch in normal if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    clean = " ".join(kept.split())
    if clean in ("", ".", ".."):
        return _FALLBACK_NAME
    return _truncate(clean)


def _truncate(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    dot = name.rfind(".")
    suffix = name[dot:] if dot > 0 and len(name) - dot <= _MAX_SUFFIX else ""
    stem = name[: len(name) - len(suffix)]
    room = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    # Cut on a character boundary: drop a partial UTF-8 sequence rather than emit an invalid one.
    cut = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore").rstrip()
    return cut + suffix
