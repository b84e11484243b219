"""The raw-JSON splitter: each array element's value with the exact bytes it occupies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.sdk.rawjson import _scan_array, _scan_member, split_array, split_member

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_SPACING = st.sampled_from([(",", ":"), (", ", ": "), (" ,\n ", " :\t")])


def _dump(values: list[Any], separators: tuple[str, str]) -> str:
    return json.dumps(values, separators=separators, ensure_ascii=False)


@given(st.lists(_VALUES, max_size=5), _SPACING)
def test_each_element_is_its_value_and_the_bytes_it_occupies(values: list[Any], spacing: tuple[str, str]) -> None:
    """Every element comes back in order with its value and bytes that are a slice of the input."""
    text = _dump(values, spacing)
    found = split_array(text.encode())
    assert [value for value, _ in found] == values
    body = text.encode()
    for value, raw in found:
        assert raw in body and json.loads(raw) == value


@given(st.lists(_VALUES, max_size=5), _SPACING)
def test_a_member_array_is_found_among_other_keys(values: list[Any], spacing: tuple[str, str]) -> None:
    """The array under the named key is split, whatever comes before or after it in the object."""
    inner = _dump(values, spacing)
    text = '{"before": {"Records": [1]}, "Records": ' + inner + ', "after": "x"}'
    assert split_member(text, "Records") == split_array(inner)


@pytest.mark.parametrize("text", ['{"Records": [1, 2', "[1, 2", "[1 2]", '{"a": 1}', "{}", "[", ""])
def test_truncated_or_wrong_shapes_are_value_errors(text: str) -> None:
    """A body cut short, or without the array asked for, is a ValueError, never a short list."""
    with pytest.raises(ValueError):
        if text.startswith("{"):
            split_member(text, "Records")
        else:
            split_array(text)


_ANY = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(st.lists(_ANY, max_size=5), st.booleans(), _SPACING)
def test_the_compact_fast_path_answers_as_the_scanner_does(values: list[Any], ascii_only: bool,
                                                          spacing: tuple[str, str]) -> None:
    """Whatever the values (floats, integers past 64 bits, escapes or raw non-ASCII) and the
    spacing, splitting gives the very values (same types and key order) and bytes that the
    element-by-element scanner gives, as an array and as the first member of an object."""
    inner = json.dumps(values, separators=spacing, ensure_ascii=ascii_only)
    for body in (inner, inner.encode()):
        assert repr(split_array(body)) == repr(_scan_array(body))
    member = '{"Records":' + inner + ',"after":1}'
    assert repr(split_member(member, "Records")) == repr(_scan_member(member, "Records"))


@pytest.mark.parametrize("text", [
    '{"Records":[{"a":1,"a":2}]}', '{"Records":[{"a":1}],"Records":[{"a":1},{"b":2}]}',
    '{"Records":[{"a":1}, {"b":2}]} trailing', '{"Records":[123456789012345678901234567890,1.0,1E2,-0]}',
    '{"Records":[{"s":"\\u00e9\\/"}]}', '{"Records":[{"a":1},{"a":2}]}',
])
def test_the_fast_path_gives_way_where_json_would_differ(text: str) -> None:
    """Duplicate keys, a repeated member, trailing bytes, number spellings and escapes split as
    the scanner splits them."""
    assert repr(split_member(text, "Records")) == repr(_scan_member(text, "Records"))
