"""The payloads service over the in-process bus, with real SQLite and a local blob folder
(`tests.unit.memory_services`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aorta.bus import CloudEvent
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.runtime.service import RunningService, ServiceContext
from aorta_services.payloads import app
from tests.unit.memory_services import (  # noqa: F401  (the fixtures)
    bus_options_fixture,
    context_fixture,
    network_fixture,
)
from tests.unit.payloads.payload_calls import RPC_TIMEOUT, Calls


@pytest.fixture
async def service(context: ServiceContext) -> AsyncIterator[RunningService]:
    running = await app.start(context)
    yield running
    await running.stop(1.0)


@pytest.fixture
async def calls(
    network: MemoryNetwork, context: ServiceContext, service: RunningService
) -> AsyncIterator[Calls]:
    """A bus beside the service's, as the gateway or the scheduler hold, with the events the
    service published."""
    bus = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    events: list[CloudEvent] = []

    async def collect(event: CloudEvent) -> None:
        events.append(event)

    await bus.subscribe_events("aorta.events.payload.>", collect, deliver="all")
    yield Calls(bus, context.blobs, context.store, events)
    await bus.close()
