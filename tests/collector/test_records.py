"""The evidence record: built once, its id the hash of its body, its timestamps fixed-width UTC."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.canonical import canonical
from collector.errors import RecordError
from collector.records import EvidenceRecord, build_record, format_ts, full_record, parsed_body
from storage import Store


def _record(**overrides: Any) -> EvidenceRecord:
    fields: dict[str, Any] = dict(
        stream="okta.users", source_key="00u1", kind="mfa_status",
        observed_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        collected_at=datetime(2026, 11, 2, 9, 31, tzinfo=UTC), actor="ann@example.com",
        source_url="https://acme.okta.com/admin/user/profile/view/00u1", raw_sha256="ab" * 32,
        data={"factors": ["push"], "status": "ACTIVE"}, exception_reason=None,
        controls=("CC6.1",), run_id="run-1",
    )
    fields.update(overrides)
    fields["observed_at"] = format_ts(fields["observed_at"])
    fields["collected_at"] = format_ts(fields["collected_at"])
    return build_record(**fields)


def test_id_is_the_hash_of_the_body_without_run_or_collection_time() -> None:
    """The same item collected twice, in different runs at different times, has one id."""
    first = _record()
    again = _record(collected_at=datetime(2026, 11, 5, tzinfo=UTC), run_id="run-2")
    assert first.id == again.id == hashlib.sha256(first.body.encode()).hexdigest()
    assert "collected_at" not in first.body and "run_id" not in first.body


def test_record_ids_never_change() -> None:
    """The id of a given record is fixed across versions (it was computed by the collector
    before the record path was reshaped): a changed id would orphan every stored record."""
    assert _record().id == "b32203360f03751441383107dd6a87eba8c8aca3e634c276254a7e64a4fc5818"


def test_a_changed_item_or_a_new_read_is_a_new_record() -> None:
    """Changing the payload or the observed time changes the id."""
    base = _record()
    assert _record(data={"factors": [], "status": "ACTIVE"}).id != base.id
    assert _record(observed_at=datetime(2026, 11, 3, tzinfo=UTC)).id != base.id


def test_the_body_is_the_canonical_record_without_id_collection_time_and_run() -> None:
    """The stored body holds every field of the contract but id, collected_at and run_id, in
    RFC 8785 form, with the status derived from the exception reason."""
    record = _record(exception_reason="ACTIVE user has no active MFA factor")
    body = parsed_body(record)
    assert record.body == rfc8785.dumps(body).decode()
    assert body["status"] == record.status == "exception"
    assert body["controls"] == ["CC6.1"] and body["data"] == {"factors": ["push"], "status": "ACTIVE"}
    assert (record.stream, record.source_key, record.kind, record.actor, record.run_id) == (
        "okta.users", "00u1", "mfa_status", "ann@example.com", "run-1")


def test_full_record_round_trips_from_storage(tmp_path: Path) -> None:
    """A record read back from the store has the same canonical form and a verifiable id."""
    record = _record(exception_reason="ACTIVE user has no active MFA factor")
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    with store.engine.begin() as conn:
        store.insert_records(conn, [record], [])
    [again] = store.iter_records()
    store.close()
    assert canonical(full_record(again)) == canonical(full_record(record))
    assert again.status == "exception"
    full = full_record(record)
    assert set(full) == {"id", "stream", "source_key", "kind", "observed_at", "collected_at",
                         "actor", "source_url", "raw_sha256", "data", "status",
                         "exception_reason", "controls", "run_id"}
    assert rfc8785.dumps(full) == canonical(full_record(record))
    assert hashlib.sha256(again.body.encode()).hexdigest() == again.id


def test_unknown_kind_is_refused() -> None:
    """A connector bug that invents an evidence kind is caught when the record is built."""
    with pytest.raises(RecordError, match="unknown evidence kind"):
        _record(kind="screenshot")


def test_data_outside_the_profile_names_the_record_and_the_path() -> None:
    """A float in the data fails the record, naming its stream, source key and JSON path."""
    with pytest.raises(RecordError, match=r"okta.users 00u1 data.factors\[0\]: floats"):
        _record(data={"factors": [1.5]})


def test_timestamps_are_fixed_width_utc() -> None:
    """Timestamps render in UTC with microseconds and Z, whatever zone they came in."""
    moment = datetime(2026, 11, 2, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert format_ts(moment) == "2026-11-02T09:30:00.000000Z"
    with pytest.raises(RecordError):
        format_ts(datetime(2026, 11, 2))


@settings(max_examples=300)
@given(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                            timezone(timedelta(hours=-8))]))
)
def test_timestamps_equal_isoformat_in_utc(moment: datetime) -> None:
    """The fast formatter writes what isoformat writes, for any aware instant and offset."""
    utc = moment.astimezone(UTC)
    assert format_ts(moment) == utc.isoformat(timespec="microseconds")[:-6] + "Z"


def test_record_body_is_the_body_build_record_stores() -> None:
    """record_body (the public body builder outside tools call) returns exactly the bytes a built row stores."""
    from hashlib import sha256

    from collector.records import build_record, record_body

    fields = {"stream": "okta.users", "source_key": "00u1", "kind": "mfa_status",
              "observed_at": "2026-11-02T09:00:00.000000Z", "actor": "a@example.com",
              "source_url": "https://acme.okta.com/api/v1/users/00u1", "raw_sha256": "ab" * 32,
              "data": {"status": "ACTIVE", "factors": []},
              "exception_reason": "ACTIVE user has no active MFA factor", "controls": ("CC6.1",)}
    body = record_body(**fields)
    row = build_record(**fields, collected_at="2026-11-02T09:05:00.000000Z", run_id="r1")
    assert row.body == body.decode() and row.id == sha256(body).hexdigest()
    assert row.status == "exception"


def test_clip_cuts_errors_at_a_word_boundary_never_mid_word() -> None:
    """A long error is cut at the last whole word that fits and ends in "…"; a short one is kept;
    one word longer than the room is cut inside it (nothing else fits)."""
    from collector.errors import clip

    text = "okta: name does not resolve: acme.okta.com after three attempts"
    assert clip(text, 200) == text
    cut = clip(text, 40)
    assert len(cut) <= 40 and cut.endswith("…")
    head = cut[:-1]
    assert text.startswith(head) and text[len(head)] in " ,;:"  # ends where a word ends
    assert clip("x" * 50, 10) == "x" * 9 + "…"
