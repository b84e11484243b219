"""The collector's error types: one base, narrow subclasses that say what to do next."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "CatalogError",
    "CollectorError",
    "ConfigError",
    "InputError",
    "RecordError",
    "clip",
    "open_input",
]


class CollectorError(Exception):
    """Base of every error the collector raises on purpose; its message is user-facing."""

    exit_code = 1


class ConfigError(CollectorError):
    """The configuration is missing, unreadable or wrong: fix the named key in the named file."""

    exit_code = 2

    def __init__(self, file: str, key: str | None, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        self.problems: tuple[ConfigError, ...] = (self,)
        """Every problem this error reports (itself alone, unless made by ``all_of``)."""
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")

    @classmethod
    def all_of(cls, errors: Iterable[ConfigError]) -> ConfigError:
        """One error reporting every problem of ``errors`` (flattened, in order), one per line of
        its message; ``file``, ``key`` and ``problem`` are the first one's. ``errors`` is not empty."""
        flat = tuple(p for error in errors for p in error.problems)
        if len(flat) == 1:
            return flat[0]
        first = flat[0]
        combined = cls(first.file, first.key, first.problem)
        combined.problems = flat
        combined.args = ("\n".join(str(p) for p in flat),)
        return combined


class InputError(CollectorError):
    """A command-line argument or an input file is wrong: fix the input and rerun."""

    exit_code = 2


class CatalogError(CollectorError):
    """A control catalog or filing entry names something that does not exist."""

    exit_code = 2


class RecordError(CollectorError):
    """An evidence record cannot be built: a connector produced a value outside the profile."""


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ending in "…" when cut,
    so a stored or served error never ends mid-word (a word longer than the room is cut)."""
    if len(text) <= limit:
        return text
    room = text[:max(limit - 1, 0)]
    head = room.rsplit(None, 1)[0] if " " in room.strip() else room
    return head.rstrip(" ,;:") + "…"


@contextmanager
def open_input(path: Path) -> Iterator[BinaryIO]:
    """``path`` (a file the user named on the command line) opened for reading; an InputError
    naming it when it is a folder, missing or unreadable, instead of a traceback."""
    try:
        stream = path.open("rb")
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file") from None
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: cannot read it (permission denied)") from None
    with stream:
        yield stream
