"""Fixtures of the bus contract suite: buses of each adapter, the NATS ones on the module's
nats-server (the integration tests' shared `nats_server`).

`connect` is parametrized over both adapters: a test written against it runs once with
`NatsBus` (real nats-server on a free port) and once with `MemoryBus`; every bus it makes is
closed at teardown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aorta.bus import BusOptions
from aorta.ids import new_id
from aorta.testing.nats import BusFactory

# Small limits keep the suite fast and make flow control and redelivery observable.
OPTIONS = BusOptions(
    stream_window=8,
    stream_credit_timeout=10.0,
    drain_timeout=1.0,
    event_max_deliver=3,
    event_ack_wait=5.0,
)


@pytest.fixture(params=["nats", "memory"])
async def connect(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    url = request.getfixturevalue("nats_server").url if request.param == "nats" else None
    factory = BusFactory(url, options=OPTIONS)
    yield factory
    await factory.close_all()
    # Cancelled tasks need a few turns of the loop to finish.
    for _ in range(5):
        await asyncio.sleep(0)
    left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert not left, f"tasks left behind after close: {left}"


@pytest.fixture
def subject() -> str:
    """A subject no other test uses (the server and its event stream live for a module)."""
    return f"aorta.test.{new_id()}"


@pytest.fixture
def entity() -> str:
    """An event entity kind no other test uses, so event filters see only this test's events."""
    return f"e{new_id()[:12]}"
