"""A Remove racing its payload's job's start (issue #18, "no half states"): the file goes
before the job starts, or not at all. The service's blob store holds the Remove's delete while
the scheduler's lock comes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.errors import AortaError, ErrorCode
from aorta.runtime.service import ServiceContext
from aorta_services.payloads import app
from tests.unit.payloads.payload_calls import JOB, RPC_TIMEOUT, Calls


class HeldDeletes:
    """The service's blob store, holding each delete until `go_on` is set (`held` says one
    waits)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.held = asyncio.Event()
        self.go_on = asyncio.Event()

    async def delete(self, key: str) -> None:
        self.held.set()
        await self.go_on.wait()
        await self._inner.delete(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
async def held(
    network: MemoryNetwork, context: ServiceContext
) -> AsyncIterator[tuple[Calls, HeldDeletes]]:
    deletes = HeldDeletes(context.blobs)
    running = await app.start(dataclasses.replace(context, blobs=deletes))
    bus = MemoryBus(network, default_timeout=RPC_TIMEOUT)
    yield Calls(bus, context.blobs, context.store, []), deletes
    await bus.close()
    await running.stop(1.0)


async def test_a_job_does_not_start_while_a_file_of_its_input_is_removed(
    held: tuple[Calls, HeldDeletes],
) -> None:
    calls, deletes = held
    payload_id = await calls.for_job(JOB, [])
    await calls.upload(payload_id, "scan.dcm", b"scan")
    removing = asyncio.ensure_future(calls.remove(payload_id, "/input/scan.dcm"))
    await asyncio.wait_for(deletes.held.wait(), 10)
    with pytest.raises(AortaError) as refused:
        await calls.lock(payload_id)
    assert refused.value.code == ErrorCode.PAYLOAD_IN_USE
    assert f"payload {payload_id} is still receiving files" in str(refused.value)
    deletes.go_on.set()
    await removing
    await calls.lock(payload_id)
    assert await calls.files(payload_id) == {}
