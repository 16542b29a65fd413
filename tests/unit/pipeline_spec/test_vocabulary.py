"""How an unknown key is judged: a typo, a misplaced key, or an extension to warn about."""

from __future__ import annotations

import pytest

from aorta.pipeline_spec.vocabulary import (
    CONNECTIONS,
    CONTAINER,
    HTTP_CONNECTION,
    INPUT,
    MODEL,
    OPERATOR,
    OUTPUT,
    PIPELINE,
    PLACES,
    REQUESTS,
    SERVICE,
    allowed_edits,
    edit_distance,
    judge,
    key_shape,
    near_misses,
    quoted,
)


@pytest.mark.parametrize(
    ("left", "right", "distance"),
    [
        ("operators", "operators", 0),
        ("opertors", "operators", 1),  # a deletion
        ("comand", "command", 1),
        ("form", "from", 1),  # neighbours swapped count once
        ("memroy", "memory", 1),
        ("gpu", "cpu", 1),
        ("ouptut", "output", 1),
        ("contnr", "container", 3),
        ("", "tag", 3),
    ],
)
def test_edit_distance_counts_a_swap_of_neighbours_as_one_edit(
    left: str, right: str, distance: int
) -> None:
    assert edit_distance(left, right, limit=3) == distance
    assert edit_distance(right, left, limit=3) == distance


def test_edit_distance_stops_at_its_limit_however_long_the_key() -> None:
    assert edit_distance("x" * 100_000, "name", limit=2) == 3
    assert edit_distance("abcdefgh", "stuvwxyz", limit=2) == 3


def test_short_keys_allow_one_edit_and_longer_ones_two() -> None:
    assert [allowed_edits(k) for k in ("tag", "cpu", "name", "image", "operators")] == [
        1,
        1,
        1,
        2,
        2,
    ]


def test_shapes_ignore_case_separators_and_one_plural_s() -> None:
    assert key_shape("apiVersion") == key_shape("api_version") == key_shape("api-version")
    assert key_shape("Inputs") == key_shape("input")
    assert key_shape("element-type") == "elementtype"


@pytest.mark.parametrize(
    ("key", "known", "meant"),
    [
        ("opertors", PIPELINE.keys, ("operators",)),
        ("apiVersion", PIPELINE.keys, ("api-version",)),
        ("pull_secrets", PIPELINE.keys, ("pull-secrets",)),
        ("comand", CONTAINER.keys, ("command",)),
        ("imgae", CONTAINER.keys, ("image",)),
        ("tga", CONTAINER.keys, ("tag",)),
        ("tpu", REQUESTS.keys, ("cpu", "gpu")),
        ("outputs", OPERATOR.keys, ("output",)),
        ("conections", SERVICE.keys, ("connections",)),
        ("htpp", CONNECTIONS.keys, ("http",)),
        ("elemnt-type", INPUT.keys, ("element-type",)),
        ("os", CONTAINER.keys, ()),
        ("owner", PIPELINE.keys, ()),
        ("priority", REQUESTS.keys, ()),
        ("ab", HTTP_CONNECTION.keys, ()),
    ],
)
def test_near_misses(key: str, known: tuple[str, ...], meant: tuple[str, ...]) -> None:
    assert near_misses(key, known) == meant


def test_a_typo_is_an_error_naming_the_key_it_may_mean() -> None:
    verdict = judge("opertors", PIPELINE, "the pipeline")

    assert verdict.severity == "error"
    assert verdict.message == "unknown key `opertors` in the pipeline; did you mean `operators`?"
    assert verdict.meant == ("operators",)


def test_a_key_indented_too_far_belongs_to_the_enclosing_mapping() -> None:
    verdict = judge("input", CONTAINER, "`container` of operator 'second'", OPERATOR)

    assert verdict.severity == "error"
    assert verdict.message == (
        "`input` belongs to the operator, not `container` (in `container` of operator 'second')"
    )
    assert verdict.meant == ()


def test_a_key_not_indented_enough_belongs_to_the_mapping_written_in_this_one() -> None:
    assert judge("command", OPERATOR, "operator 'a'").message.startswith(
        "`command` belongs to `container`, not the operator"
    )
    assert judge("path", OPERATOR, "operator 'a'").message.startswith(
        "`path` belongs to an input or an output, not the operator"
    )
    assert judge("cpu", SERVICE, "service 't'").message.startswith(
        "`cpu` belongs to `requests`, not a service"
    )


