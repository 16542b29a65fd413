"""The SQLite store over its group-commit writer: collection calls made at once share
transactions, yet each keeps its own outcome, and closing lets them all finish.

Batches are made as in `test_sqlite_writer.py`: the store's writer connection gets a `gate()`
SQL function that holds the writer's thread inside a transaction until the test opens it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.errors import Conflict, Unavailable
from aorta.store.sqlite import SqliteStateStore
from tests.unit.store.test_sqlite_writer import Gate


class Gated:
    """A store whose writer can be held inside a transaction, and the SQL its writer ran."""

    def __init__(self, store: SqliteStateStore) -> None:
        self.store = store
        self.gate = Gate()
        self.statements: list[str] = []
        # The writer's thread is idle here, the one time the test touches its connection.
        connection: sqlite3.Connection = store._writer._connection
        connection.create_function("gate", 0, self.gate)
        connection.set_trace_callback(self.statements.append)

    async def hold(self) -> asyncio.Task[int]:
        """A write that holds the writer's thread until `gate.opened` is set."""
        held = asyncio.create_task(self.store.write("jobs", "SELECT gate()"))
        await self.gate.held()
        return held


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[Gated]:
    store = await SqliteStateStore.open(tmp_path / "state.db")
    await store.collection("jobs").insert({"id": "j", "n": 0})
    gated = Gated(store)
    yield gated
    gated.gate.opened.set()
    await store.close()


async def test_calls_made_at_once_keep_their_own_outcomes_in_one_commit(gated: Gated) -> None:
    jobs = gated.store.collection("jobs")
    held = await gated.hold()
    calls = [
        jobs.insert({"id": "a"}),
        jobs.insert({"id": "j"}),
        jobs.update("j", {"n": 1}, expected_version=1),
        jobs.update("j", {"n": 2}, expected_version=1),
        jobs.insert({"id": "b"}),
    ]
    tasks = [asyncio.create_task(call) for call in calls]
    await asyncio.sleep(0)
    gated.gate.opened.set()
    await held
    a, again, first, second, b = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(again, Conflict) and "already exists" in str(again)
    assert isinstance(first, dict) and first["version"] == 2 and first["n"] == 1
    # The second update saw the first one's write in the same transaction and lost the race.
    assert isinstance(second, Conflict)
    assert isinstance(a, dict) and isinstance(b, dict)
    assert gated.statements.count("COMMIT") == 2
    assert {d["id"] for d in await jobs.find()} == {"a", "b", "j"}
    assert (await jobs.get("j"))["n"] == 1


async def test_close_lets_the_queued_calls_finish(gated: Gated) -> None:
    jobs = gated.store.collection("jobs")
    held = await gated.hold()
    tasks = [asyncio.create_task(jobs.insert({"id": f"q{i}"})) for i in range(5)]
    await asyncio.sleep(0)
    closing = asyncio.create_task(gated.store.close())
    await asyncio.sleep(0)
    gated.gate.opened.set()
    await closing
    await held
    assert [(await task)["id"] for task in tasks] == [f"q{i}" for i in range(5)]
    reopened = await SqliteStateStore.open(gated.store.path)
    try:
        assert await reopened.collection("jobs").count() == 6
    finally:
        await reopened.close()


async def test_a_call_under_way_when_the_store_closes_is_refused_as_closed(gated: Gated) -> None:
    held = await gated.hold()
    # Its collection's table is made first, behind the held write; the insert comes after.
    fresh = asyncio.create_task(gated.store.collection("fresh").insert({"id": "f"}))
    await asyncio.sleep(0)
    closing = asyncio.create_task(gated.store.close())
    await asyncio.sleep(0)
    gated.gate.opened.set()
    await closing
    await held
    with pytest.raises(Unavailable, match="is closed"):
        await fresh
    with pytest.raises(Unavailable, match="is closed"):
        await gated.store.collection("jobs").insert({"id": "late"})


async def test_a_read_under_way_when_the_store_closes_is_refused_as_closed(gated: Gated) -> None:
    held = await gated.hold()
    # Its collection's table is made first, behind the held write; the query comes after,
    # once `close` has begun (and the reader connection may be closing or closed).
    fresh = asyncio.create_task(gated.store.collection("fresh").find())
    await asyncio.sleep(0)
    closing = asyncio.create_task(gated.store.close())
    await asyncio.sleep(0)
    gated.gate.opened.set()
    await closing
    await held
    with pytest.raises(Unavailable, match="is closed"):
        await fresh


async def test_every_read_after_close_is_refused_as_closed(gated: Gated) -> None:
    jobs = gated.store.collection("jobs")
    await gated.store.close()
    reads = [jobs.get("j"), jobs.find(), jobs.find_one({"n": 0}), jobs.count()]
    for read in reads:
        with pytest.raises(Unavailable, match="is closed"):
            await read
    with pytest.raises(Unavailable, match="is closed"):
        await anext(aiter(jobs.pages()))
