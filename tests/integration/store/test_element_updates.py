"""Contract: an update's element paths (`a.3`), on every adapter.

An element path replaces one element that the list in a top-level field already has, so a
writer that changed one element of a long list (a job's operators) sends only that element.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aorta.errors import Conflict, Invalid
from aorta.store import StateStore
from tests.integration.store.test_documents import EVERY_KIND_OF_VALUE, assert_identical

OPERATORS = [{"name": "a", "attempt": 0}, {"name": "b", "attempt": 0}, {"name": "c"}]


async def test_an_element_path_replaces_that_element_only(store: StateStore) -> None:
    jobs = store.collection("jobs")
    inserted = await jobs.insert({"id": "j", "operators": OPERATORS, "phase": "queued"})
    value = {key: v for key, v in EVERY_KIND_OF_VALUE.items() if key != "id"}

    updated = await jobs.update(
        "j", {"operators.1": value, "operators.2": 7, "phase": "running"}, expected_version=1
    )

    expected = {
        "id": "j",
        "operators": [OPERATORS[0], value, 7],
        "phase": "running",
        "version": 2,
        "created_at": inserted["created_at"],
        "updated_at": updated["updated_at"],
    }
    assert_identical(updated, expected)
    assert_identical(await jobs.get("j"), expected)


async def test_element_paths_go_with_dotted_paths(store: StateStore) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j", "operators": OPERATORS, "spec": {"a": 1}})

    updated = await jobs.update("j", {"operators.0": {"name": "z"}, "spec.b.c": 2})

    assert updated["operators"] == [{"name": "z"}, *OPERATORS[1:]]
    assert updated["spec"] == {"a": 1, "b": {"c": 2}}


@pytest.mark.parametrize("holder", [[1, 2, 3], [], {"3": 1}, 5, "text", None, "missing"], ids=repr)
async def test_an_element_path_needs_a_list_with_that_element(
    store: StateStore, holder: Any
) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j"} if holder == "missing" else {"id": "j", "operators": holder})

    for version in (None, 1):
        with pytest.raises(Invalid, match=r"jobs.*'operators.3'.*'operators'"):
            await jobs.update("j", {"operators.3": 1, "other": 2}, expected_version=version)

    stored = await jobs.get("j")
    assert stored["version"] == 1
    assert "other" not in stored
    assert stored.get("operators", "missing") == holder


@pytest.mark.parametrize(
    ("changes", "unset"),
    [
        ({"operators.01": 1}, ()),
        ({"operators.-1": 1}, ()),
        ({"spec.operators.1": 1}, ()),
        ({"operators.1.name": 1}, ()),
        ({"1": 1}, ()),
        ({"_id.1": 1}, ()),
        ({"version.1": 1}, ()),
        ({"operators": [], "operators.1": 1}, ()),
        ({"operators.1": 1}, ("operators",)),
        ({}, ("operators.1",)),
    ],
)
async def test_element_paths_that_are_refused(
    store: StateStore, changes: dict[str, Any], unset: Any
) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j", "operators": OPERATORS, "spec": {"operators": [1, 2]}})
    with pytest.raises(Invalid, match="jobs"):
        await jobs.update("j", changes, unset=unset)
    assert (await jobs.get("j"))["version"] == 1


async def test_of_writers_of_elements_holding_one_version_exactly_one_wins(
    store: StateStore,
) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j", "operators": OPERATORS})

    outcomes = await asyncio.gather(
        *(
            jobs.update("j", {f"operators.{i % 3}": {"name": f"w{i}"}}, expected_version=1)
            for i in range(12)
        ),
        return_exceptions=True,
    )

    winners = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    assert len(winners) == 1
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, dict))
    stored = await jobs.get("j")
    assert stored["version"] == 2
    assert stored["operators"] == winners[0]["operators"]
    assert sum(op != before for op, before in zip(stored["operators"], OPERATORS, strict=True)) == 1
