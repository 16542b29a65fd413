"""Contract: the filter language, sorting, paging and counting, on every adapter."""

from __future__ import annotations

from typing import Any

import pytest

from aorta.errors import Invalid
from aorta.store import Collection, StateStore

DOCUMENTS: list[dict[str, Any]] = [
    {
        "id": "a",
        "n": 1,
        "s": "alpha",
        "t": "2026-01-01T00:00:00.000000Z",
        "b": True,
        "spec": {"k": "x", "v": 10},
        "tags": ["red"],
        "z": None,
    },
    {
        "id": "b",
        "n": 2.5,
        "s": "beta",
        "t": "2025-12-31T23:59:59.999999Z",
        "b": False,
        "spec": {"k": "y"},
        "tags": [],
    },
    {"id": "c", "n": 3, "s": "gamma", "spec": {"k": "x", "v": 30}},
    {"id": "d", "n": "3", "s": "delta", "spec": 7},
    {"id": "e", "n": True, "spec": {"v": None}, "items": [{"k": "x"}]},
    {"id": "f"},
]
EVERY = "abcdef"

# (filter, the ids it selects): each case pins one rule of aorta.store.filters.
CASES: list[tuple[dict[str, Any], str]] = [
    ({}, EVERY),
    ({"n": 3}, "c"),
    ({"n": 3.0}, "c"),
    ({"n": 1}, "a"),
    ({"n": True}, "e"),
    ({"n": "3"}, "d"),
    ({"n": {"$eq": 2.5}}, "b"),
    ({"n": {"$ne": 3}}, "abdef"),
    ({"n": None}, "f"),
    ({"z": None}, EVERY),
    ({"z": {"$ne": None}}, ""),
    ({"z": {"$exists": True}}, "a"),
    ({"z": {"$exists": False}}, "bcdef"),
    ({"n": {"$in": [1, "3", True]}}, "ade"),
    ({"n": {"$in": [None, 3]}}, "cf"),
    ({"n": {"$nin": [1, 3]}}, "bdef"),
    ({"n": {"$nin": [None, False]}}, "abcde"),
    ({"n": {"$in": []}}, ""),
    ({"n": {"$nin": []}}, EVERY),
    ({"n": {"$gt": 1}}, "bc"),
    ({"n": {"$gte": 1}}, "abc"),
    ({"n": {"$lt": 3}}, "ab"),
    ({"n": {"$lte": 3}}, "abc"),
    ({"n": {"$gt": 0, "$lt": 3}}, "ab"),
    ({"n": {"$gte": "3"}}, "d"),
    ({"n": {"$gt": ""}}, "d"),
    ({"n": {"$lt": "4"}}, "d"),
    ({"n": {"$gte": -1e300}}, "abc"),
    ({"spec": {"$gt": ""}}, ""),
    ({"spec": {"$gte": 0}}, "d"),
    ({"z": {"$lt": 1}}, ""),
    ({"b": {"$gte": 0}}, ""),
    ({"b": {"$lte": "z"}}, ""),
    ({"s": {"$gt": "b"}}, "bcd"),
    ({"s": {"$lt": "beta"}}, "a"),
    ({"s": {"$lte": "beta"}}, "ab"),
    ({"t": {"$gte": "2026-01-01T00:00:00.000000Z"}}, "a"),
    ({"t": {"$lt": "2026"}}, "b"),
    ({"spec.k": "x"}, "ac"),
    ({"spec.k": {"$ne": "x"}}, "bdef"),
    ({"spec.v": {"$gte": 10}}, "ac"),
    ({"spec.v": None}, "bdef"),
    ({"spec.v": {"$exists": True}}, "ace"),
    ({"spec.k.deeper": {"$exists": False}}, EVERY),
    ({"tags": "red"}, ""),
    ({"tags": {"$in": ["red"]}}, ""),
    ({"tags": {"$ne": "red"}}, EVERY),
    ({"tags": {"$exists": True}}, "ab"),
    ({"items.k": "x"}, ""),
    ({"items.k": None}, EVERY),
    ({"items.k": {"$exists": True}}, ""),
    ({"b": True}, "a"),
    ({"b": {"$ne": True}}, "bcdef"),
    ({"id": "c"}, "c"),
    ({"id": {"$in": ["a", "b", "zz"]}}, "ab"),
    ({"id": {"$gt": "d"}}, "ef"),
    ({"n": {"$exists": True}, "s": {"$exists": False}}, "e"),
    ({"$or": [{"n": 1}, {"s": "gamma"}]}, "ac"),
    ({"$or": [{"spec.k": "x"}, {"b": False}], "n": {"$gt": 1}}, "bc"),
    ({"$or": [{"$or": [{"n": 1}]}, {"id": "f"}]}, "af"),
    ({"$or": [{"n": {"$exists": False}}, {"spec": {"$eq": 7}}]}, "df"),
]


async def _filled(store: StateStore) -> Collection:
    jobs = store.collection("jobs")
    for document in DOCUMENTS:
        await jobs.insert(document)
    return jobs


