"""The `harness` fixture: scheduler replicas over the in-process bus (`scheduler_harness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aorta.bus.memory import MemoryBus, MemoryNetwork
from tests.unit.scheduler.scheduler_fakes import FakePeers
from tests.unit.scheduler.scheduler_harness import RPC_TIMEOUT, Harness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    network = MemoryNetwork()
    client = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    peers = FakePeers()
    await peers.serve(client)
    made = Harness(network, tmp_path, client, peers)
    yield made
    await made.close()
    await peers.stop()
    await client.close()
