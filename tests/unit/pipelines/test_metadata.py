"""Clara's metadata rules (`aorta.metadata`), shared by every service that keeps metadata."""

from __future__ import annotations

import pytest

from aorta.errors import ErrorCode, Invalid
from aorta.metadata import (
    MAX_KEY_BYTES,
    MAX_TOTAL_BYTES,
    MAX_VALUE_BYTES,
    Entries,
    add_metadata,
    metadata_size,
    remove_metadata,
)


def refused(current: dict[str, str], new: Entries, max_total: int = MAX_TOTAL_BYTES) -> Invalid:
    with pytest.raises(Invalid) as caught:
        add_metadata(current, new, max_total=max_total)
    assert caught.value.code == ErrorCode.METADATA_INVALID
    return caught.value


def test_adds_after_the_existing_entries_without_changing_the_argument() -> None:
    current = {"site": "north"}
    result = add_metadata(current, {"study": "ct-42", "Owner": "ana"})
    assert list(result.items()) == [("site", "north"), ("study", "ct-42"), ("Owner", "ana")]
    assert current == {"site": "north"}


def test_an_existing_key_in_any_case_is_refused_and_nothing_changes() -> None:
    current = {"Site": "north"}
    error = refused(current, {"new": "1", "SITE": "south"})
    assert any("'SITE' already exists" in message for message in error.messages)
    assert current == {"Site": "north"}


def test_keys_differing_only_in_case_in_one_request_are_refused() -> None:
    error = refused({}, {"Key": "a", "KEY": "b"})
    assert "given twice" in error.messages[0]


def test_repeated_pairs_are_refused_too() -> None:
    error = refused({}, [("k", "a"), ("k", "b")])
    assert "given twice" in error.messages[0]


def test_key_and_value_sizes_count_utf8_bytes() -> None:
    assert add_metadata({}, {"k" * MAX_KEY_BYTES: "v" * MAX_VALUE_BYTES})
    error = refused({}, {"é" * (MAX_KEY_BYTES // 2 + 1): "x"})
    assert f"at most {MAX_KEY_BYTES} bytes" in error.messages[0]
    error = refused({}, {"k": "€" * (MAX_VALUE_BYTES // 3 + 1)})
    assert f"at most {MAX_VALUE_BYTES} bytes" in error.messages[0]


def test_every_problem_is_reported_at_once() -> None:
    error = refused({"a": "1"}, {"A": "2", "": "3", "b": "x" * 300})
    assert len(error.messages) == 3


def test_empty_keys_and_nul_characters_are_refused() -> None:
    assert "may not be empty" in refused({}, {"": "x"}).messages[0]
    assert "NUL" in refused({}, {"k": "a\x00b"}).messages[0]


def test_empty_values_are_allowed() -> None:
    assert add_metadata({}, {"flag": ""}) == {"flag": ""}


def test_the_total_is_bounded() -> None:
    current = {f"k{i}": "v" * 200 for i in range(3)}
    assert metadata_size(current) == 3 * 202
    error = refused(current, {"more": "x" * 10}, max_total=metadata_size(current) + 13)
    assert "at most" in error.messages[0]
    assert add_metadata(current, {"more": "x" * 10}, max_total=metadata_size(current) + 14)


def test_clara_total_is_four_mebibytes() -> None:
    assert MAX_TOTAL_BYTES == 4 * 1024 * 1024


def test_remove_is_case_insensitive_keeps_order_and_ignores_absent_keys() -> None:
    current = {"a": "1", "B": "2", "c": "3"}
    assert remove_metadata(current, ["b", "absent", "B"]) == {"a": "1", "c": "3"}
    assert list(remove_metadata(current, [])) == ["a", "B", "c"]
    assert current == {"a": "1", "B": "2", "c": "3"}