async def test_every_filter_rule(store: StateStore) -> None:
    jobs = await _filled(store)
    for filter, expected in CASES:
        found = "".join(document["id"] for document in await jobs.find(filter))
        assert found == expected, filter
        assert await jobs.count(filter) == len(expected), filter
        first = await jobs.find_one(filter)
        assert (first["id"] if first else "") == expected[:1], filter


async def test_filters_on_indexed_fields_give_the_same_answers(store: StateStore) -> None:
    jobs = store.collection("jobs")
    for fields in (["n"], ["s"], ["spec.k"], ["spec.v"], ["z"], ["tags"], ["t", "b"]):
        await jobs.ensure_index(fields)
    await jobs.ensure_index(["n"])
    for document in DOCUMENTS:
        await jobs.insert(document)
    for filter, expected in CASES:
        found = "".join(document["id"] for document in await jobs.find(filter))
        assert found == expected, filter


async def test_delete_many_uses_the_same_filters(store: StateStore) -> None:
    jobs = await _filled(store)
    assert await jobs.delete_many({"$or": [{"n": {"$gt": 1}}, {"spec.v": None}]}) == 5
    assert [document["id"] for document in await jobs.find()] == ["a"]


SORTABLE: list[dict[str, Any]] = [
    {"id": "1", "k": 2, "g": "y", "o": {"p": 3}},
    {"id": "2", "k": "b", "g": "x", "o": {"p": 1}},
    {"id": "3", "g": "x"},
    {"id": "4", "k": None, "g": "y", "o": {"p": 2}},
    {"id": "5", "k": 1.5, "g": "x", "o": {}},
    {"id": "6", "k": "a", "g": "y", "o": {"p": "z"}},
    {"id": "7", "k": True, "g": "x"},
    {"id": "8", "k": False, "g": "y", "o": {"p": None}},
    {"id": "9", "k": -1, "g": "x", "o": {"p": 2}},
]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, "123456789"),
        ([("k", 1)], "349516287"),
        ([("k", -1)], "782615934"),
        ([("g", 1), ("k", -1)], "725938614"),
        ([("o.p", 1)], "357824916"),
        ([("o.p", -1)], "614923578"),
        ([("id", -1)], "987654321"),
        ([("g", -1), ("id", -1)], "864197532"),
    ],
)
async def test_sort(store: StateStore, sort: Any, expected: str) -> None:
    jobs = store.collection("jobs")
    for document in reversed(SORTABLE):
        await jobs.insert(document)
    assert "".join(document["id"] for document in await jobs.find(sort=sort)) == expected


async def test_limit_and_skip(store: StateStore) -> None:
    jobs = store.collection("jobs")
    for document in SORTABLE:
        await jobs.insert(document)

    async def ids(**paging: Any) -> str:
        return "".join(d["id"] for d in await jobs.find({"g": "x"}, sort=[("k", 1)], **paging))

    assert await ids() == "39527"
    assert await ids(limit=2) == "39"
    assert await ids(skip=2) == "527"
    assert await ids(skip=1, limit=3) == "952"
    assert await ids(limit=0) == ""
    assert await ids(skip=9) == ""
    assert await ids(limit=None, skip=0) == "39527"
    assert await jobs.count() == 9
    assert await jobs.count({"g": "x"}) == 5


@pytest.mark.parametrize(
    "filter",
    [
        {"n": {"$regex": "x"}},
        {"$and": [{"n": 1}]},
        {"$where": "1"},
        {"n": {"$gt": 1, "oops": 2}},
        {"n": {}},
        {"n": {"a": 1}},
        {"n": [1, 2]},
        {"n": {"$in": "abc"}},
        {"n": {"$in": b"ab"}},
        {"n": {"$in": [[1]]}},
        {"n": {"$eq": {"a": 1}}},
        {"n": {"$gt": None}},
        {"n": {"$gt": True}},
        {"n": {"$lt": [1]}},
        {"n": {"$exists": 1}},
        {"n": float("nan")},
        {"n": 2**64},
        {"n": "a\x00"},
        {"$or": []},
        {"$or": {"n": 1}},
        {"$or": [1]},
        {"bad-field": 1},
        {"a..b": 1},
        {"1a": 1},
        {"_id": "x"},
        {"": 1},
        {"a.": 1},
    ],
)
async def test_invalid_filters(store: StateStore, filter: dict[str, Any]) -> None:
    jobs = store.collection("jobs")
    with pytest.raises(Invalid, match="jobs"):
        await jobs.find(filter)
    with pytest.raises(Invalid, match="jobs"):
        await jobs.count(filter)
    with pytest.raises(Invalid, match="jobs"):
        await jobs.delete_many(filter)


@pytest.mark.parametrize(
    "paging",
    [
        {"sort": [("k", 0)]},
        {"sort": [("k", True)]},
        {"sort": [("k", 1), ("k", -1)]},
        {"sort": [("bad-field", 1)]},
        {"sort": "k"},
        {"sort": [("k",)]},
        {"limit": -1},
        {"skip": -1},
        {"limit": 1.5},
        {"skip": None},
    ],
)
async def test_invalid_paging(store: StateStore, paging: dict[str, Any]) -> None:
    with pytest.raises(Invalid, match="jobs"):
        await store.collection("jobs").find({}, **paging)
