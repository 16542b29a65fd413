"""A monitor's `ServiceContext` over an in-process bus, with the real SQLite and folder stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.bus import BusOptions
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.runtime.service import ServiceContext, service_context
from aorta.settings import Settings

RPC_TIMEOUT = 5.0


@pytest.fixture
def network() -> MemoryNetwork:
    return MemoryNetwork()


@pytest.fixture
async def client(network: MemoryNetwork) -> AsyncIterator[MemoryBus]:
    """A bus beside the monitor's, as the gateway or another service would hold."""
    bus = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    yield bus
    await bus.close()


@pytest.fixture
async def context(network: MemoryNetwork, tmp_path: Path) -> AsyncIterator[ServiceContext]:
    settings = Settings.from_env(
        {"AORTA_DATA_DIR": str(tmp_path), "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT)}
    )
    bus = MemoryBus(network, default_timeout=RPC_TIMEOUT, options=BusOptions(drain_timeout=2.0))
    async with service_context(settings, bus) as context:
        yield context
        await bus.close()
