"""Bus contract: an event its consumer keeps failing is kept as a dead letter with the reason,
for durable and ephemeral consumers alike, and the events after it still arrive; each dead
letter is counted once, and one that could not be stored is counted as such and stored later."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
import pytest
from prometheus_client import REGISTRY

from aorta.bus import BusOptions, CloudEvent, make_event
from aorta.bus.dead_letters import DEAD_LETTER_STREAM, EPHEMERAL
from aorta.bus.nats_server import NatsServerProcess
from aorta.observability import metrics
from aorta.testing.nats import BusFactory
from tests.integration.bus.test_bus_events import Inbox


@pytest.fixture(autouse=True)
def recording() -> None:
    """Metrics fed, whatever a test before this one turned off."""
    metrics.set_recording(True)


def event(entity: str, n: str) -> CloudEvent:
    return make_event("tests", entity, "x1", "happened", {"n": n})


def stored(consumer: str, entity: str) -> float:
    """`aorta_dead_letters_total` of this consumer and entity now."""
    labels = {"consumer": consumer, "entity": entity}
    return REGISTRY.get_sample_value("aorta_dead_letters_total", labels) or 0.0


def not_stored(consumer: str) -> float:
    """`aorta_dead_letter_failures_total` of this consumer now."""
    labels = {"consumer": consumer}
    return REGISTRY.get_sample_value("aorta_dead_letter_failures_total", labels) or 0.0


async def counted(count: float, figure: Callable[[], float]) -> None:
    """Waits (up to 30 s) until `figure()` reaches `count`: NATS acknowledges a stored dead
    letter to its consumer after a reader of the stream may already see it."""
    async with asyncio.timeout(30.0):
        while figure() < count:  # noqa: ASYNC110 (a metric has no event to wait on)
            await asyncio.sleep(0.01)


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
    await counted(2, lambda: stored(durable, entity))
    assert stored(durable, entity) == 2
    assert not_stored(durable) == 0


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


async def test_a_dead_letter_the_stream_refuses_is_counted_and_stored_later(
    nats_server: NatsServerProcess, entity: str
) -> None:
    connect = BusFactory(nats_server.url, options=BusOptions(event_max_deliver=1))
    try:
        bus = await connect("bus")
        durable = f"d{entity}"
        await bus.subscribe_events(
            f"aorta.events.{entity}.>", Inbox(fail=lambda event, attempt: True), durable=durable
        )
        admin = await nats.connect(nats_server.url)
        try:
            js = admin.jetstream()
            config = (await js.stream_info(DEAD_LETTER_STREAM)).config
            await js.delete_stream(DEAD_LETTER_STREAM)
            await bus.publish_event(event(entity, "poison"))
            await counted(1, lambda: not_stored(durable))
            assert stored(durable, entity) == 0
            await js.add_stream(config)
        finally:
            await admin.close()

        letters = await connect.dead_letters(durable, 1)

        assert [letter.event.data["n"] for letter in letters] == ["poison"]
        await counted(1, lambda: stored(durable, entity))
        assert stored(durable, entity) == 1
    finally:
        await connect.close_all()
