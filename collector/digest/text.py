"""Vendor text made safe for the digest: control and bidi characters stripped, Markdown escaped."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["clean", "clean_tree", "md_escape"]

# C0 and C1 controls (NUL included) and DEL; tab, CR and LF become a space (one line per cell).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BREAKS = re.compile(r"[\t\n\r]")
# Bidirectional formatting: marks, embeddings, overrides and isolates (U+202E makes "txt.exe"
# read as "exe.txt"), and the Arabic letter mark. Text rendered for people never needs them.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Markdown's inline syntax (emphasis, code, link and image brackets, table pipes,
# strikethrough): each becomes a backslash escape, which CommonMark renders as the character
# itself. With "[" and "]" escaped no "(" or "!" can form a link or an image; raw HTML is
# entity-escaped; a value never starts a line, so line-start syntax (#, -, >) cannot apply.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])")
# "_" emphasises only at a word's edge (CommonMark: never inside a word), so "no_evidence" and
# "first_last@acme.example" stay as written and "_x_" does not.
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# GFM turns bare "https://…" and "www.…" into links: an escaped slash or dot keeps them text.
_AUTOLINK = re.compile(r"(?i)(:)//|\b(www)\.")


def clean(text: str) -> str:
    """``text`` without control or bidi characters; tab and line breaks become spaces."""
    return _BIDI.sub("", _CONTROLS.sub("", _BREAKS.sub(" ", text)))


def clean_tree(value: Any) -> Any:
    """A copy of a JSON-ready value with every string (keys too) passed through ``clean``."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(k) if isinstance(k, str) else k: clean_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_tree(v) for v in value]
    return value


def md_escape(value: Any) -> Any:
    """A string safe anywhere inline in Markdown (a table cell, a list item, a link target):
    cleaned, HTML's ``& < >`` as entities, Markdown's inline syntax backslash-escaped, bare URLs
    kept from autolinking. Anything but a string is returned as it is."""
    if not isinstance(value, str):
        return value
    text = clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_UNDERSCORE.sub(r"\\_", _MD_SPECIAL.sub(r"\\\1", text))
    return _AUTOLINK.sub(lambda m: ":\\/\\/" if m.group(1) else f"{m.group(2)}\\.", text)
