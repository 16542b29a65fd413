"""The pipelines service over the in-process bus, with a real SQLite store in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.runtime.service import RunningService, ServiceContext, service_context
from aorta.settings import Settings
from aorta_services.pipelines import app

RPC_TIMEOUT = 5.0


@pytest.fixture
def network() -> MemoryNetwork:
    return MemoryNetwork()


@pytest.fixture
async def client(network: MemoryNetwork) -> AsyncIterator[MemoryBus]:
    """A bus beside the service's, as the gateway or the scheduler would hold."""
    bus = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    yield bus
    await bus.close()


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


TWO_OPERATORS = """\
api-version: 0.4.0
name: two-operators
orchestrator: Clara
operators:
- name: operator1
  container: {image: example/operator1, tag: latest}
  input:
  - path: /pipeline_input
  output:
  - name: segmentation-output
    path: /output
- name: operator2
  container: {image: example/operator2, tag: latest}
  input:
  - from: operator1
    name: segmentation-output
    path: /input
  output:
  - name: final-output
    path: /output
"""


@pytest.fixture
def two_operators() -> str:
    """Clara's two-operator example (docs/clara-compatibility.md, "The pipeline driver
    life-cycle")."""
    return TWO_OPERATORS
