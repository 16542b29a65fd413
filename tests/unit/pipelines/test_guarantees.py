"""Guarantees of the pipelines handlers, called directly with stand-in buses: events only
after the store write, an event the bus does not take never fails a stored change and is
published by the outbox's replay once the bus is back, and answers that could not cross the
bus are refused before anything is written."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from aorta import contracts, subjects
from aorta.api import common_pb2, pipelines_pb2
from aorta.bus import Bus, CloudEvent, Request
from aorta.bus.memory import MemoryBus
from aorta.errors import AortaError, ErrorCode, Unavailable
from aorta.ids import PipelineId
from aorta.outbox import APART_COLLECTION, Outbox
from aorta.runtime.service import ServiceContext
from aorta_services.pipelines.handlers import PipelineHandlers
from aorta_services.pipelines.repository import PipelineRepository


def create_command(text: str) -> contracts.CreatePipeline:
    return contracts.CreatePipeline(files=(contracts.PipelineFile("p.yml", text),))


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


class _StoreProbe(MemoryBus):
    """Records, at each publication, what the store holds about the event's pipeline."""

    def __init__(self, repository: PipelineRepository) -> None:
        super().__init__()
        self.repository = repository
        self.states: list[tuple[str, Any]] = []

    async def publish_event(self, event: CloudEvent) -> None:
        try:
            record = await self.repository.get(PipelineId(event.subject))
            state: Any = dict(record.metadata)
        except AortaError:
            state = None
        self.states.append((event.event, state))
        await super().publish_event(event)


async def test_events_are_published_after_the_store_write(
    context: ServiceContext, two_operators: str
) -> None:
    repository = PipelineRepository(context.store)
    bus = _StoreProbe(repository)
    handlers = PipelineHandlers(repository, _outbox(bus, context))
    reply = await handlers.create(create_command(two_operators))
    pipeline_id = ident(reply.pipeline_id.value)
    added = pipelines_pb2.PipelinesAddMetadataRequest(pipeline_id=pipeline_id, metadata={"k": "v"})
    await handlers.add_metadata(Request(subjects.PIPELINES_ADD_METADATA, added.SerializeToString()))
    removed = pipelines_pb2.PipelinesRemoveRequest(pipeline_id=pipeline_id)
    await handlers.remove(Request(subjects.PIPELINES_REMOVE, removed.SerializeToString()))
    await bus.close()
    assert bus.states == [("created", {}), ("updated", {"k": "v"}), ("removed", None)]


async def test_answers_that_would_not_fit_one_message_are_refused_before_writing(
    context: ServiceContext, two_operators: str
) -> None:
    repository = PipelineRepository(context.store)
    handlers = PipelineHandlers(repository, _outbox(context.bus, context), answer_limit=2000)
    big = two_operators + "#" * 2000 + "\n"
    with pytest.raises(AortaError) as caught:
        await handlers.create(create_command(big))
    assert caught.value.code == ErrorCode.PIPELINE_DEFINITION_ERROR
    assert "2000 bytes" in caught.value.messages[0]
    reply = await handlers.create(create_command(two_operators))
    pipeline_id = reply.pipeline_id.value
    request = pipelines_pb2.PipelinesAddMetadataRequest(
        pipeline_id=ident(pipeline_id), metadata={f"key{i}": "v" * 200 for i in range(10)}
    )
    with pytest.raises(AortaError) as caught:
        await handlers.add_metadata(
            Request(subjects.PIPELINES_ADD_METADATA, request.SerializeToString())
        )
    assert caught.value.code == ErrorCode.METADATA_INVALID
    assert (await repository.get(PipelineId(pipeline_id))).metadata == {}


def _outbox(bus: Bus, context: ServiceContext) -> Outbox:
    return Outbox(bus, context.store, service="pipelines")


class _Outage(MemoryBus):
    """A bus whose event stream is away until `back` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.back = False

    async def publish_event(self, event: CloudEvent) -> None:
        if not self.back:
            raise Unavailable("no event stream")
        await super().publish_event(event)


async def test_an_event_the_bus_refuses_is_published_by_the_replay(
    context: ServiceContext, two_operators: str
) -> None:
    repository = PipelineRepository(context.store)
    bus = _Outage()
    # Judged at once: the test's writer is done when the replay runs.
    outbox = Outbox(bus, context.store, service="pipelines", grace=0)
    await outbox.watch(repository.collection)
    handlers = PipelineHandlers(repository, outbox)
    received: list[CloudEvent] = []
    delivered = asyncio.Event()

    async def collect(event: CloudEvent) -> None:
        received.append(event)
        if event.event == "removed":
            delivered.set()

    subscription = await bus.subscribe_events("aorta.events.pipeline.>", collect)
    with capture_logs() as logs:
        reply = await handlers.create(create_command(two_operators))
        pipeline_id = ident(reply.pipeline_id.value)
        removed = pipelines_pb2.PipelinesRemoveRequest(pipeline_id=pipeline_id)
        await handlers.remove(Request(subjects.PIPELINES_REMOVE, removed.SerializeToString()))
    assert [e["event"] for e in logs if e["event"] == "outbox.event_delayed"] != []
    bus.back = True
    await outbox.replay()
    await delivered.wait()
    await subscription.drain()
    await bus.close()
    assert [event.event for event in received] == ["created", "removed"]
    assert await context.store.collection(APART_COLLECTION).count() == 0