def test_a_misplaced_description_is_only_a_warning() -> None:
    verdict = judge("description", INPUT, "input #1 of operator 'a'")

    assert verdict.severity == "warning"
    assert verdict.message == (
        "`description` belongs to the operator, not an input (in input #1 of operator 'a'); "
        "it is ignored here"
    )


def test_a_misplaced_key_in_the_pipeline_names_the_pipeline_once() -> None:
    verdict = judge("container", PIPELINE, "the pipeline")

    assert verdict.message == "`container` belongs to the operator, not the pipeline"


def test_a_key_of_an_unrelated_mapping_names_it() -> None:
    assert judge("from", OUTPUT, "output #1 of operator 'a'").message.startswith(
        "`from` belongs to an input, not an output"
    )


def test_where_a_container_is_written_decides_where_its_stray_keys_belong() -> None:
    in_service = judge("connections", CONTAINER, "`container` of service 't'", SERVICE)
    in_operator = judge("name", CONTAINER, "`container` of operator 'a'", OPERATOR)

    assert in_service.message.startswith("`connections` belongs to a service, not `container`")
    assert in_operator.message.startswith("`name` belongs to the operator, not `container`")


def test_a_misplaced_key_in_another_spelling_says_how_it_is_spelt() -> None:
    verdict = judge("Inputs", CONTAINER, "`container` of operator 'a'", OPERATOR)

    assert verdict.message.startswith(
        "`Inputs` belongs to the operator (spelt `input`), not `container`"
    )


def test_a_key_misspelt_and_misplaced_at_once_is_found_next_door() -> None:
    beside = judge("comand", OPERATOR, "operator 'a'")
    too_deep = judge("nme", CONTAINER, "`container` of operator 'a'", OPERATOR)

    assert beside.severity == too_deep.severity == "error"
    assert beside.message == (
        "unknown key `comand` in operator 'a'; did you mean `command`? It belongs to "
        "`container`, not the operator"
    )
    assert too_deep.message.endswith(
        "did you mean `name`? It belongs to the operator, not `container`"
    )


def test_only_one_edit_next_door_counts_so_extensions_stay_warnings() -> None:
    assert judge("comment", INPUT, "input #1 of operator 'a'").severity == "warning"
    assert judge("comment", OPERATOR, "operator 'a'").severity == "warning"
    assert judge("labels", OPERATOR, "operator 'a'").severity == "warning"


def test_a_far_off_key_is_a_warning_listing_the_keys_of_its_place() -> None:
    verdict = judge("owner", PIPELINE, "the pipeline")

    assert verdict.severity == "warning"
    assert verdict.message == (
        "unknown key `owner` in the pipeline is ignored; the keys of the pipeline are "
        "api-version, name, description, orchestrator, pull-secrets, parameters, operators, "
        "timeout"
    )


def test_a_far_off_key_still_gets_a_looser_guess_when_there_is_one() -> None:
    verdict = judge("modelz-list", OPERATOR, "operator 'a'")

    assert verdict.severity == "warning"
    assert verdict.message.endswith("is ignored; did you mean `models`?")


def test_without_a_hint_a_far_off_key_is_named_alone() -> None:
    verdict = judge("modelz-list", OPERATOR, "operator 'a'", hint=False)

    assert verdict.message == "unknown key `modelz-list` in operator 'a' is ignored"


def test_keys_that_would_not_read_well_in_backticks_are_quoted_and_shortened() -> None:
    assert quoted("opertors") == "`opertors`"
    assert quoted("a`b") == "'a`b'"
    assert quoted("line\nbreak") == "'line\\nbreak'"
    assert quoted("x" * 100).endswith("...'") and len(quoted("x" * 100)) < 70
    assert quoted("") == "''"


def test_every_place_has_distinct_keys_and_known_enclosing_places() -> None:
    names = {place.name for place in PLACES}
    for place in PLACES:
        assert len(set(place.keys)) == len(place.keys), place.name
        assert set(place.within) <= names, place.name
    assert MODEL.keys == ("name",)
