"""Media types from file names and file names safe to put into records."""

from __future__ import annotations

import pytest

from collector.media import DEFAULT_MEDIA_TYPE, MAX_NAME_BYTES, media_type, sanitise_filename


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Infosec Policy v3.PDF", "application/pdf"),
        ("restore-test.md", "text/markdown"),
        ("training.csv", "text/csv"),
        ("vendor-review.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("risk.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("screenshot.png", "image/png"),
        ("backup.tar.gz", "application/gzip"),
        ("notes", DEFAULT_MEDIA_TYPE),
        (".hidden", DEFAULT_MEDIA_TYPE),
        ("archive.weird-extension", DEFAULT_MEDIA_TYPE),
    ],
)
def test_media_type_from_the_name(name: str, expected: str) -> None:
    """The extension decides the media type, case-insensitively; an unknown one is application/octet-stream."""
    assert media_type(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/home/alice/Documents/policy.pdf", "policy.pdf"),
        ("C:\\Users\\bob\\report.docx", "report.docx"),
        ("../../etc/passwd", "passwd"),
        ("evil\u202efdp.exe", "evilfdp.exe"),
        ("line\nbreak\r\tname.txt", "linebreakname.txt"),
        ("zero\u200bwidth.pdf", "zerowidth.pdf"),
        ("  many   spaces  .pdf ", "many spaces .pdf"),
        ("Cafe\u0301.pdf", "Caf\u00e9.pdf"),
        ("", "unnamed"),
        ("..", "unnamed"),
        ("dir/", "unnamed"),
        ("\x00\x1b", "unnamed"),
    ],
)
def test_sanitise_filename(name: str, expected: str) -> None:
    """Only the last path component survives, in NFC, without control, bidi or zero-width characters."""
    assert sanitise_filename(name) == expected


def test_long_names_are_cut_on_a_character_and_keep_the_extension() -> None:
    """A name over 255 UTF-8 bytes is cut without splitting a character and keeps its extension."""
    name = "é" * 300 + ".pdf"
    clean = sanitise_filename(name)
    assert clean.endswith(".pdf")
    assert len(clean.encode("utf-8")) <= MAX_NAME_BYTES
    assert clean == "é" * ((MAX_NAME_BYTES - 4) // 2) + ".pdf"
