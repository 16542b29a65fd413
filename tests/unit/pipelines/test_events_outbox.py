"""Pipeline events are at least once: with the event stream away, or the service killed
between its store write and its publish, every change still ends with its event on the bus
once a replay runs (as a restarted service's does), each event id arriving as one event."""

from __future__ import annotations

import contextlib

import pytest

from aorta import contracts, subjects
from aorta.api import common_pb2, pipelines_pb2
from aorta.bus import Request
from aorta.bus.memory import MemoryNetwork
from aorta.outbox import APART_COLLECTION, Outbox
from aorta.runtime.service import ServiceContext
from aorta_services.pipelines.handlers import PipelineHandlers
from aorta_services.pipelines.repository import PipelineRepository
from tests.unit.event_outage import Collected, Killed, Mode, OutageBus

EVENTS = ["created", "updated", "updated", "removed"]


@pytest.mark.parametrize("mode", ["down", "kill"])
async def test_every_event_arrives_once_the_bus_is_back(
    context: ServiceContext, two_operators: str, mode: Mode
) -> None:
    network = MemoryNetwork()
    bus = OutageBus(network, default_timeout=5.0)
    repository = PipelineRepository(context.store)
    handlers = PipelineHandlers(repository, Outbox(bus, context.store, service="pipelines"))
    collected = Collected()
    await bus.subscribe_events("aorta.events.pipeline.>", collected)
    files = (contracts.PipelineFile("p.yml", two_operators),)
    bus.mode = mode
    # A killed call raises where it would have published; its change is stored.
    with contextlib.suppress(Killed):
        await handlers.create(contracts.CreatePipeline(files=files))
    [document] = await repository.collection.find()
    identifier = common_pb2.Identifier(value=document["id"])
    with contextlib.suppress(Killed):
        await handlers.update(contracts.UpdatePipeline(document["id"], files))
    added = pipelines_pb2.PipelinesAddMetadataRequest(pipeline_id=identifier, metadata={"k": "v"})
    with contextlib.suppress(Killed):
        await handlers.add_metadata(
            Request(subjects.PIPELINES_ADD_METADATA, added.SerializeToString())
        )
    removed = pipelines_pb2.PipelinesRemoveRequest(pipeline_id=identifier)
    with contextlib.suppress(Killed):
        await handlers.remove(Request(subjects.PIPELINES_REMOVE, removed.SerializeToString()))
    assert collected.received == []

    bus.mode = "up"
    restarted = Outbox(bus, context.store, service="pipelines", grace=0)
    await restarted.watch(repository.collection)
    await restarted.replay()

    assert sorted(await collected.types(EVENTS)) == sorted(EVENTS)
    assert await context.store.collection(APART_COLLECTION).count() == 0
    await bus.close()
