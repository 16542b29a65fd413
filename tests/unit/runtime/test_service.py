"""Every bus service stops the same way: ends its watches, drains, then closes in reverse."""

from __future__ import annotations

import asyncio

import pytest

from aorta.bus import Request
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.errors import Unavailable
from aorta.runtime.service import RunningService


async def test_stop_drains_requests_in_hand_then_closes_in_reverse() -> None:
    network = MemoryNetwork()
    service_bus, client = MemoryBus(network), MemoryBus(network)
    order: list[str] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: Request) -> bytes:
        entered.set()
        await release.wait()
        order.append("answered")
        return b"done"

    async def close(name: str) -> None:
        order.append(name)

    running = RunningService("echo", service_bus)
    await running.serve("aorta.rpc.echo.slow", slow)
    running.on_stopping(lambda: order.append("stopping"))
    running.on_stop(lambda: close("first added"))
    running.on_stop(lambda: close("last added"))
    call = asyncio.create_task(client.request("aorta.rpc.echo.slow", b"", timeout=5))
    await entered.wait()
    stopping = asyncio.create_task(running.stop(1.0))
    await asyncio.sleep(0)
    release.set()
    await stopping
    assert await call == b"done"
    assert order == ["stopping", "answered", "last added", "first added"]
    with pytest.raises(Unavailable):
        await client.request("aorta.rpc.echo.slow", b"", timeout=1)
    await running.stop(1.0)
    assert order.count("stopping") == 1, "stop is idempotent"
    await client.close()
    await service_bus.close()


async def test_a_failing_closer_does_not_keep_the_others_from_closing() -> None:
    closed: list[str] = []

    async def broken() -> None:
        raise OSError("disk gone")

    async def fine() -> None:
        closed.append("fine")

    running = RunningService("models", MemoryBus(MemoryNetwork()))
    running.on_stop(fine)
    running.on_stop(broken)
    await running.stop(0)
    assert closed == ["fine"]


async def test_a_failed_start_stops_what_was_already_served() -> None:
    network = MemoryNetwork()
    bus = MemoryBus(network)
    closed: list[str] = []

    async def echo(request: Request) -> bytes:
        return request.data

    async def close() -> None:
        closed.append("closed")

    running = RunningService("echo", bus, queue="echoes")
    running.on_stop(close)
    with pytest.raises(RuntimeError, match="no settings"):
        async with running.starting():
            await running.serve("aorta.rpc.echo.echo", echo)
            assert len(running.served) == 1
            raise RuntimeError("no settings")
    assert closed == ["closed"]
    with pytest.raises(Unavailable):
        await bus.request("aorta.rpc.echo.echo", b"x", timeout=1)
    await bus.close()
