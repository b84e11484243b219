"""People coverage: every person of the roster against the required acknowledgements and training."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import structlog

from collector.config import PeopleRequirement, Settings
from collector.errors import ConfigError, InputError
from collector.manual.streams import (
    ATTESTATIONS,
    CoverageStream,
    criteria_of,
    store_items,
)
from collector.records import format_ts, parse_ts
from connectors.sdk.items import Normalised
from storage import Store
from storage.manual_queries import latest_read, newest_by_source_key

__all__ = ["ACTIVE_OKTA_STATUSES", "CoverageCheck", "Roster", "check_people", "read_roster"]

log = structlog.get_logger("collector.people")

ACTIVE_OKTA_STATUSES = frozenset({"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"})
"""Okta statuses of a person who works here and can sign in (or is about to again); STAGED,
PROVISIONED (not yet started), SUSPENDED and DEPROVISIONED people owe no acknowledgement."""

_EMAIL = re.compile(r"[^@\s/]+@[^@\s/.]+(\.[^@\s/.]+)+")


@dataclass(frozen=True, slots=True)
class Roster:
    """The people who must hold the required attestations (lowercased emails, sorted) and where
    the list came from (``okta.users@<read time>`` or the CSV file's name)."""

    source: str
    people: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CoverageCheck:
    """One stored check: when, against which roster, and each requirement's missing people."""

    at: datetime
    roster: Roster
    missing: dict[tuple[str, str], tuple[str, ...]]

    @property
    def missing_total(self) -> int:
        """People missing a requirement, counted once per requirement."""
        return sum(len(people) for people in self.missing.values())


def read_roster(settings: Settings, store: Store) -> Roster:
    """The roster ``[people] roster`` names, as it stands now (the newest okta.users read, or the
    CSV file); `InputError` when it cannot be read."""
    roster = settings.people.roster
    if roster == "okta":
        with store.engine.connect() as conn:
            read_at, bodies = latest_read(conn, "okta.users", kinds=("mfa_status",))
        if read_at is None:
            raise InputError("people.roster = \"okta\": no okta.users read is stored yet; collect it "
                             "first (collector collect --stream okta.users)")
        people: set[str] = set()
        for body in bodies:
            data = orjson.loads(body).get("data") or {}
            login = data.get("login")
            if data.get("status") in ACTIVE_OKTA_STATUSES and isinstance(login, str) \
                    and _EMAIL.fullmatch(login):
                people.add(login.lower())
        return Roster(f"okta.users@{read_at}", tuple(sorted(people)))
    return Roster(Path(roster).name, _roster_csv(settings.resolve(roster), settings.people.roster_column,
                                                 str(settings.path)))


def _roster_csv(path: Path, column: str, config: str) -> tuple[str, ...]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: the roster is empty (expected a header line)")
            wanted = [i for i, cell in enumerate(header) if cell.strip().casefold() == column.casefold()]
            if len(wanted) != 1:
                problem = "no" if not wanted else "more than one"
                raise InputError(f"{path}: line 1: {problem} column {column!r} "
                                 "(people.roster_column names the email column)")
            people: set[str] = set()
            for row in reader:
                cell = row[wanted[0]].strip() if wanted[0] < len(row) else ""
                if not cell:
                    continue
                if not _EMAIL.fullmatch(cell):
                    raise InputError(f"{path}: line {reader.line_num}: column {column!r}: "
                                     f"{cell[:60]!r} is not an email address")
                people.add(cell.lower())
    except FileNotFoundError:
        raise ConfigError(config, "people.roster", f"{path} does not exist") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a UTF-8 CSV file: {exc}") from None
    except OSError as exc:
        raise ConfigError(config, "people.roster", f"{path}: cannot read: {exc.strerror}") from None
    return tuple(sorted(people))


def _reason(req: PeopleRequirement, last: str | None) -> str:
    if last is None:
        return f"no {req.type} of {req.item!r} on record"
    assert req.every is not None
    return f"{req.type} of {req.item!r} last on {last[:10]}, older than {req.every.text}"


def _findings(settings: Settings, store: Store, roster: Roster, at: datetime,
              found: dict[tuple[str, str], tuple[str, ...]]) -> Iterator[tuple[str, Normalised]]:
    """Per requirement: one exception per person missing it, then one summary (status ok) with the
    counts, so a check in which nobody is missing is on record too."""
    stamp = format_ts(at)
    for req in settings.people.require:
        criteria = criteria_of(settings.library, (c.id for c in settings.library.for_document(req.type)))
        with store.engine.connect() as conn:
            newest = newest_by_source_key(conn, ATTESTATIONS, f"{req.type}/", stamp)
        base = {"type": req.type, "item": req.item, "every": None if req.every is None else req.every.text,
                "roster": roster.source}
        missing: list[str] = []
        for person in roster.people:
            key = f"{req.type}/{person}/{req.item}"
            last = newest.get(key)
            if last is not None and (req.every is None or at - parse_ts(last) <= req.every.period):
                continue
            missing.append(person)
            yield key, Normalised(kind="attestation", actor=person, source_url=None,
                                  data={**base, "person": person, "last_at": last},
                                  exception=_reason(req, last), criteria=criteria)
        found[(req.type, req.item)] = tuple(missing)
        yield f"{req.type}/{req.item}", Normalised(
            kind="attestation", actor=None, source_url=None,
            data={**base, "person": None, "people": len(roster.people),
                  "covered": len(roster.people) - len(missing), "missing": len(missing)},
            criteria=criteria)


def check_people(settings: Settings, store: Store, *, now: datetime | None = None) -> CoverageCheck | None:
    """Check the roster against every ``[[people.require]]`` as of ``now`` and store the result as
    a read of ``people.coverage``; None when ``[people]`` requires nothing.

    Raises `InputError`/`ConfigError` when the roster cannot be read (nothing is stored then).
    """
    if not settings.people.require:
        return None
    at = now or datetime.now(UTC)
    roster = read_roster(settings, store)
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    stream = CoverageStream(lambda ceiling: _findings(settings, store, roster, ceiling, found))
    store_items(settings, store, stream, clock=lambda: at)
    check = CoverageCheck(at, roster, found)
    log.info("people_checked", roster=roster.source, people=len(roster.people),
             missing=check.missing_total)
    return check

