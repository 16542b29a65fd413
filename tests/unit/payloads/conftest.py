"""The payloads service over the in-process bus, with real SQLite and a local blob folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.bus import CloudEvent
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.runtime.service import RunningService, ServiceContext, service_context
from aorta.settings import Settings
from aorta_services.payloads import app
from tests.unit.payloads.payload_calls import RPC_TIMEOUT, Calls


@pytest.fixture
def network() -> MemoryNetwork:
    return MemoryNetwork()


@pytest.fixture
async def context(network: MemoryNetwork, tmp_path: Path) -> AsyncIterator[ServiceContext]:
    settings = Settings.from_env(
        {"AORTA_DATA_DIR": str(tmp_path), "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT)}
    )
    bus = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    async with service_context(settings, bus) as context:
        yield context
        await bus.close()


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
