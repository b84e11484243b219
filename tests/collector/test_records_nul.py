"""Vendor text with a NUL: the same records, with the same ids, on SQLite and PostgreSQL, and no batch lost."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from collector.catalog import Catalog, Filing
from collector.pipeline import Pipeline
from collector.records import build_record
from connectors.sdk import Checkpoint, Cursor, ItemFailure, Normalised, SourceItem
from connectors.synthetic import SyntheticConfig, SyntheticConnector, SyntheticEvents
from storage import Store

_WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class _Poisoned(SyntheticEvents):
    """Three items, the second with NUL in its key, actor and data; then failed items whose keys hold a
    NUL and a lone surrogate."""

    def fetch(self, cursor: Cursor) -> Iterator[Any]:
        for n, who in enumerate(("alice@example.com", "bob\x00@example.com", "carol@example.com")):
            key = f"k{n}" if n != 1 else "k\x001"
            yield SourceItem(key, _WHEN, orjson.dumps({"who": who}), {"who": who, "note": f"x\x00{n}"}, n + 1)
        yield ItemFailure("bad\x00key", "vendor said \x00 here")
        yield ItemFailure("lone\ud800surrogate", "json.loads makes these from \\ud800")
        yield Checkpoint(3)

    def normalise(self, item: SourceItem) -> Normalised:
        return Normalised("access_log", item.obj["who"], "https://example.com/\x00", dict(item.obj))


def _collect(url: str) -> tuple[Any, list[tuple[str, str, str | None, str]], str]:
    store = Store.open(url)
    connector = SyntheticConnector(SyntheticConfig(count=3))
    pipeline = Pipeline(store, Filing(Catalog.builtin(), {}), batch_size=10)
    result = pipeline.run(_Poisoned(connector.config, connector.session, connector.name), connector.config)
    with store.engine.connect() as conn:
        rows = [(r[0], r[1], r[2], r[3]) for r in conn.execute(sa.text(
            "SELECT id, source_key, actor, body FROM evidence ORDER BY id"))]
        error = conn.execute(sa.text("SELECT error FROM runs")).scalar_one()
    store.close()
    return result, rows, error


def test_nul_in_vendor_text_stores_the_same_records_on_both_stores(tmp_path: Any, postgres_url: str) -> None:
    """Items whose key, actor, URL or data hold a NUL are stored on SQLite and PostgreSQL alike:
    same ids, bodies that keep the NUL, U+FFFD in the query columns, and the run row written
    (failed keys with a NUL or a lone surrogate included)."""
    on_sqlite = _collect(f"sqlite:///{tmp_path / 'e.db'}")
    on_postgres = _collect(postgres_url)
    assert on_sqlite[1] == on_postgres[1]
    assert on_sqlite[2] == on_postgres[2] == ("bad\ufffdkey: ItemError: vendor said \ufffd here; "
                                              "lone\ufffdsurrogate: ItemError: json.loads makes these from \\ud800")
    for result in (on_sqlite[0], on_postgres[0]):
        assert (result.status, result.records_new, result.failures) == ("partial", 3, 2)
    poisoned = [r for r in on_postgres[1] if r[1] == "k\ufffd1"]
    assert len(poisoned) == 1 and poisoned[0][2] == "bob\ufffd@example.com"
    body = orjson.loads(poisoned[0][3])
    assert body["source_key"] == "k\x001" and body["actor"] == "bob\x00@example.com"
    assert body["data"]["note"] == "x\x001"


def test_text_without_nul_keeps_its_record_id() -> None:
    """The NUL rule changes no id: a record without NUL has the id its body always had, and a
    record with one has the id of its body with the NUL kept."""
    common: dict[str, Any] = {"stream": "s.x", "kind": "access_log", "observed_at": "2026-01-05T09:00:00.000000Z",
                              "collected_at": "2026-01-05T09:00:01.000000Z", "source_url": None,
                              "raw_sha256": "0" * 64, "exception_reason": None, "controls": ("CC6.1",),
                              "run_id": "r"}
    plain = build_record(source_key="k", actor="a", data={"v": "w"}, **common)
    assert plain.id == "09ac7620f8c631fae8cf46c1c577dc1524086dfbd49121ab1cd6eaa52821e98c"  # as before the rule
    assert (plain.source_key, plain.actor) == ("k", "a")
    poisoned = build_record(source_key="k\x00", actor="a\x00", data={"v": "w\x00"}, **common)
    assert poisoned.id == hashlib.sha256(poisoned.body.encode()).hexdigest()
    assert "\\u0000" in poisoned.body and "\x00" not in poisoned.body
    assert (poisoned.source_key, poisoned.actor) == ("k\ufffd", "a\ufffd")
