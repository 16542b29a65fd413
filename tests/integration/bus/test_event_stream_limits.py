"""The event stream is made with the byte limit asked for, or a smaller one the bus has room
for, so a bus on a nearly full disk still starts (real nats-server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import structlog.testing

from aorta.bus.nats import NatsBus
from aorta.bus.nats_events import STREAM_NAME
from aorta.bus.nats_server import NatsServerProcess
from aorta.disk_space import EVENT_STREAM_FLOOR

MIB = 1 << 20


async def stream_max_bytes(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(STREAM_NAME)
    finally:
        await nc.close()
    assert info.config.max_bytes is not None
    return info.config.max_bytes


@asynccontextmanager
async def bus_on(url: str, max_bytes: int) -> AsyncIterator[NatsBus]:
    bus = await NatsBus.connect(url, name="limits", default_timeout=5.0, stream_max_bytes=max_bytes)
    try:
        yield bus
    finally:
        await bus.close()


async def test_the_stream_is_made_with_the_limit_asked_for_and_keeps_it(tmp_path: Path) -> None:
    async with NatsServerProcess(tmp_path) as server:
        async with bus_on(server.url, 64 * MIB):
            assert await stream_max_bytes(server.url) == 64 * MIB
        # The services' bus users may make the stream, not change it: the first limit stands.
        async with bus_on(server.url, 16 * MIB):
            assert await stream_max_bytes(server.url) == 64 * MIB


async def test_a_bus_without_room_for_the_limit_gets_a_smaller_stream(tmp_path: Path) -> None:
    # JetStream may reserve 40 MiB here, as on a disk with little room: 1 GiB is refused,
    # halved until it fits, and the bus starts.
    async with NatsServerProcess(tmp_path, max_file_store=40 * MIB) as server:
        with structlog.testing.capture_logs() as logs:
            async with bus_on(server.url, 1 << 30):
                got = await stream_max_bytes(server.url)
    assert got == 32 * MIB
    lowered = [line for line in logs if line["event"].startswith("event stream limit lowered")]
    assert [line["max_bytes"] for line in lowered] == [(1 << 30) >> n for n in range(1, 6)]


async def test_the_floor_is_kept_when_nothing_smaller_fits(tmp_path: Path) -> None:
    async with (
        NatsServerProcess(tmp_path, max_file_store=EVENT_STREAM_FLOOR) as server,
        bus_on(server.url, 64 * MIB),
    ):
        assert await stream_max_bytes(server.url) == EVENT_STREAM_FLOOR


async def test_a_restarted_server_recovers_the_stream_with_its_limit(
    tmp_path: Path,
) -> None:
    # Left to itself nats-server reserves from three quarters of the disk's free space at
    # start and would not take back a larger stream; the platform's server has a fixed budget.
    async with NatsServerProcess(tmp_path) as server, bus_on(server.url, 1 << 30):
        pass
    async with NatsServerProcess(tmp_path) as server:
        assert await stream_max_bytes(server.url) == 1 << 30
