"""Canonical JSON: the fast path equals RFC 8785 on the record profile, and the profile is enforced."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.canonical import MAX_SAFE_INT, canonical, check_profile
from collector.errors import RecordError
from collector.records import build_record, format_ts, record_from_row

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
keys = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=12)
scalars = st.none() | st.booleans() | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | text
profile = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=600, deadline=None)
@given(profile)
def test_fast_path_equals_rfc8785(value: object) -> None:
    """For any value in the record profile, canonical() produces exactly the RFC 8785 bytes."""
    check_profile(value)
    assert canonical(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": 1.5}, "floats"),
        ({"a": MAX_SAFE_INT + 1}, "outside"),
        ({"é": 1}, "ASCII"),
        ({"a": {1, 2}}, "set"),
        ({"a": [b"x"]}, "bytes"),
    ],
)
def test_values_outside_the_profile_are_refused(value: object, problem: str) -> None:
    """Floats, unsafe integers, non-ASCII keys and non-JSON types are refused with the path named."""
    with pytest.raises(RecordError, match=problem) as info:
        check_profile(value)
    assert "$.a" in str(info.value) or "$" in str(info.value)


def _record(**overrides: object) -> object:
    fields: dict[str, object] = dict(
        stream="okta.users", source_key="00u1", kind="mfa_status",
        observed_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        collected_at=datetime(2026, 11, 2, 9, 31, tzinfo=UTC), actor="ann@example.com",
        source_url="https://acme.okta.com/admin/user/profile/view/00u1", raw_sha256="ab" * 32,
        data={"factors": ["push"], "status": "ACTIVE"}, exception_reason=None,
        controls=("CC6.1",), run_id="run-1",
    )
    fields.update(overrides)
    return build_record(**fields)  # type: ignore[arg-type]


def test_id_is_the_hash_of_the_body_without_run_or_collection_time() -> None:
    """The same item collected twice, in different runs at different times, has one id."""
    first = _record()
    again = _record(collected_at=datetime(2026, 11, 5, tzinfo=UTC), run_id="run-2")
    assert first.id == again.id == hashlib.sha256(first.body).hexdigest()
    assert b"collected_at" not in first.body and b"run_id" not in first.body


def test_a_changed_item_or_a_new_read_is_a_new_record() -> None:
    """Changing the payload or the observed time changes the id."""
    base = _record()
    assert _record(data={"factors": [], "status": "ACTIVE"}).id != base.id
    assert _record(observed_at=datetime(2026, 11, 3, tzinfo=UTC)).id != base.id


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


def test_full_record_round_trips_from_storage() -> None:
    """A record rebuilt from its stored body has the same canonical form and a verifiable id."""
    record = _record(exception_reason="ACTIVE user has no active MFA factor")
    again = record_from_row(record.id, record.body.decode(), record.collected_at, record.run_id)
    assert again.canonical_full() == record.canonical_full()
    assert again.status == "exception"
    full = record.to_dict()
    assert set(full) == {"id", "stream", "source_key", "kind", "observed_at", "collected_at",
                         "actor", "source_url", "raw_sha256", "data", "status",
                         "exception_reason", "controls", "run_id"}
    assert rfc8785.dumps(full) == record.canonical_full()


def test_unknown_kind_is_refused() -> None:
    """A connector bug that invents an evidence kind is caught when the record is built."""
    with pytest.raises(RecordError, match="unknown evidence kind"):
        _record(kind="screenshot")
