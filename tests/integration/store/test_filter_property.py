"""Property: each adapter's translation of a filter (and of a sort) agrees with the reference.

The reference is `aorta.store.filters.matches`, plain Python; random documents mix every JSON
type (lists and objects where scalars are expected, big integers next to floats, unicode) and
random filters use every operator, `$or` and dotted paths through objects, lists and scalars.
The stores are opened once for the module and driven by one event loop of our own, because
hypothesis calls the test body many times and a fresh store each time would be slow (SQLite
runs with `durable=False` for the same reason: durability is not what is tested here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mongomock_motor import AsyncMongoMockClient

from aorta.store import StateStore
from aorta.store.filters import MISSING, family, matches, parse_filter, resolve
from aorta.store.mongo import MongoStateStore
from aorta.store.sqlite import SqliteStateStore

ADAPTERS = ["sqlite", "mongomock"]

texts = st.sampled_from(
    ["", "a", "b", "ab", "B", "é", "日本", "😀", "d1", "2026-01-01T00:00:00Z", "2026-01-01T00:00"]
) | st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=3)
numbers = (
    st.sampled_from(
        [
            *[0, 1, -1, 2, 0.5, 1.0, -0.0, 2.5, 2**53, 2**53 + 1, float(2**53)],
            *[2**63 - 1, -(2**63), 9.223372036854776e18, 1e300, -1e-300],
        ]
    )
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False)
)
# Most scalars come from a small pool, so that operands often meet stored values of the
# same and of every other type.
common = st.sampled_from([None, True, False, 0, 1, 1.0, -1, 2.5, "", "a", "b", "é", "d1"])
scalars = st.one_of(common, common, st.none() | st.booleans() | numbers | texts)
containers = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.dictionaries(st.sampled_from(["a", "x"]), inner, max_size=2)
    ),
    max_leaves=3,
)
values = st.one_of(scalars, scalars, scalars, containers)
documents = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "a": values,
            "b": values,
            "n": st.fixed_dictionaries({}, optional={"a": values}) | values,
            "l": st.lists(st.fixed_dictionaries({"a": common}), min_size=1, max_size=2) | values,
        },
    ),
    max_size=8,
).map(lambda docs: [{"id": f"d{i}", **doc} for i, doc in enumerate(docs)])

# Paths through objects, lists and scalars; the top-level ones most often.
paths = st.sampled_from(["a", "a", "a", "b", "n.a", "n.a", "l.a", "a.x", "id"])
ordered = st.one_of(common.filter(lambda v: family(v) in ("number", "string")), numbers, texts)
OPERANDS = {
    "$eq": scalars,
    "$ne": scalars,
    "$in": st.lists(scalars, max_size=3),
    "$nin": st.lists(scalars, max_size=3),
    "$lt": ordered,
    "$lte": ordered,
    "$gt": ordered,
    "$gte": ordered,
    "$exists": st.booleans(),
}
# Operators are drawn by name first: hypothesis favours the first branches of a `one_of`.
operators = st.sampled_from(sorted(OPERANDS)).flatmap(
    lambda operator: OPERANDS[operator].map(lambda operand: (operator, operand))
)
field_conditions = st.sampled_from(["scalar", "operators"]).flatmap(
    lambda kind: (
        scalars if kind == "scalar" else st.lists(operators, min_size=1, max_size=2).map(dict)
    )
)
flat_filters = st.dictionaries(paths, field_conditions, min_size=1, max_size=2)
filters = st.recursive(
    flat_filters,
    lambda inner: st.builds(
        lambda branches, rest: {"$or": branches, **rest},
        st.lists(inner, min_size=1, max_size=3),
        st.dictionaries(paths, field_conditions, max_size=1),
    ),
    max_leaves=4,
)

sortable_documents = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "a": scalars,
            "b": st.sampled_from([None, True, 1, "x"]),
            "n": st.fixed_dictionaries({}, optional={"a": scalars}),
        },
    ),
    max_size=7,
).map(lambda docs: [{"id": f"d{i}", **doc} for i, doc in enumerate(docs)])
sorts = st.lists(
    st.tuples(st.sampled_from(["a", "b", "n.a", "id"]), st.sampled_from([1, -1])),
    min_size=1,
    max_size=3,
    unique_by=lambda term: term[0],
)


class Harness:
    """The module's stores and the event loop that drives them."""

    def __init__(self, runner: asyncio.Runner, stores: dict[str, StateStore]) -> None:
        self.runner = runner
        self.stores = stores

    def load(self, adapter: str, docs: list[dict[str, Any]]) -> None:
        async def load() -> None:
            collection = self.stores[adapter].collection("prop")
            await collection.delete_many({})
            for document in docs:
                await collection.insert(document)

        self.runner.run(load())

    def find(self, adapter: str, **query: Any) -> tuple[list[str], int]:
        async def find() -> tuple[list[str], int]:
            collection = self.stores[adapter].collection("prop")
            found = await collection.find(**query)
            return [d["id"] for d in found], await collection.count(query.get("filter"))

        return self.runner.run(find())


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    path: Path = tmp_path_factory.mktemp("property") / "state.db"
    with asyncio.Runner() as runner:
        stores: dict[str, StateStore] = {
            "sqlite": runner.run(SqliteStateStore.open(path, durable=False)),
            "mongomock": MongoStateStore(AsyncMongoMockClient(), "property"),
        }
        yield Harness(runner, stores)
        for store in stores.values():
            runner.run(store.close())


@pytest.mark.parametrize("adapter", ADAPTERS)
@settings(max_examples=150, deadline=None, database=None)
@given(docs=documents, batch=st.lists(filters, min_size=1, max_size=8))
def test_filters_agree_with_the_reference(
    harness: Harness, adapter: str, docs: list[dict[str, Any]], batch: list[dict[str, Any]]
) -> None:
    harness.load(adapter, docs)
    for filter in batch:
        node = parse_filter("prop", filter)
        expected = [document["id"] for document in docs if matches(node, document)]
        assert harness.find(adapter, filter=filter) == (expected, len(expected)), filter


_RANK = {"number": 1, "string": 2, "bool": 5}


def _reference_sort(docs: list[dict[str, Any]], sort: list[tuple[str, int]]) -> list[str]:
    ordered = sorted(docs, key=lambda document: str(document["id"]))
    for path, direction in reversed(sort):
        ordered.sort(key=lambda document: _sort_key(document, path), reverse=direction == -1)
    return [document["id"] for document in ordered]


def _sort_key(document: dict[str, Any], path: str) -> tuple[int, Any]:
    value = resolve(document, path)
    if value is MISSING or value is None:
        return (0, 0)
    return (_RANK[str(family(value))], value)


@pytest.mark.parametrize("adapter", ADAPTERS)
@settings(max_examples=80, deadline=None, database=None)
@given(
    docs=sortable_documents,
    sort=sorts,
    skip=st.integers(0, 3),
    limit=st.none() | st.integers(0, 4),
)
def test_sorting_and_paging_agree_with_the_reference(
    harness: Harness,
    adapter: str,
    docs: list[dict[str, Any]],
    sort: list[tuple[str, int]],
    skip: int,
    limit: int | None,
) -> None:
    expected = _reference_sort(docs, sort)[skip:][:limit]
    harness.load(adapter, docs)
    found, _ = harness.find(adapter, sort=sort, skip=skip, limit=limit)
    assert found == expected
