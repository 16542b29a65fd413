"""`aorta.outbox`: an event published and left staged for the document's next write
(`flush(..., later=True)`) is published once, removed by that write or by a replay after
`LEAVE_SECONDS`, published again only by an outbox that does not know it went out (a restarted
service: at least once), and not carried into an event staged apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.bus import CloudEvent, make_event
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.errors import Invalid
from aorta.outbox import LEAVE_SECONDS, OUTBOX_FIELD, PENDING_FIELD, Outbox, staged, staging
from aorta.settings import Settings
from aorta.store import Collection, Document, StateStore, modify_document
from aorta.store.factory import open_state_store
from tests.unit.event_outage import Collected
from tests.unit.test_outbox import Clock


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    opened = await open_state_store(Settings.from_env({"AORTA_DATA_DIR": str(tmp_path)}))
    yield opened
    await opened.close()


def event(name: str) -> CloudEvent:
    return make_event("tests", "thing", "t1", name, {"n": name})


async def outbox_on(
    store: StateStore, network: MemoryNetwork, clock: Clock
) -> tuple[Outbox, MemoryBus]:
    bus = MemoryBus(network)
    outbox = Outbox(bus, store, service="tests", clock=clock)
    await outbox.watch(store.collection("things"))
    return outbox, bus


async def collecting(network: MemoryNetwork) -> tuple[MemoryBus, Collected]:
    bus = MemoryBus(network)
    collected = Collected()
    await bus.subscribe_events("aorta.events.thing.>", collected)
    return bus, collected


async def change(things: Collection, name: str, published: frozenset[str]) -> Document:
    return await modify_document(
        things,
        "t1",
        staging(
            lambda document: {**document, "n": name}, lambda _: event(name), published=published
        ),
        missing=lambda: Invalid("gone"),
        gave_up=lambda: Invalid("busy"),
    )


def staged_types(document: Document) -> list[str]:
    return [e["type"].rsplit(".", 1)[1] for e in document[OUTBOX_FIELD]]


async def test_the_next_write_removes_what_was_left_and_nothing_is_published_twice(
    store: StateStore,
) -> None:
    network = MemoryNetwork()
    outbox, bus = await outbox_on(store, network, Clock())
    listener, collected = await collecting(network)
    things = store.collection("things")
    created = await things.insert(staged({"id": "t1"}, event("created")))

    assert await outbox.flush(things, created, later=True)
    assert staged_types(await things.get("t1")) == ["created"]  # no removal written
    left = outbox.left(things, "t1")
    assert left == {created[OUTBOX_FIELD][0]["id"]}

    locked = await change(things, "locked", left)
    outbox.removed(things, "t1", left)
    assert staged_types(locked) == ["locked"]
    assert await outbox.flush(things, locked, later=True)
    released = await change(things, "released", outbox.left(things, "t1"))
    outbox.removed(things, "t1", outbox.left(things, "t1"))
    assert await outbox.flush(things, released)

    stored = await things.get("t1")
    assert stored[OUTBOX_FIELD] == [] and stored[PENDING_FIELD] is False
    assert stored["version"] == 4  # insert, two changes, one removal
    assert await collected.types(["created", "locked", "released"])
    assert [e.event for e in collected.received] == ["created", "locked", "released"]
    assert outbox.left(things, "t1") == frozenset()
    await listener.close()
    await bus.close()


async def test_a_replay_removes_what_was_left_only_after_leave_seconds(store: StateStore) -> None:
    network = MemoryNetwork()
    clock = Clock()
    outbox, bus = await outbox_on(store, network, clock)
    listener, collected = await collecting(network)
    things = store.collection("things")
    await outbox.flush(
        things, await things.insert(staged({"id": "t1"}, event("created"))), later=True
    )

    await outbox.replay()
    assert (await things.get("t1"))["version"] == 1  # left for the next write

    clock.later(LEAVE_SECONDS + 1)
    await outbox.replay()
    assert (await things.get("t1"))[OUTBOX_FIELD] == []
    assert [e.event for e in collected.received] == ["created"]
    await listener.close()
    await bus.close()


async def test_a_restarted_service_publishes_what_was_left_again(store: StateStore) -> None:
    network = MemoryNetwork()
    outbox, bus = await outbox_on(store, network, Clock())
    things = store.collection("things")
    created = await things.insert(staged({"id": "t1"}, event("created")))
    await outbox.flush(things, created, later=True)
    await bus.close()

    # Its memory gone, a new outbox cannot know the event went out: at least once.
    elsewhere = MemoryNetwork()
    restarted, restarted_bus = await outbox_on(store, elsewhere, Clock())
    listener, collected = await collecting(elsewhere)
    await restarted.replay()

    assert [e.id for e in collected.received] == [created[OUTBOX_FIELD][0]["id"]]
    assert (await things.get("t1"))[OUTBOX_FIELD] == []
    await listener.close()
    await restarted_bus.close()


async def test_an_event_staged_apart_carries_no_event_published_already(store: StateStore) -> None:
    network = MemoryNetwork()
    clock = Clock()
    outbox, bus = await outbox_on(store, network, clock)
    things = store.collection("things")
    created = await things.insert(staged({"id": "t1"}, event("created")))
    await outbox.flush(things, created, later=True)

    entry = await outbox.stage_apart(event("deleted"), things, "t1", await things.get("t1"))
    await things.delete("t1")

    assert [e["type"] for e in entry["events"]] == ["org.aorta.thing.deleted"]
    # What the document no longer holds is forgotten after a while: the memory is bounded.
    clock.later(2 * LEAVE_SECONDS + 1)
    await outbox.replay()
    assert outbox.left(things, "t1") == frozenset()
    await bus.close()
