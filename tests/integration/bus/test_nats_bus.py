"""What only the NATS adapter can show: the JetStream stream it creates, connecting to nothing,
and events that survive a nats-server restart on the same store and port."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import StorageType

from aorta.bus import CloudEvent, make_event
from aorta.bus.nats import NatsBus
from aorta.bus.nats_events import STREAM_NAME
from aorta.bus.nats_server import NatsServerProcess
from aorta.errors import Unavailable
from aorta.testing.ports import restart_safe_port

# How long a delivery or a reconnection may take on a loaded 2-core machine, where the event
# loop can stall for seconds: a bound for failing, never a guess of how long it takes.
EVENTUALLY = 30.0


async def test_connect_creates_the_file_backed_event_stream_once(
    nats_server: NatsServerProcess,
) -> None:
    first = await NatsBus.connect(
        nats_server.url, name="first", default_timeout=2.0, stream_max_age=3600.0
    )
    second = await NatsBus.connect(
        nats_server.url, name="second", default_timeout=2.0, stream_max_age=60.0
    )
    nc = await nats.connect(nats_server.url)
    try:
        info = await nc.jetstream().stream_info(STREAM_NAME)
    finally:
        await nc.close()
        await first.close()
        await second.close()

    assert info.config.subjects == ["aorta.events.>"]
    assert info.config.storage == StorageType.FILE
    assert info.config.max_age == 3600.0


async def test_connecting_to_no_server_is_unavailable_within_the_timeout() -> None:
    # The port stays bound, never listening, until the client gave up: a port that was only
    # free a moment ago (`free_port`) may be taken meanwhile by a server of a suite running
    # beside this one, which the client would then reach; and the kernel never picks a bound
    # port as the client's own end, which could connect a socket to itself.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as nobody:
        nobody.bind(("127.0.0.1", 0))
        port = nobody.getsockname()[1]

        # Without its timeout the client would retry forever; the bound is loose because a
        # loaded machine stretches the 1.5 s, and this is no measure of speed.
        with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
            await asyncio.wait_for(
                NatsBus.connect(
                    f"nats://127.0.0.1:{port}",
                    name="nobody",
                    default_timeout=1.0,
                    connect_timeout=1.5,
                ),
                EVENTUALLY,
            )


async def test_events_and_durable_positions_survive_a_server_restart(tmp_path: Path) -> None:
    server = NatsServerProcess(tmp_path, port=restart_safe_port())
    await server.astart()
    buses: list[NatsBus] = []
    try:
        publisher = await NatsBus.connect(server.url, name="publisher", default_timeout=2.0)
        subscriber = await NatsBus.connect(server.url, name="subscriber", default_timeout=2.0)
        buses += [publisher, subscriber]
        received: asyncio.Queue[CloudEvent] = asyncio.Queue()
        await subscriber.subscribe_events(
            "aorta.events.job.>", received.put, durable="survivor", deliver="all"
        )
        before = make_event("tests", "job", "j1", "created", {"n": 1})
        await publisher.publish_event(before)
        assert await asyncio.wait_for(received.get(), EVENTUALLY) == before
        # The acknowledgement reaches the server before it stops.
        await _acknowledged(server.url, "survivor")
        port = server.port

        await server.astop()
        await server.astart()
        after = make_event("tests", "job", "j1", "started", {"n": 2})
        await _publish_once_reconnected(publisher, after)

        assert server.port == port
        assert await asyncio.wait_for(received.get(), EVENTUALLY) == after
        # No duplicate of `before`: a negative check, kept short because the server held the
        # acknowledgement (awaited above) and so has nothing to redeliver.
        await asyncio.sleep(0.3)
        assert received.empty()
        replayer = await NatsBus.connect(server.url, name="replayer", default_timeout=2.0)
        buses.append(replayer)
        replayed: asyncio.Queue[CloudEvent] = asyncio.Queue()
        await replayer.subscribe_events("aorta.events.job.>", replayed.put, deliver="all")
        assert [await asyncio.wait_for(replayed.get(), EVENTUALLY) for _ in range(2)] == [
            before,
            after,
        ]
    finally:
        for bus in buses:
            await bus.close()
        await server.astop()


async def test_close_is_bounded_while_the_server_is_gone(tmp_path: Path) -> None:
    server = NatsServerProcess(tmp_path)
    await server.astart()
    bus = await NatsBus.connect(server.url, name="orphan", default_timeout=1.0)
    await bus.subscribe("aorta.test.orphan", _ignore)
    await server.astop()
    # Usually enough for the client to notice and start reconnecting, the case this test is
    # about; had it not noticed yet, close must end all the same, so no wait can be wrong here.
    await asyncio.sleep(0.2)

    # Unbounded, close would wait on the reconnection forever; bounded, it ends within its own
    # timeouts, which a loaded machine may stretch but not to this.
    await asyncio.wait_for(bus.close(), EVENTUALLY)


async def _publish_once_reconnected(bus: NatsBus, event: CloudEvent) -> None:
    deadline = time.monotonic() + EVENTUALLY
    while True:
        try:
            await bus.publish_event(event)
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _ignore(data: bytes, subject: str) -> None:
    return None


async def _acknowledged(url: str, durable: str, within: float = EVENTUALLY) -> None:
    """Returns once the server holds no unacknowledged delivery of consumer `durable`."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + within
        while (await js.consumer_info(STREAM_NAME, durable)).num_ack_pending:
            assert time.monotonic() < deadline, f"{durable} never acknowledged its delivery"
            await asyncio.sleep(0.02)
    finally:
        await nc.close()


async def test_a_flush_whose_waiter_is_gone_leaves_the_connection_reading(
    nats_server: NatsServerProcess,
) -> None:
    # nats-py keeps a cancelled flush's PONG future queued; the PONG that answered it used to
    # end the client's read loop, after which no request on the bus was ever answered.
    bus = await NatsBus.connect(nats_server.url, name="flush-test", default_timeout=5.0)
    try:
        client = bus._nc
        for _ in range(20):
            flush = asyncio.create_task(client.flush(timeout=5))
            await asyncio.sleep(0)  # its PING is written, its PONG not yet read
            flush.cancel()
            await asyncio.gather(flush, return_exceptions=True)
        await client.flush(timeout=int(EVENTUALLY))
        assert client._reading_task is not None and not client._reading_task.done()
        assert client.is_connected
    finally:
        await bus.close()
