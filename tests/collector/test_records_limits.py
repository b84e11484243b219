"""Record size at collection: an item too big for a sealed snapshot's line is one failed item naming its size."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from collector.catalog import Catalog, Filing
from collector.pipeline import Pipeline
from collector.records import MAX_BODY_BYTES
from collector.seal import _format as fmt
from connectors.sdk import Checkpoint, Cursor, Normalised, SourceItem
from connectors.synthetic import SyntheticConfig, SyntheticConnector, SyntheticEvents
from storage import Store

_WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class _Huge(SyntheticEvents):
    """Three items; the second carries a 65 MiB vendor string."""

    def fetch(self, cursor: Cursor) -> Iterator[Any]:
        for n in range(3):
            text = "x" * (65 << 20) if n == 1 else "short"
            yield SourceItem(f"k{n}", _WHEN, b"{}", {"text": text}, n + 1)
        yield Checkpoint(3)

    def normalise(self, item: SourceItem) -> Normalised:
        return Normalised("access_log", None, None, dict(item.obj))


def test_an_item_past_the_snapshot_line_limit_fails_alone_naming_its_size(tmp_path: Path) -> None:
    """A 65 MiB vendor string fails its item with its size in the run's error; the other items
    are stored, so the window stays sealable and verifiable."""
    store = Store.open(f"sqlite:///{tmp_path / 'e.db'}")
    connector = SyntheticConnector(SyntheticConfig(count=3))
    pipeline = Pipeline(store, Filing(Catalog.builtin(), {}))
    result = pipeline.run(_Huge(connector.config, connector.session, connector.name), connector.config)
    assert (result.status, result.records_new, result.failures) == ("partial", 2, 1)
    assert result.error is not None and result.error.startswith("k1: RecordError: synthetic.events k1: ")
    assert re.search(r"the record is 68,157,\d{3} bytes", result.error)
    assert f"more than the {MAX_BODY_BYTES:,} a sealed snapshot's record line can hold" in result.error
    store.close()


def test_the_collection_bound_leaves_room_for_the_snapshot_fields() -> None:
    """A body at the collection bound, with the longest id, collected_at and run_id, fits the
    line verify reads."""
    fields = {"id": "f" * 64, "collected_at": "2026-01-05T09:00:00.000000Z", "run_id": "r" * 36}
    overhead = len(orjson.dumps(fields)) + 1  # the comma joining them to the body, and the newline
    assert MAX_BODY_BYTES + overhead < fmt.MAX_RECORD_BYTES
