"""Sealing refuses what verify would refuse or what the store should never have held: an altered record, an oversize one."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from seal_helpers import Env, add, record

from collector.canonical import canonical
from collector.records import EvidenceRecord, parsed_body
from collector.seal import _format as fmt
from collector.seal._build import SealError


def _drop_guards(env: Env) -> None:
    """What someone with write access to the SQLite file can do: drop the append-only triggers."""
    with env.store.engine.begin() as conn:
        names = conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                     "AND tbl_name = 'evidence'")).scalars().all()
        for name in names:
            conn.execute(sa.text(f"DROP TRIGGER {name}"))


def test_a_record_whose_body_was_rewritten_is_refused_by_id(env: Env) -> None:
    """A stored body altered under its id (an exception turned into ok) is never signed: seal
    fails naming the record, and no snapshot file is written."""
    kept, altered = record("2026-10-05T10:00:00"), record("2026-10-06T10:00:00", exception="no MFA")
    add(env.store, [kept, altered])
    _drop_guards(env)
    body = parsed_body(altered)
    body.update(status="ok", exception_reason=None)
    with env.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE evidence SET body = :b, status = 'ok' WHERE id = :i"),
                     {"b": canonical(body).decode(), "i": altered.id})
    with pytest.raises(SealError, match=f"record {altered.id} does not hash to its id"):
        env.sealer().seal("2026-10")
    assert not list(env.out.glob("*.tar"))


def test_a_record_whose_columns_disagree_with_its_body_is_refused(env: Env) -> None:
    """A record moved to another stream or time in its columns only is refused, naming it."""
    moved = record("2026-10-05T10:00:00")
    add(env.store, [moved])
    _drop_guards(env)
    with env.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE evidence SET stream = 'okta.users' WHERE id = :i"), {"i": moved.id})
    with pytest.raises(SealError, match=f"record {moved.id}: its stored columns disagree with its body"):
        env.sealer().seal("2026-10")


def test_a_record_longer_than_a_snapshot_line_is_refused_by_seal(env: Env) -> None:
    """A record stored before collection bounded sizes, too long for the line verify reads, makes
    seal fail naming it and its size instead of writing a snapshot verify would refuse."""
    small = record("2026-10-05T10:00:00")
    body = parsed_body(small)
    body["data"]["blob"] = "x" * fmt.MAX_RECORD_BYTES
    text = canonical(body)
    big = EvidenceRecord(hashlib.sha256(text).hexdigest(), small.stream, small.source_key, small.kind,
                         small.observed_at, small.collected_at, small.status, small.actor, small.run_id,
                         text.decode())
    add(env.store, [big])
    with pytest.raises(SealError, match=rf"record {big.id} is 67,10\d,\d+ bytes as a snapshot line, "
                                        r"more than the 67,108,864 verify reads"):
        env.sealer().seal("2026-10")
    assert not list(env.out.glob("*.tar"))
