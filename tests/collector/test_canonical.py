"""Canonical JSON: the fast path equals RFC 8785 on the record profile, and the profile is enforced."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.canonical import MAX_SAFE_INT, canonical, check_profile
from collector.errors import RecordError

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
