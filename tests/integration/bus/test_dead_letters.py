"""Bus contract: an event its consumer keeps failing is kept as a dead letter with the reason,
for durable and ephemeral consumers alike, and the events after it still arrive."""

from __future__ import annotations

from aorta.bus import CloudEvent, make_event
from aorta.bus.dead_letters import EPHEMERAL
from aorta.testing.nats import BusFactory
from tests.integration.bus.test_bus_events import Inbox


def event(entity: str, n: str) -> CloudEvent:
    return make_event("tests", entity, "x1", "happened", {"n": n})


async def test_a_consumer_that_always_fails_leaves_its_events_as_dead_letters(
    connect: BusFactory, entity: str
) -> None:
    bus = await connect("bus")
    durable = f"d{entity}"
    inbox = Inbox(fail=lambda event, attempt: event.data["n"] != "fine")
    await bus.subscribe_events(f"aorta.events.{entity}.>", inbox, durable=durable)
    poisons = [event(entity, "poison-1"), event(entity, "poison-2")]
    for poison in poisons:
        await bus.publish_event(poison)
    await bus.publish_event(event(entity, "fine"))

    letters = await connect.dead_letters(durable, 2)

    limit = connect.options.event_max_deliver
    assert sorted(letter.event.id for letter in letters) == sorted(p.id for p in poisons)
    for letter in letters:
        assert letter.consumer == durable
        assert letter.attempts == limit
        assert letter.reason == f"RuntimeError: handler fails on attempt {limit}"
        assert letter.event.data == next(p.data for p in poisons if p.id == letter.event.id)
    await inbox.received(1)
    assert [e.data["n"] for e in inbox.events] == ["fine"]


async def test_an_ephemeral_consumer_dead_letters_under_its_own_name(
    connect: BusFactory, entity: str
) -> None:
    bus = await connect("bus")
    inbox = Inbox(fail=lambda event, attempt: True)
    await bus.subscribe_events(f"aorta.events.{entity}.>", inbox)
    poison = event(entity, "poison")
    await bus.publish_event(poison)

    letters = await connect.dead_letters(EPHEMERAL, 1)

    assert poison.id in [letter.event.id for letter in letters]
