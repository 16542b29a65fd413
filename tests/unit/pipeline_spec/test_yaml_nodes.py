"""Bounded YAML composition: positions, merge keys, and the limits that keep it safe."""

from __future__ import annotations

import pytest

from aorta.pipeline_spec.diagnostics import Report
from aorta.pipeline_spec.yaml_nodes import (
    MAX_ALIASES,
    MAX_DEPTH,
    Map,
    Node,
    Scalar,
    Seq,
    compose,
)


def composed(text: str) -> tuple[Node | None, Report]:
    report = Report()
    return compose(text, "f.yml", report), report


def only_error(text: str) -> str:
    node, report = composed(text)
    assert node is None or report.has_errors
    failure = report.failure()
    (diagnostic,) = failure.diagnostics
    return str(diagnostic)


def test_nodes_carry_one_based_positions_and_resolved_tags() -> None:
    node, _ = composed("a:\n  - 1\n  - '2'\n  - ~\n")

    assert isinstance(node, Map)
    items = node.get("a")
    assert isinstance(items, Seq)
    first, second, third = items.items
    assert isinstance(first, Scalar) and isinstance(second, Scalar) and isinstance(third, Scalar)
    assert (first.mark.line, first.mark.column) == (2, 5)
    assert first.tag.endswith(":int") and second.tag.endswith(":str") and third.is_null


def test_merge_keys_fill_in_what_is_not_written() -> None:
    node, report = composed("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n")

    assert isinstance(node, Map) and not report.has_errors
    merged = node.get("d")
    assert isinstance(merged, Map)
    assert [(k.value, v.value) for k, v in merged.entries if isinstance(v, Scalar)] == [
        ("y", "3"),
        ("x", "1"),
    ]


def test_a_merge_of_something_else_is_an_error() -> None:
    assert "a merge key (<<) takes a mapping" in only_error("a:\n  <<: [1]\n")


def test_duplicate_keys_name_the_first_line() -> None:
    assert only_error("a: 1\nb: 2\na: 3\n") == (
        "f.yml:3:1: error: duplicate key 'a' (first given at line 1)"
    )


def test_nesting_up_to_the_limit_is_fine_and_deeper_is_refused() -> None:
    fine, _ = composed("[" * MAX_DEPTH + "]" * MAX_DEPTH)

    assert isinstance(fine, Seq)
    assert "nests deeper than 64 levels" in only_error("[" * (MAX_DEPTH + 1) + "]" * 65)
    assert "nests deeper" in only_error("[" * 100_000)


def test_alias_count_is_bounded() -> None:
    text = "a: &x 1\nb: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"

    assert f"more than {MAX_ALIASES} aliases" in only_error(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: *nowhere\n", "alias *nowhere refers to no anchor"),
        ("a: &x [1, *x]\n", "alias *x refers to a value that contains it"),
        ("? [a]\n: 1\n", "a mapping key must be a plain value, not a list"),
        ("a: 'unterminated\n", "not valid YAML: found unexpected end of stream"),
        ("a: b: c\n", "mapping values are not allowed"),
        ("a: \ud800\n", "character #xd800 is not allowed"),
    ],
)
def test_unreadable_documents_are_reported_with_a_position(text: str, fragment: str) -> None:
    message = only_error(text)

    assert fragment in message
    assert message.startswith("f.yml:")


def test_reader_errors_point_at_the_character() -> None:
    assert only_error("a: 1\nb: x\x07y\n").startswith("f.yml:2:5: error:")


def test_nothing_is_ever_constructed_from_tags() -> None:
    node, report = composed("a: !!python/object/apply:os.system ['echo hi']\n")

    assert isinstance(node, Map) and not report.has_errors
    assert "python/object/apply" in report.warnings()[0].message


def test_long_text_repeated_through_aliases_is_refused() -> None:
    text = "a: &a '" + "x" * 100_000 + "'\nb: [" + ", ".join(["*a"] * 100) + "]\n"

    assert "8388608 characters once its aliases are followed" in only_error(text)
