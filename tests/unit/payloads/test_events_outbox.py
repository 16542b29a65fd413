"""Payload events are at least once: with the event stream away, or the service killed between
its store write and its publish, every change still ends with its event on the bus once a
replay runs (as a restarted service's does), each event id arriving as one event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.errors import AortaError
from aorta.outbox import APART_COLLECTION, OUTBOX_FIELD, Outbox
from aorta.runtime.service import ServiceContext, service_context
from aorta.settings import Settings
from aorta_services.payloads import app
from tests.unit.event_outage import Collected, Mode, OutageBus
from tests.unit.payloads.payload_calls import JOB, RPC_TIMEOUT, Calls

EVENTS = ["created", "file.added", "file.removed", "deleted"]


@pytest.fixture
async def outage(tmp_path: Path) -> AsyncIterator[tuple[OutageBus, ServiceContext, Calls]]:
    network = MemoryNetwork()
    settings = Settings.from_env(
        {"AORTA_DATA_DIR": str(tmp_path), "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT)}
    )
    bus = OutageBus(network, default_timeout=RPC_TIMEOUT)
    client = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    async with service_context(settings, bus) as context:
        running = await app.start(context)
        yield bus, context, Calls(client, context.blobs, context.store, [])
        await running.stop(1.0)
        await client.close()
        await bus.close()


async def replayed(bus: OutageBus, context: ServiceContext) -> None:
    """What a restarted replica does first: publish what its outbox left."""
    restarted = Outbox(bus, context.store, service="payloads", grace=0)
    await restarted.watch(context.store.collection("payloads"))
    await restarted.replay()


async def test_every_event_arrives_once_the_bus_is_back(
    outage: tuple[OutageBus, ServiceContext, Calls],
) -> None:
    bus, context, calls = outage
    collected = Collected()
    await calls.bus.subscribe_events("aorta.events.payload.>", collected, deliver="all")
    bus.mode = "down"
    payload_id = await calls.create()
    await calls.upload(payload_id, "scan.dcm", b"dicom")
    await calls.remove(payload_id, "/input/scan.dcm")
    await calls.delete(payload_id)
    assert collected.received == []

    bus.mode = "up"
    await replayed(bus, context)

    assert sorted(await collected.types(EVENTS)) == sorted(EVENTS)
    assert await context.store.collection(APART_COLLECTION).count() == 0


async def test_a_service_killed_between_write_and_publish_leaves_no_event_behind(
    outage: tuple[OutageBus, ServiceContext, Calls],
) -> None:
    bus, context, calls = outage
    collected = Collected()
    await calls.bus.subscribe_events("aorta.events.payload.>", collected, deliver="all")
    bus.mode = "kill"
    # Killed after its write, Create answers no id: the payload is found in the store.
    with pytest.raises(AortaError):
        await calls.create()
    [document] = await context.store.collection("payloads").find()
    payload_id = document["id"]
    with pytest.raises(AortaError):
        await calls.upload(payload_id, "scan.dcm", b"dicom")
    with pytest.raises(AortaError):
        await calls.remove(payload_id, "/input/scan.dcm")
    with pytest.raises(AortaError):
        await calls.delete(payload_id)

    bus.mode = "up"
    await replayed(bus, context)

    assert sorted(await collected.types(EVENTS)) == sorted(EVENTS)
    assert await context.store.collection("payloads").count() == 0


JOB_EVENTS = ["created", "locked", "released"]


@pytest.mark.parametrize("mode", ["down", "kill"])
async def test_a_jobs_lock_and_release_leave_no_event_behind(
    outage: tuple[OutageBus, ServiceContext, Calls], mode: Mode
) -> None:
    """A job's payload leaves each event's removal to its next change: an outage or a kill
    between a write and its publish still ends with every event published."""
    bus, context, calls = outage
    collected = Collected()
    await calls.bus.subscribe_events("aorta.events.payload.>", collected, deliver="all")
    bus.mode = mode
    if mode == "down":
        payload_id = await calls.for_job(JOB, [])
        await calls.lock(payload_id)
        await calls.release(payload_id)
    else:
        with pytest.raises(AortaError):
            await calls.for_job(JOB, [])
        [document] = await context.store.collection("payloads").find()
        payload_id = document["id"]
        for change in (calls.lock, calls.release):
            with pytest.raises(AortaError):
                await change(payload_id)
    assert collected.received == []

    bus.mode = "up"
    await replayed(bus, context)

    assert await collected.types(JOB_EVENTS) == JOB_EVENTS
    stored = await context.store.collection("payloads").get(payload_id)
    assert stored[OUTBOX_FIELD] == [] and stored["in_use_by_job"] is None
