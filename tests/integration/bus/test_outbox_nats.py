"""At least once across a real nats-server outage: a change made while the server is down is
stored with its event, and the service's periodic replay publishes it once the server is back
(same port, same JetStream store), to a durable consumer that was there before."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aorta import contracts
from aorta.bus.nats import NatsBus
from aorta.outbox import Outbox
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.nats import async_nats_server
from aorta_services.pipelines.handlers import PipelineHandlers
from aorta_services.pipelines.repository import PipelineRepository
from tests.unit.event_outage import Collected

PIPELINE = """\
api-version: 0.4.0
name: one-operator
operators:
- name: only
  container: {image: example/only, tag: latest}
"""


async def test_an_event_staged_while_nats_is_down_arrives_after_it_restarts(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({"AORTA_DATA_DIR": str(tmp_path / "data")})
    async with async_nats_server(tmp_path / "nats") as server:
        reader = await NatsBus.connect(server.url, name="reader", default_timeout=2.0)
        writer = await NatsBus.connect(server.url, name="pipelines", default_timeout=1.0)
        collected = Collected()
        await reader.subscribe_events(
            "aorta.events.pipeline.>", collected, durable="integration", deliver="all"
        )
        async with service_context(settings, writer) as context:
            repository = PipelineRepository(context.store)
            outbox = Outbox(writer, context.store, service="pipelines")
            await outbox.watch(repository.collection)
            handlers = PipelineHandlers(repository, outbox)

            await server.astop()
            files = (contracts.PipelineFile("p.yml", PIPELINE),)
            reply = await handlers.create(contracts.CreatePipeline(files=files))
            assert collected.received == []

            await server.astart()
            stopped = asyncio.Event()
            replaying = asyncio.create_task(outbox.run(stopped, interval=0.2))
            try:
                assert await collected.types(["created"]) == ["created"]
            finally:
                stopped.set()
                await replaying
        [event] = collected.unique.values()
        assert event.subject == reply.pipeline_id.value
        await writer.close()
        await reader.close()
