"""Bus contract, streamed answers: order, size, errors, early stop, idle timeout, flow control."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from aorta.bus import Batch, Request, StreamItem
from aorta.errors import ErrorCode, Internal, NotFound, Unavailable
from aorta.testing.nats import BusFactory


class Producer:
    """A stream handler that counts what it yields and notices when it is closed."""

    def __init__(self, count: int | None = None, *, size: int = 0, gap: float = 0.0) -> None:
        self.count, self.size, self.gap = count, size, gap
        self.produced = 0
        self.closed = asyncio.Event()

    async def __call__(self, request: Request) -> AsyncIterator[bytes]:
        try:
            while self.count is None or self.produced < self.count:
                if self.gap:
                    await asyncio.sleep(self.gap)
                self.produced += 1
                yield str(self.produced).encode().ljust(self.size, b".")
        finally:
            self.closed.set()


async def test_thousands_of_items_arrive_in_order(connect: BusFactory, subject: str) -> None:
    server, client = await connect("server"), await connect("client")
    await server.serve_stream(subject, Producer(5000), queue="svc")

    items = [item async for item in client.request_stream(subject, b"")]

    assert items == [str(n).encode() for n in range(1, 5001)]


async def test_items_of_half_a_megabyte_arrive_whole(connect: BusFactory, subject: str) -> None:
    server, client = await connect("server"), await connect("client")
    await server.serve_stream(subject, Producer(24, size=512 * 1024), queue="svc")

    items = [item async for item in client.request_stream(subject, b"")]

    assert [len(item) for item in items] == [512 * 1024] * 24
    assert [item.rstrip(b".") for item in items] == [str(n).encode() for n in range(1, 25)]


async def test_the_request_reaches_the_handler(connect: BusFactory, subject: str) -> None:
    server, client = await connect("server"), await connect("client")

    async def echo(request: Request) -> AsyncIterator[bytes]:
        yield request.data
        yield request.headers["X-Trace"].encode()

    await server.serve_stream(subject, echo, queue="svc")
    stream = client.request_stream(subject, b"hello", headers={"X-Trace": "t9"})

    assert [item async for item in stream] == [b"hello", b"t9"]


async def test_an_empty_stream_ends_at_once(connect: BusFactory, subject: str) -> None:
    server, client = await connect("server"), await connect("client")
    await server.serve_stream(subject, Producer(0), queue="svc")

    assert [item async for item in client.request_stream(subject, b"")] == []


async def test_an_error_mid_stream_follows_the_items_already_sent(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client")

    async def failing(request: Request) -> AsyncIterator[bytes]:
        for n in range(3):
            yield str(n).encode()
        raise NotFound("job 5 vanished", "try again", code=ErrorCode.JOB_NOT_FOUND)

    await server.serve_stream(subject, failing, queue="svc")
    received = []
    with pytest.raises(NotFound) as raised:
        async for item in client.request_stream(subject, b""):
            received.append(item)

    assert received == [b"0", b"1", b"2"]
    assert raised.value.code == ErrorCode.JOB_NOT_FOUND
    assert raised.value.messages == ("job 5 vanished", "try again")


async def test_an_unexpected_error_mid_stream_is_internal(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client")

    async def broken(request: Request) -> AsyncIterator[bytes]:
        yield b"one"
        raise RuntimeError("secret-detail")

    await server.serve_stream(subject, broken, queue="svc")
    received = []
    with pytest.raises(Internal) as raised:
        async for item in client.request_stream(subject, b""):
            received.append(item)

    assert received == [b"one"]
    assert "secret-detail" not in str(raised.value)


async def test_no_responder_is_unavailable_at_once(connect: BusFactory, subject: str) -> None:
    # A stream that waited out its timeout would say "... sent nothing for", not this.
    client = await connect("client", default_timeout=10.0)

    with pytest.raises(Unavailable, match=f"no service answers {subject}"):
        await anext(client.request_stream(subject, b""))


async def test_breaking_out_early_stops_the_producer(connect: BusFactory, subject: str) -> None:
    server, client = await connect("server"), await connect("client")
    producer = Producer()
    await server.serve_stream(subject, producer, queue="svc")

    async with aclosing(client.request_stream(subject, b"")) as stream:
        async for item in stream:
            if item == b"5":
                break
    await asyncio.wait_for(producer.closed.wait(), 30.0)

    assert producer.produced <= 5 + connect.options.stream_window + 1


async def test_cancelling_the_consumer_stops_the_producer(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client")
    producer = Producer(gap=0.01)
    await server.serve_stream(subject, producer, queue="svc")
    flowing = asyncio.Event()

    async def consume() -> None:
        async for item in client.request_stream(subject, b""):
            if item == b"3":
                flowing.set()

    consumer = asyncio.create_task(consume())
    await asyncio.wait_for(flowing.wait(), 30.0)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await asyncio.wait_for(producer.closed.wait(), 30.0)


async def test_the_timeout_bounds_each_item_not_the_whole_stream(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client")
    # Each item comes 8 times faster than its timeout, so a loaded machine does not trip it,
    # and the whole stream takes longer than the timeout.
    await server.serve_stream(subject, Producer(12, gap=0.25), queue="svc")
    stalled = Producer(gap=0.6)
    await server.serve_stream(f"{subject}.stalled", stalled, queue="svc")

    steady = [item async for item in client.request_stream(subject, b"", timeout=2.0)]
    with pytest.raises(Unavailable) as raised:
        await anext(client.request_stream(f"{subject}.stalled", b"", timeout=0.3))

    assert len(steady) == 12
    assert f"{subject}.stalled" in str(raised.value) and "0.3 s" in str(raised.value)
    await asyncio.wait_for(stalled.closed.wait(), 30.0)


async def test_a_slow_consumer_holds_the_producer_within_the_window(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client")
    producer = Producer(120)
    await server.serve_stream(subject, producer, queue="svc")
    window = connect.options.stream_window
    consumed, furthest_ahead = 0, 0

    async for _ in client.request_stream(subject, b""):
        consumed += 1
        if consumed <= 30:
            await asyncio.sleep(0.01)
        furthest_ahead = max(furthest_ahead, producer.produced - consumed)

    assert consumed == 120
    assert furthest_ahead <= window + 1
    assert furthest_ahead >= window // 2


async def test_batched_items_arrive_one_by_one_in_order(connect: BusFactory, subject: str) -> None:
    server, client = await connect("server"), await connect("client")

    async def batches(request: Request) -> AsyncIterator[StreamItem]:
        yield b"1"
        yield Batch((b"2", b"", b"4" * 300))
        yield b"5"
        yield Batch((b"6", b"7"))

    await server.serve_stream(subject, batches, queue="svc")

    items = [item async for item in client.request_stream(subject, b"")]

    assert items == [b"1", b"2", b"", b"4" * 300, b"5", b"6", b"7"]


async def test_large_items_hold_the_producer_within_the_byte_window(
    connect: BusFactory, subject: str
) -> None:
    server, client = await connect("server"), await connect("client")
    size = 256 * 1024
    producer = Producer(40, size=size)
    await server.serve_stream(subject, producer, queue="svc")
    # Fewer items than the item window fill the byte window.
    by_bytes = connect.options.stream_window_bytes // size
    assert by_bytes + 1 < connect.options.stream_window
    consumed, furthest_ahead = 0, 0

    async for _ in client.request_stream(subject, b""):
        consumed += 1
        if consumed <= 20:
            await asyncio.sleep(0.01)
        furthest_ahead = max(furthest_ahead, producer.produced - consumed)

    assert consumed == 40
    # The window of bytes, the one item it may pass it by, and the one the handler has made
    # while the producer waits for room.
    assert furthest_ahead <= by_bytes + 2
