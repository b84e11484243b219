"""The digest's view of evidence people bring: documents received and due, attestations, people coverage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection

from collector.config import DERIVED_STREAMS, MANUAL_STREAMS
from collector.controls import ControlLibrary, ControlState
from collector.records import format_ts
from storage.manual_queries import latest_read, records_between, source_keys_between

__all__ = ["attestation_counts", "documents_due", "documents_received", "people_coverage"]

_DOCUMENTS, _ATTESTATIONS = MANUAL_STREAMS
_PEOPLE = DERIVED_STREAMS[0]


def documents_due(states: Sequence[ControlState]) -> list[dict[str, Any]]:
    """Every required document missing or past its cadence, by owner then control (the cadence
    comes from the library's document selectors)."""
    due = [{"owner": s.control.owner, "control": s.control.id, "title": s.control.title,
            "type": d.type, "every": d.every,
            "last_at": None if d.last_at is None else format_ts(d.last_at)}
           for s in states for d in s.due]
    return sorted(due, key=lambda d: (d["owner"], d["control"], d["type"]))


def documents_received(conn: Connection, library: ControlLibrary, start: str,
                       end: str) -> list[dict[str, Any]]:
    """The documents observed in ``[start, end)``: what, whose, which file, for which controls."""
    out = []
    for row in records_between(conn, _DOCUMENTS, start, end):
        data = orjson.loads(row.body).get("data") or {}
        doc_type = str(data.get("type") or row.source_key.partition("/")[0])
        out.append({"record_id": row.id, "observed_at": row.observed_at, "type": doc_type,
                    "title": data.get("title"), "name": data.get("name"), "owner": data.get("owner"),
                    "approved_by": data.get("approved_by"), "file_sha256": data.get("file_sha256"),
                    "size": data.get("size"), "controls": [c.id for c in library.for_document(doc_type)]})
    return out


def attestation_counts(conn: Connection, start: str, end: str) -> dict[str, int]:
    """Attestations observed in ``[start, end)`` per type, types sorted."""
    counts = Counter(key.partition("/")[0] for key in source_keys_between(conn, _ATTESTATIONS, start, end))
    return dict(sorted(counts.items()))


def people_coverage(conn: Connection, library: ControlLibrary, before: str) -> dict[str, Any]:
    """The latest people-coverage check at or before ``before``: when, the roster, each
    requirement's counts, and each person missing one (``checked_at`` null: never checked)."""
    checked_at, bodies = latest_read(conn, _PEOPLE, before)
    requirements, missing = [], []
    roster = None
    for text in bodies:
        body = orjson.loads(text)
        data = body.get("data") or {}
        roster = data.get("roster", roster)
        base = {"type": data.get("type"), "item": data.get("item"), "every": data.get("every")}
        if data.get("person") is None:
            requirements.append({**base, "people": data.get("people"), "covered": data.get("covered"),
                                 "missing": data.get("missing")})
        else:
            missing.append({**base, "person": data["person"], "last_at": data.get("last_at"),
                            "reason": body.get("exception_reason"),
                            "controls": [c.id for c in library.for_document(str(data.get("type")))]})
    requirements.sort(key=lambda r: (str(r["type"]), str(r["item"])))
    missing.sort(key=lambda m: (str(m["type"]), str(m["item"]), str(m["person"])))
    return {"checked_at": checked_at, "roster": roster, "requirements": requirements, "missing": missing}
