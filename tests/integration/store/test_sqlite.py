"""What only the SQLite adapter promises: one durable file, shared by processes, safe SQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from aorta.errors import Conflict, Unavailable
from aorta.store.filters import parse_filter
from aorta.store.sqlite import SqliteStateStore
from aorta.store.sqlite_sql import filter_sql, value_sql


async def test_documents_and_indexes_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await SqliteStateStore.open(path)
    jobs = store.collection("jobs")
    await jobs.ensure_index(["name"], unique=True)
    await jobs.insert({"id": "j1", "name": "first", "big": 2**63 - 1})
    updated = await jobs.update("j1", {"state": "RUNNING"})
    await store.close()

    reopened = await SqliteStateStore.open(path)
    try:
        jobs = reopened.collection("jobs")
        assert await jobs.get("j1") == updated
        with pytest.raises(Conflict, match="'name'"):
            await jobs.insert({"id": "j2", "name": "first"})
    finally:
        await reopened.close()


async def test_two_stores_on_one_file_work_as_two_processes_would(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = await SqliteStateStore.open(path)
    second = await SqliteStateStore.open(path)
    try:
        mine, theirs = first.collection("jobs"), second.collection("jobs")
        await mine.insert({"id": "j", "n": 0})
        assert (await theirs.get("j"))["n"] == 0
        await theirs.update("j", {"n": 1})
        assert await mine.get("j") == await theirs.get("j")

        outcomes = await asyncio.gather(
            *(
                collection.update("j", {"n": i}, expected_version=2)
                for i, collection in enumerate([mine, theirs] * 4)
            ),
            return_exceptions=True,
        )
        assert sum(isinstance(outcome, dict) for outcome in outcomes) == 1
        assert sum(isinstance(outcome, Conflict) for outcome in outcomes) == 7

        await asyncio.gather(
            *(c.update("j", {f"f{i}": i}) for i, c in enumerate([mine, theirs] * 5))
        )
        stored = await theirs.get("j")
        assert stored["version"] == 13
        assert all(stored[f"f{i}"] == i for i in range(10))

        await mine.ensure_index(["name"], unique=True)
        await mine.insert({"id": "a", "name": "x"})
        with pytest.raises(Conflict, match="'name'"):
            await theirs.insert({"id": "b", "name": "x"})
    finally:
        await first.close()
        await second.close()


async def test_file_layout_wal_and_a_busy_writer(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await SqliteStateStore.open(path, busy_timeout=0.2)
    jobs = store.collection("jobs")
    await jobs.insert({"id": "j", "spec": {"a": [1, "ü"]}})
    other = sqlite3.connect(path, isolation_level=None)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        columns = [(row[1], row[2]) for row in other.execute("PRAGMA table_info(jobs)")]
        assert columns == [("id", "TEXT"), ("version", "INTEGER"), ("doc", "TEXT")]
        (version, doc), *_ = other.execute("SELECT version, doc FROM jobs WHERE id = 'j'")
        assert version == 1
        assert json.loads(doc) == await jobs.get("j")

        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable, match="busy"):
            await jobs.update("j", {"x": 1})
        assert (await jobs.get("j"))["version"] == 1
        other.execute("ROLLBACK")
        assert (await jobs.update("j", {"x": 1}))["version"] == 2
    finally:
        other.close()
        await store.close()


async def test_values_never_enter_the_sql_and_indexes_are_used(tmp_path: Path) -> None:
    hostile = "x'); DROP TABLE jobs; --"
    params: list[object] = []
    where = filter_sql(parse_filter("jobs", {"name": hostile, "n": {"$in": [1, True]}}), params)
    assert hostile not in where
    assert params == [hostile, 1, b"true"]

    path = tmp_path / "state.db"
    store = await SqliteStateStore.open(path)
    try:
        jobs = store.collection("jobs")
        await jobs.ensure_index(["name"])
        await jobs.insert({"id": "j", "name": hostile, "n": 1})
        assert [d["id"] for d in await jobs.find({"name": hostile})] == ["j"]
        reader = sqlite3.connect(path)
        plan = reader.execute(f"EXPLAIN QUERY PLAN SELECT doc FROM jobs WHERE {where}", params)
        assert "jobs:index:name" in " ".join(str(row) for row in plan.fetchall())
        reader.close()
    finally:
        await store.close()


def test_each_json_type_has_a_value_of_its_own() -> None:
    # What filters compare and indexes hold: numbers and text as themselves, null, booleans,
    # objects and lists as BLOBs of their JSON text, nothing for a missing field.
    documents = {
        "int": (7, 7),
        "real": (1.5, 1.5),
        "text": ("true", "true"),
        "true": (True, b"true"),
        "false": (False, b"false"),
        "null": (None, b"null"),
        "object": ({"a": [1]}, b'{"a":[1]}'),
        "list": ([1, "x"], b'[1,"x"]'),
    }
    connection = sqlite3.connect(":memory:")
    for name, (value, expected) in documents.items():
        doc = json.dumps({"v": value}, separators=(",", ":"))
        (got,) = connection.execute(f"SELECT {value_sql('v')} FROM (SELECT ? AS doc)", (doc,))
        assert got == (expected,), name
    (missing,) = connection.execute(f"SELECT {value_sql('v')} FROM (SELECT '{{}}' AS doc)")
    assert missing == (None,)


async def test_an_index_of_an_earlier_spelling_is_built_again_and_used(tmp_path: Path) -> None:
    # As an earlier version built it: the queries, spelled as now, would scan the table.
    path = tmp_path / "state.db"
    store = await SqliteStateStore.open(path)
    try:
        jobs = store.collection("jobs")
        await jobs.insert({"id": "j", "name": "first"})
        await store.write(
            "jobs", """CREATE INDEX "jobs:index:name" ON "jobs" (json_extract(doc, '$.name'))"""
        )
        await jobs.ensure_index(["name"])
        await jobs.ensure_index(["name"])  # and once it is, it stays
        params: list[object] = []
        where = filter_sql(parse_filter("jobs", {"name": "first"}), params)
        reader = sqlite3.connect(path)
        plan = reader.execute(f"EXPLAIN QUERY PLAN SELECT doc FROM jobs WHERE {where}", params)
        assert "jobs:index:name" in " ".join(str(row) for row in plan.fetchall())
        reader.close()
        assert [d["id"] for d in await jobs.find({"name": "first"})] == ["j"]
    finally:
        await store.close()


async def test_an_earlier_index_another_process_rebuilt_first_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two services on one database file start together: the other drops the earlier index
    # between this one's look at it and its own drop.
    path = tmp_path / "state.db"
    store = await SqliteStateStore.open(path)
    try:
        jobs = store.collection("jobs")
        await jobs.insert({"id": "j", "name": "first"})
        await store.write("jobs", """CREATE INDEX "jobs:index:name" ON "jobs" (id)""")
        read = store.read

        async def raced(collection: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
            rows = await read(collection, sql, params)
            if sql.startswith("SELECT sql FROM sqlite_master"):
                other = sqlite3.connect(path)
                other.execute('DROP INDEX "jobs:index:name"')
                other.commit()
                other.close()
            return rows

        monkeypatch.setattr(store, "read", raced)
        await jobs.ensure_index(["name"])
        monkeypatch.undo()
        (sql,) = await store.read(
            "jobs", "SELECT sql FROM sqlite_master WHERE name = ?", ("jobs:index:name",)
        )
        assert "json_type" in sql[0]
    finally:
        await store.close()


async def test_unique_indexes_keep_json_types_apart(tmp_path: Path) -> None:
    # mongomock (not MongoDB) treats true as 1 here, so this case lives outside the contract suite.
    store = await SqliteStateStore.open(tmp_path / "state.db")
    try:
        values = store.collection("values")
        await values.ensure_index(["v"], unique=True)
        for i, value in enumerate([1, True, "1", None, {"a": 1}, [1], "true", "null", False, 0]):
            await values.insert({"id": f"v{i}", "v": value})
        for clash in [1.0, True, "1", None, {"a": 1}, [1], False, 0.0]:
            with pytest.raises(Conflict, match="'v'"):
                await values.insert({"id": "again", "v": clash})
    finally:
        await store.close()


async def test_opening_an_impossible_path_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="cannot be opened"):
        await SqliteStateStore.open(tmp_path / "missing" / "state.db")
    (tmp_path / "folder.db").mkdir()
    with pytest.raises(Unavailable, match="cannot be opened"):
        await SqliteStateStore.open(tmp_path / "folder.db")
