"""Contract: storing, reading, updating and deleting documents, on every adapter."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from aorta.errors import Conflict, Invalid, NotFound, Unavailable
from aorta.store import StateStore
from aorta.timestamps import from_iso, utcnow

EVERY_KIND_OF_VALUE: dict[str, Any] = {
    "id": "job-1",
    "name": "Ünïcødé ✓ 😀 日本語",
    "count": 3,
    "largest": 2**63 - 1,
    "smallest": -(2**63),
    "ratio": 0.1,
    "whole": 1.0,
    "huge": 1e300,
    "flag": True,
    "off": False,
    "nothing": None,
    "empty": "",
    "tags": ["a", 1, 2.5, None, True, ["nested"], {"k": "v"}, []],
    "spec": {"inner": {"deep": [1, {"x": None}]}, "empty": {}},
    "metadata": {"free-form key": "v", "dotted.key": "1", "ünï": "2"},
}


def assert_identical(actual: Any, expected: Any, where: str = "") -> None:
    """Equal, and of the very same types all the way down (1 is not 1.0, True is not 1)."""
    assert type(actual) is type(expected), f"{where}: {actual!r} vs {expected!r}"
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), where
        for key in expected:
            assert_identical(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            assert_identical(left, right, f"{where}[{index}]")
    else:
        assert actual == expected, where


async def test_values_round_trip_exactly(store: StateStore) -> None:
    jobs = store.collection("jobs")
    before = utcnow()
    stored = await jobs.insert(EVERY_KIND_OF_VALUE)
    expected = {**EVERY_KIND_OF_VALUE, "version": 1}
    expected["created_at"] = expected["updated_at"] = stored["created_at"]
    assert_identical(stored, expected)
    assert_identical(await jobs.get("job-1"), expected)
    created = from_iso(stored["created_at"])
    assert before - timedelta(seconds=1) <= created <= utcnow() + timedelta(seconds=1)


async def test_documents_are_copies(store: StateStore) -> None:
    jobs = store.collection("jobs")
    original: dict[str, Any] = {"id": "j", "spec": {"steps": [1]}}
    stored = await jobs.insert(original)
    original["spec"]["steps"].append(2)
    stored["spec"]["steps"].append(3)
    assert (await jobs.get("j"))["spec"] == {"steps": [1]}
    assert "version" not in original


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"name": "no id"}, "'id'"),
        ({"id": ""}, "'id'"),
        ({"id": 5}, "'id'"),
        ({"id": "j", "version": 3}, "'version'"),
        ({"id": "j", "created_at": "x"}, "'created_at'"),
        ({"id": "j", "updated_at": "x"}, "'updated_at'"),
        ({"id": "j", "_id": "x"}, "'_id'"),
        ({"id": "j", "bad-name": 1}, "'bad-name'"),
        ({"id": "j", "a.b": 1}, "'a.b'"),
        ({"id": "j", "x": float("nan")}, "finite"),
        ({"id": "j", "x": {"y": float("inf")}}, "finite"),
        ({"id": "j", "x": 2**63}, "64-bit"),
        ({"id": "j", "x": -(2**63) - 1}, "64-bit"),
        ({"id": "j", "x": "a\x00b"}, "NUL"),
        ({"id": "j", "x": {"a\x00": 1}}, "NUL"),
        ({"id": "j", "x": "\ud800"}, "Unicode"),
        ({"id": "j", "x": b"bytes"}, "bytes"),
        ({"id": "j", "x": (1, 2)}, "tuple"),
        ({"id": "j", "x": {1: "int key"}}, "not a string"),
        ({"id": "j", "x": _nested(70)}, "deeper"),
    ],
)
async def test_insert_rejects_invalid_documents(
    store: StateStore, document: dict[Any, Any], complaint: str
) -> None:
    jobs = store.collection("jobs")
    with pytest.raises(Invalid, match="jobs") as caught:
        await jobs.insert(document)
    assert complaint in str(caught.value)
    assert await jobs.count() == 0


async def test_duplicate_id_and_missing_document(store: StateStore) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j1", "n": 1})
    with pytest.raises(Conflict, match=r"jobs.*'j1'"):
        await jobs.insert({"id": "j1", "n": 2})
    assert (await jobs.get("j1"))["n"] == 1
    with pytest.raises(NotFound, match=r"jobs.*'nope'"):
        await jobs.get("nope")
    with pytest.raises(NotFound, match=r"jobs.*'nope'"):
        await jobs.update("nope", {"n": 1})
    with pytest.raises(NotFound, match=r"jobs.*'nope'"):
        await jobs.delete("nope")
    with pytest.raises(Invalid):
        await jobs.get("")


async def test_update_sets_unsets_and_bumps_the_version(store: StateStore) -> None:
    jobs = store.collection("jobs")
    inserted = await jobs.insert({"id": "j", "state": "PENDING", "spec": {"a": 1, "b": 2}, "x": 1})
    updated = await jobs.update(
        "j",
        {"state": "RUNNING", "spec.a": 10, "spec.c.d": [1, {"e": None}], "fresh.nested": True},
        unset=["x", "spec.b", "not_there", "spec.not_there.deeper"],
    )
    assert updated == {
        "id": "j",
        "state": "RUNNING",
        "spec": {"a": 10, "c": {"d": [1, {"e": None}]}},
        "fresh": {"nested": True},
        "version": 2,
        "created_at": inserted["created_at"],
        "updated_at": updated["updated_at"],
    }
    assert from_iso(updated["updated_at"]) >= from_iso(inserted["updated_at"])
    assert await jobs.get("j") == updated
    touched = await jobs.update("j", {})
    assert touched["version"] == 3


async def test_top_level_updates_round_trip_exactly(store: StateStore) -> None:
    # SQLite applies top-level changes to the stored JSON itself, not to a decoded copy.
    jobs = store.collection("jobs")
    inserted = await jobs.insert({"id": "job-1", "name": "old", "gone": 1, "kept": [1.0]})
    values = {key: value for key, value in EVERY_KIND_OF_VALUE.items() if key != "id"}
    updated = await jobs.update("job-1", values, expected_version=1, unset=["gone", "never_there"])
    expected = {
        **values,
        "id": "job-1",
        "kept": [1.0],
        "version": 2,
        "created_at": inserted["created_at"],
        "updated_at": updated["updated_at"],
    }
    assert_identical(updated, expected)
    assert_identical(await jobs.get("job-1"), expected)
    with pytest.raises(Conflict):
        await jobs.update("job-1", {"name": "late"}, expected_version=1)
    with pytest.raises(NotFound):
        await jobs.update("missing", {"name": "x"}, expected_version=1)
    with pytest.raises(NotFound):
        await jobs.update("missing", {"name": "x"})


@pytest.mark.parametrize("holder", [5, "text", None, [1, 2], True])
async def test_update_cannot_set_through_a_non_object(store: StateStore, holder: Any) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j", "spec": holder})
    with pytest.raises(Invalid, match=r"jobs.*'spec.x'.*'spec'"):
        await jobs.update("j", {"spec.x": 1})
    stored = await jobs.get("j")
    assert stored["spec"] == holder
    assert stored["version"] == 1


@pytest.mark.parametrize(
    ("changes", "unset"),
    [
        ({"id": "other"}, ()),
        ({"version": 9}, ()),
        ({"created_at": "x"}, ()),
        ({"updated_at": "x"}, ()),
        ({"version.x": 1}, ()),
        ({}, ("id",)),
        ({"a": 1, "a.b": 2}, ()),
        ({"a": 1}, ("a.b",)),
        ({}, ("a", "a")),
        ({"bad-name": 1}, ()),
        ({"_id": 1}, ()),
        ({"a": float("nan")}, ()),
        ({}, "a"),
    ],
)
async def test_update_rejects_invalid_changes(
    store: StateStore, changes: dict[str, Any], unset: Any
) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j", "a": {"b": 1}})
    with pytest.raises(Invalid, match="jobs"):
        await jobs.update("j", changes, unset=unset)
    assert (await jobs.get("j"))["version"] == 1


async def test_optimistic_concurrency(store: StateStore) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j", "n": 0})
    assert (await jobs.update("j", {"n": 1}, expected_version=1))["version"] == 2
    with pytest.raises(Conflict, match=r"jobs.*'j'.*version 2.*expected 1"):
        await jobs.update("j", {"n": 99}, expected_version=1)
    with pytest.raises(Conflict, match=r"jobs.*'j'.*version 2"):
        await jobs.delete("j", expected_version=1)
    with pytest.raises(Invalid):
        await jobs.update("j", {"n": 2}, expected_version=0)
    assert (await jobs.get("j"))["n"] == 1
    await jobs.delete("j", expected_version=2)
    with pytest.raises(NotFound):
        await jobs.get("j")
    with pytest.raises(NotFound):
        await jobs.delete("j", expected_version=2)


async def test_of_concurrent_writers_holding_one_version_exactly_one_wins(
    store: StateStore,
) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j", "owner": None})
    outcomes = await asyncio.gather(
        *(jobs.update("j", {"owner": f"w{i}"}, expected_version=1) for i in range(12)),
        return_exceptions=True,
    )
    winners = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    assert len(winners) == 1
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, dict))
    stored = await jobs.get("j")
    assert stored["version"] == 2
    assert stored["owner"] == winners[0]["owner"]


async def test_concurrent_updates_without_a_version_all_apply(store: StateStore) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j"})
    await asyncio.gather(*(jobs.update("j", {f"f{i}": i}) for i in range(20)))
    stored = await jobs.get("j")
    assert stored["version"] == 21
    assert all(stored[f"f{i}"] == i for i in range(20))


async def test_delete_many(store: StateStore) -> None:
    jobs = store.collection("jobs")
    for i in range(6):
        await jobs.insert({"id": f"j{i}", "n": i})
    assert await jobs.delete_many({"n": {"$gte": 4}}) == 2
    assert await jobs.delete_many({"n": 99}) == 0
    assert [d["id"] for d in await jobs.find()] == ["j0", "j1", "j2", "j3"]
    with pytest.raises(Invalid, match="jobs"):
        await jobs.delete_many(None)  # type: ignore[arg-type]
    assert await jobs.delete_many({}) == 4
    assert await jobs.count() == 0


async def test_collections_are_separate_and_names_are_checked(store: StateStore) -> None:
    await store.collection("jobs").insert({"id": "same"})
    await store.collection("pipelines").insert({"id": "same", "kind": "pipeline"})
    assert "kind" not in await store.collection("jobs").get("same")
    for name in ["", "Jobs", "1jobs", "jobs-x", 'jobs"; DROP TABLE jobs; --', "a b", "x" * 64]:
        with pytest.raises(Invalid, match="collection name"):
            store.collection(name)
    with pytest.raises(Invalid, match="collection name"):
        store.collection("sqlite_master")


async def test_a_closed_store_is_unavailable(store: StateStore) -> None:
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j"})
    await store.close()
    await store.close()
    with pytest.raises(Unavailable):
        await jobs.get("j")
    with pytest.raises(Unavailable):
        await jobs.insert({"id": "k"})


@pytest.mark.parametrize(
    "changes",
    [{"name": "new"}, {"operators.1": "x"}, {"spec.a": 2}],
    ids=["top", "element", "dotted"],
)
async def test_an_update_returns_only_the_fields_asked_for(
    store: StateStore, changes: dict[str, Any]
) -> None:
    jobs = store.collection("jobs")
    inserted = await jobs.insert({"id": "j", "name": "old", "operators": [1, 2], "spec": {}})

    bare = await jobs.update("j", changes, expected_version=1, fields=())
    some = await jobs.update("j", {}, fields=["name", "spec", "never_there", "version"])

    assert_identical(bare, {"id": "j", "version": 2})
    whole = await jobs.get("j")
    assert some == {key: whole[key] for key in ("id", "version", "name", "spec")}
    assert whole["version"] == 3 and whole["created_at"] == inserted["created_at"]
    for fields in (["spec.a"], "name", ["bad-name"]):
        with pytest.raises(Invalid, match="jobs"):
            await jobs.update("j", {"name": "late"}, fields=fields)
    assert (await jobs.get("j"))["version"] == 3
