"""`aorta.outbox`: events staged in the changed document go out exactly when the change was
stored; events staged apart are left to their writer for the grace, then published when the
document changed after them and discarded when it did not (the writer died before its
change)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aorta.bus import CloudEvent, make_event
from aorta.bus.memory import MemoryBus
from aorta.errors import Invalid
from aorta.outbox import APART_COLLECTION, APART_GRACE, OUTBOX_FIELD, Outbox, staged, staging
from aorta.settings import Settings
from aorta.store import StateStore, modify_document
from aorta.store.factory import open_state_store
from aorta.timestamps import utcnow
from tests.unit.event_outage import Collected

START = utcnow()


class Clock:
    def __init__(self) -> None:
        self.now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    opened = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    yield opened
    await opened.close()


def event(name: str) -> CloudEvent:
    return make_event("tests", "thing", "t1", name, {"n": name})


async def started(store: StateStore, clock: Clock) -> tuple[Outbox, MemoryBus, Collected]:
    bus = MemoryBus()
    collected = Collected()
    await bus.subscribe_events("aorta.events.thing.>", collected)
    outbox = Outbox(bus, store, service="tests", clock=clock)
    await outbox.watch(store.collection("things"))
    return outbox, bus, collected


async def test_a_change_that_refuses_stages_nothing(store: StateStore) -> None:
    things = store.collection("things")
    await things.insert(staged({"id": "t1", "n": 0}, event("created")))

    def refuse(document: dict[str, object]) -> dict[str, object]:
        raise Invalid("refused")

    with pytest.raises(Invalid):
        await modify_document(
            things,
            "t1",
            staging(refuse, lambda document: event("updated")),
            missing=lambda: Invalid("gone"),
            gave_up=lambda: Invalid("busy"),
        )
    assert [e["type"] for e in (await things.get("t1"))[OUTBOX_FIELD]] == [
        "org.aorta.thing.created"
    ]


async def test_a_deletion_whose_writer_died_after_it_is_published_after_the_grace(
    store: StateStore,
) -> None:
    clock = Clock()
    outbox, bus, collected = await started(store, clock)
    things = store.collection("things")
    document = await things.insert(staged({"id": "t1"}, event("created")))
    await outbox.stage_apart(event("deleted"), things, "t1", document)
    await things.delete("t1")

    await outbox.replay()
    assert await store.collection(APART_COLLECTION).count() == 1

    clock.later(APART_GRACE + 1)
    await outbox.replay()

    assert await collected.types(["created", "deleted"]) == ["created", "deleted"]
    assert await store.collection(APART_COLLECTION).count() == 0
    await bus.close()


async def test_a_deletion_whose_writer_died_before_it_is_discarded(store: StateStore) -> None:
    clock = Clock()
    outbox, bus, collected = await started(store, clock)
    things = store.collection("things")
    document = await things.insert({"id": "t1"})
    await outbox.stage_apart(event("deleted"), things, "t1", document)

    clock.later(APART_GRACE + 1)
    await outbox.replay()

    assert await store.collection(APART_COLLECTION).count() == 0
    assert await things.count() == 1
    await bus.publish_event(event("marker"))
    assert await collected.types(["marker"]) == ["marker"]
    await bus.close()


async def test_a_record_written_then_removed_keeps_both_events(store: StateStore) -> None:
    clock = Clock()
    outbox, bus, collected = await started(store, clock)
    files = store.collection("files")
    await outbox.stage_apart(event("added"), files, "f1", None)
    written = await files.insert({"id": "f1"})
    clock.later(0.001)
    await outbox.stage_apart(event("removed"), files, "f1", written)
    await files.delete("f1")

    clock.later(APART_GRACE + 1)
    await outbox.replay()

    assert await collected.types(["added", "removed"]) == ["added", "removed"]
    await bus.close()


async def test_a_flush_removes_from_the_stored_copy_it_was_given_and_reads_again_after_a_race(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox, bus, collected = await started(store, Clock())
    things = store.collection("things")
    stored = await things.insert(staged({"id": "t1", "n": 0}, event("created")))
    reads: list[str] = []
    get = type(things).get

    async def counted(self: Any, id: str) -> Any:
        reads.append(id)
        return await get(self, id)

    monkeypatch.setattr(type(things), "get", counted)
    assert await outbox.flush(things, stored)
    assert reads == []
    assert (await things.get("t1"))[OUTBOX_FIELD] == []

    # A copy another write overtook: the removal is made again on the document read afresh,
    # keeping what that write staged.
    reads.clear()
    second = await things.insert(staged({"id": "t2", "n": 0}, event("first")))
    await modify_document(
        things,
        "t2",
        staging(lambda document: {**document, "n": 1}, lambda document: event("second")),
        missing=lambda: Invalid("gone"),
        gave_up=lambda: Invalid("busy"),
    )
    reads.clear()
    assert await outbox.flush(things, second)
    assert reads  # the lost race, then the fresh read
    assert [e["type"] for e in (await things.get("t2"))[OUTBOX_FIELD]] == ["org.aorta.thing.second"]
    assert await collected.types(["created", "first"]) == ["created", "first"]
    await bus.close()
