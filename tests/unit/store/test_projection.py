"""Projected documents hold exactly what `json.loads` would give for the chosen fields."""

from __future__ import annotations

import json

import pytest

from aorta.store.projection import projection

DOCUMENT = {
    "id": "a" * 32,
    "name": "naïve ☃",
    "created": 1765000000.123456,
    "count": 3,
    "absent-later": None,
    "metadata": [["site", "north"], ["k", ""]],
    "operators": [{"name": "infer", "times": [1.5, 2.25], "nested": {"deep": [True, False]}}],
    "with space": {"x": 1},
}


@pytest.mark.parametrize(
    "fields",
    [
        ("id", "name", "created", "metadata"),
        ("metadata", "id"),
        ("count", "absent-later", "with space", "missing"),
        ("operators",),
        (),
    ],
)
def test_the_chosen_fields_are_those_json_gives_in_the_order_asked(
    fields: tuple[str, ...],
) -> None:
    text = json.dumps(DOCUMENT, ensure_ascii=False, separators=(",", ":"))
    whole = json.loads(text)

    projected = projection(fields)(text)

    expected = {name: whole[name] for name in fields if name in whole}
    assert projected == expected
    assert list(projected) == list(expected)
    assert all(type(projected[name]) is type(expected[name]) for name in expected)


@pytest.mark.parametrize("text", ["[1, 2]", "{", "nope"])
def test_text_that_is_no_document_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        projection(("id",))(text)
