"""Fixtures of the unit tests of a service: the in-process bus it serves on, a client bus
beside it, and its `ServiceContext` with the real SQLite store and local blob folder in the
test's tmp_path.

A service's conftest imports the fixtures it uses and those they use (`network_fixture` is
`network`, and so on); one that needs other bus options overrides `bus_options`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.bus import BusOptions
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.runtime.service import ServiceContext, service_context
from aorta.settings import Settings

RPC_TIMEOUT = 60.0
"""Seconds a call on the in-memory bus may take before it is named unanswered: a bound for
failing only, so a busy machine never makes an answered call time out."""


@pytest.fixture(name="network")
def network_fixture() -> MemoryNetwork:
    return MemoryNetwork()


@pytest.fixture(name="bus_options")
def bus_options_fixture() -> BusOptions:
    """The options of the service's own bus."""
    return BusOptions()


@pytest.fixture(name="client")
async def client_fixture(network: MemoryNetwork) -> AsyncIterator[MemoryBus]:
    """A bus beside the service's, as the gateway or another service would hold."""
    bus = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    yield bus
    await bus.close()


@pytest.fixture(name="context")
async def context_fixture(
    network: MemoryNetwork, bus_options: BusOptions, tmp_path: Path
) -> AsyncIterator[ServiceContext]:
    settings = Settings.from_env(
        {"AORTA_DATA_DIR": str(tmp_path), "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT)}
    )
    bus = MemoryBus(network, default_timeout=RPC_TIMEOUT, options=bus_options)
    async with service_context(settings, bus) as context:
        yield context
        await bus.close()
