"""A read the gateway forwards is asked again when a replica dies holding it; a change never is.

A scheduler replica killed while it holds a Status request never answers it, and the caller
used to get "no answer" after the whole RPC timeout although another replica was ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from aorta import contracts, subjects
from aorta.api import jobs_pb2, payloads_pb2
from aorta.bus import Request
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.errors import Unavailable
from aorta_services.gateway.forward import READ_ATTEMPTS, Forwarder

TIMEOUT = 2.0


class DyingFirst:
    """A replica that swallows its first `swallowed` requests (as one killed holding them
    would) and answers the rest with `answer`."""

    def __init__(self, answer: bytes, swallowed: int = 1) -> None:
        self.answer, self.swallowed, self.asked = answer, swallowed, 0
        self.released = asyncio.Event()

    async def __call__(self, request: Request) -> bytes:
        self.asked += 1
        if self.asked <= self.swallowed:
            await self.released.wait()
        return self.answer


Serving = Callable[[str, DyingFirst], Awaitable[MemoryBus]]


@pytest.fixture
async def serving() -> AsyncIterator[Serving]:
    """Serves a replica on a subject and gives a bus to ask it; ends every swallowed request
    and closes the buses after the test."""
    network = MemoryNetwork()
    server, replicas = MemoryBus(network), []

    async def serve(subject: str, replica: DyingFirst) -> MemoryBus:
        replicas.append(replica)
        await server.serve(subject, replica, queue="scheduler")
        return MemoryBus(network)

    yield serve
    for replica in replicas:
        replica.released.set()
    await server.close()


async def test_a_status_read_is_asked_again_when_its_replica_dies(serving: Serving) -> None:
    answer = contracts.JobStatus(status=jobs_pb2.JobsStatusResponse(), owner="alice")
    replica = DyingFirst(contracts.SCHEDULER_STATUS.encode_answer(answer))
    bus = await serving(contracts.SCHEDULER_STATUS.subject, replica)
    forward = Forwarder(bus, TIMEOUT)

    got = await forward.read(contracts.SCHEDULER_STATUS, jobs_pb2.JobsStatusRequest())

    assert got.owner == "alice"
    assert replica.asked == 2


async def test_a_read_nobody_answers_fails_within_the_rpc_timeout(serving: Serving) -> None:
    replica = DyingFirst(b"", swallowed=READ_ATTEMPTS)
    bus = await serving(subjects.SCHEDULER_PAGE, replica)
    page = Forwarder(bus, TIMEOUT).unary(
        subjects.SCHEDULER_PAGE, jobs_pb2.JobsStatusResponse, reads=True
    )
    # Each attempt had its share of the RPC timeout, so the caller waited no longer in all.
    with pytest.raises(Unavailable, match=f"within {TIMEOUT / READ_ATTEMPTS:g} s"):
        await page(jobs_pb2.JobsStatusRequest(), None)  # type: ignore[arg-type]

    assert replica.asked == READ_ATTEMPTS


async def test_a_change_is_never_asked_twice(serving: Serving) -> None:
    replica = DyingFirst(b"")
    bus = await serving(subjects.SCHEDULER_START, replica)
    start = Forwarder(bus, TIMEOUT / 4).unary(subjects.SCHEDULER_START, jobs_pb2.JobsStartResponse)

    with pytest.raises(Unavailable, match="no answer from"):
        await start(jobs_pb2.JobsStartRequest(), None)  # type: ignore[arg-type]

    assert replica.asked == 1


async def test_a_timeout_the_service_passed_on_is_not_asked_again() -> None:
    asked = 0

    async def scheduler(request: Request) -> bytes:
        nonlocal asked
        asked += 1
        raise Unavailable(f"no answer from {subjects.PAYLOADS_DETAILS} within 30 s")

    network = MemoryNetwork()
    await MemoryBus(network).serve(contracts.SCHEDULER_STATUS.subject, scheduler, queue="s")
    forward = Forwarder(MemoryBus(network), TIMEOUT)

    with pytest.raises(Unavailable, match=subjects.PAYLOADS_DETAILS):
        await forward.read(contracts.SCHEDULER_STATUS, jobs_pb2.JobsStatusRequest())

    assert asked == 1


class StreamDyingFirst:
    """A Details replica that sends nothing to its first request and two items to the next,
    or, with `fail_after_first`, one item and then goes silent."""

    def __init__(self, *, fail_after_first: bool = False) -> None:
        self.asked, self.fail_after_first = 0, fail_after_first
        self.released = asyncio.Event()

    async def __call__(self, request: Request) -> AsyncIterator[bytes]:
        self.asked += 1
        item = contracts.PAYLOADS_DETAILS.encode_answer(
            contracts.PayloadDetailsItem(payloads_pb2.PayloadsDetailsResponse(), owner="alice")
        )
        if self.fail_after_first:
            yield item
            await self.released.wait()
            return
        if self.asked == 1:
            await self.released.wait()
            return
        yield item
        yield item


ServeStream = Callable[[StreamDyingFirst], Awaitable[Forwarder]]


@pytest.fixture
async def streams() -> AsyncIterator[ServeStream]:
    """Serves a Details replica and gives a forwarder asking it; ends every stalled stream
    and closes the buses after the test."""
    network = MemoryNetwork()
    server, replicas = MemoryBus(network), []

    async def serve(replica: StreamDyingFirst) -> Forwarder:
        replicas.append(replica)
        await server.serve_stream(subjects.PAYLOADS_DETAILS, replica, queue="payloads")
        return Forwarder(MemoryBus(network), TIMEOUT)

    yield serve
    for replica in replicas:
        replica.released.set()
    await server.close()


async def test_a_details_stream_that_sends_nothing_is_asked_again(streams: ServeStream) -> None:
    replica = StreamDyingFirst()
    forward = await streams(replica)

    items = [
        item
        async for item in forward.call_stream(
            contracts.PAYLOADS_DETAILS, payloads_pb2.PayloadsDetailsRequest(), reads=True
        )
    ]

    assert [item.owner for item in items] == ["alice", "alice"]
    assert replica.asked == 2


async def test_a_stream_that_broke_after_its_first_item_is_not_asked_again(
    streams: ServeStream,
) -> None:
    replica = StreamDyingFirst(fail_after_first=True)
    forward = await streams(replica)
    received = []

    with pytest.raises(Unavailable, match="sent nothing"):
        async for item in forward.call_stream(
            contracts.PAYLOADS_DETAILS, payloads_pb2.PayloadsDetailsRequest(), reads=True
        ):
            received.append(item)

    assert len(received) == 1
    assert replica.asked == 1
