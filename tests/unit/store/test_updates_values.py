"""`checked_update` copies each change's value as `checked_value` does, without building the
strings that name where each item is unless it words an error: the same copy, the same types,
the same refusals in the same words."""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aorta.errors import Invalid
from aorta.store.port import MAX_DEPTH, checked_value
from aorta.store.updates import checked_update


class Colour(enum.StrEnum):
    RED = "red"


class Count(enum.IntEnum):
    ONE = 1


def outcome(copy: Callable[[Any], Any], value: Any) -> tuple[str, Any]:
    """What `copy(value)` gives: its value with each item's exact type, or the error's words."""
    try:
        return ("value", typed(copy(value)))
    except Invalid as error:
        return ("refused", error.messages)


def updated(value: Any) -> Any:
    return checked_update("jobs", {"f": value}, ())[0]["f"]


def reference(value: Any) -> Any:
    return checked_value("jobs", value, "field 'f'")


def typed(value: Any) -> Any:
    if isinstance(value, dict):
        return (dict, [(typed(key), typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return (list, [typed(item) for item in value])
    return (type(value), value)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(),
    st.text(),
    st.sampled_from([Colour.RED, Count.ONE, "with\x00nul", "\ud800lone", b"bytes", 1.5j]),
)
keys = st.one_of(st.text(max_size=4), st.sampled_from([1, Colour.RED, "\x00", "\udfff"]))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
        st.dictionaries(st.text(max_size=3), inner, max_size=3).map(OrderedDict),
        st.lists(inner, max_size=3).map(tuple),
    ),
    max_leaves=12,
)


@given(values)
def test_a_value_is_copied_or_refused_as_checked_value_does(value: Any) -> None:
    assert outcome(updated, value) == outcome(reference, value)


@pytest.mark.parametrize(
    "value",
    [
        2**63 - 1,
        2**63,
        -(2**63),
        -(2**63) - 1,
        float("nan"),
        float("-inf"),
        True,
        "a\x00",
        "\ud800",
        "é",
        Colour.RED,
        Count.ONE,
        {1: "a"},
        {"\x00": 1},
        {"k": Colour.RED},
        OrderedDict(a=1),
        (1, 2),
        b"x",
    ],
)
def test_each_kind_of_value_is_copied_or_refused_the_same(value: Any) -> None:
    for held in (value, [value], {"k": value}):
        assert outcome(updated, held) == outcome(reference, held)


@pytest.mark.parametrize(
    "value",
    [nested(MAX_DEPTH), nested(MAX_DEPTH + 1), [nested(MAX_DEPTH - 1)], [nested(MAX_DEPTH)]],
)
def test_the_depth_limit_is_the_same(value: Any) -> None:
    assert outcome(updated, value) == outcome(reference, value)


def test_the_copy_shares_nothing_mutable_with_the_value() -> None:
    value = {"list": [{"a": 1}], "map": {"b": [2]}}

    [copy] = checked_update("jobs", {"f": value}, ())[0].values()
    value["list"][0]["a"] = 9
    value["map"]["b"].append(3)

    assert copy == {"list": [{"a": 1}], "map": {"b": [2]}}


def test_an_error_names_the_item_where_it_is() -> None:
    with pytest.raises(Invalid) as raised:
        checked_update("jobs", {"operators.2": {"env": [1, float("nan")]}}, ())

    assert raised.value.messages == ("jobs: field 'operators.2'.env[1] is not a finite number",)


@pytest.mark.parametrize("path", ["a..b", "_id", "_id.0", "1a", "a.01", ""])
def test_a_bad_path_is_refused_every_time_in_the_same_words(path: str) -> None:
    refusals = []
    for _ in range(2):
        with pytest.raises(Invalid) as raised:
            checked_update("jobs", {path: 1}, ())
        refusals.append(raised.value.messages)

    assert refusals[0] == refusals[1]
    assert refusals[0][0].startswith(f"jobs: field {path!r} is not valid")


@pytest.mark.parametrize("path", ["a", "a.b.c", "ops.0", "ops.12"])
def test_a_good_path_is_accepted_every_time(path: str) -> None:
    for _ in range(2):
        assert checked_update("jobs", {path: 1}, ())[0] == {path: 1}
