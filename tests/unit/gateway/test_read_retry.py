"""A read the gateway forwards is asked again when a replica dies holding it; a change never is.

A scheduler replica killed while it holds a Status request never answers it, and the caller
used to get "no answer" after the whole RPC timeout although another replica was ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from google.protobuf.message import Message

from aorta import contracts, subjects
from aorta.api import (
    aorta_jobs_pb2,
    common_pb2,
    jobs_pb2,
    models_pb2,
    payloads_pb2,
    pipelines_pb2,
)
from aorta.blobs.local import LocalBlobStore
from aorta.bus import Request
from aorta.bus.memory import MemoryBus, MemoryNetwork
from aorta.errors import Unavailable
from aorta.settings import Settings
from aorta_services.gateway import jobs, models, pipelines
from aorta_services.gateway.forward import READ_ATTEMPTS, Forwarder, GatewayContext
from aorta_services.gateway.rpc import Handler

TIMEOUT = 2.0
LIST_TIMEOUT = 0.6


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


class ListDyingFirst:
    """A List replica that sends nothing to its first request (as one killed holding it
    would) and `items` to the next; with `fail_after_first`, one item and then nothing."""

    def __init__(self, items: list[bytes], *, fail_after_first: bool = False) -> None:
        self.items, self.fail_after_first, self.asked = items, fail_after_first, 0
        self.released = asyncio.Event()

    async def __call__(self, request: Request) -> AsyncIterator[bytes]:
        self.asked += 1
        if self.fail_after_first:
            yield self.items[0]
            await self.released.wait()
            return
        if self.asked == 1:
            await self.released.wait()
            return
        for item in self.items:
            yield item


ServeList = Callable[[str, ListDyingFirst], Awaitable[dict[str, Handler]]]


@pytest.fixture
async def lists(tmp_path: Path) -> AsyncIterator[ServeList]:
    """Serves a List replica on a subject and gives every gateway handler asking it (Jobs',
    Pipelines' and Models'); ends every stalled stream and closes the buses after the test."""
    network = MemoryNetwork()
    server, replicas = MemoryBus(network), []

    async def serve(subject: str, replica: ListDyingFirst) -> dict[str, Handler]:
        replicas.append(replica)
        await server.serve_stream(subject, replica, queue="replicas")
        bus = MemoryBus(network)
        gateway = GatewayContext(
            forward=Forwarder(bus, LIST_TIMEOUT),
            bus=bus,
            blobs=LocalBlobStore(tmp_path),
            settings=Settings.from_env({}),
        )
        return {
            **{f"Jobs.{name}": h for name, h in jobs.handlers(gateway).items()},
            **{f"Jobs.{name}": h for name, h in jobs.aorta_handlers(gateway).items()},
            **{f"Pipelines.{name}": h for name, h in pipelines.handlers(gateway).items()},
            **{f"Models.{name}": h for name, h in models.handlers(gateway).items()},
        }

    yield serve
    for replica in replicas:
        replica.released.set()
    await server.close()


def _header(message_class: type[Message], name: str) -> bytes:
    """A message of `message_class` with only its header, carrying `name` as a message."""
    return message_class(header=common_pb2.ResponseHeader(messages=[name])).SerializeToString()


# Each list the gateway forwards: its handler, the subject it asks, its request and its answer.
LISTS = [
    ("Jobs.List", subjects.SCHEDULER_LIST, jobs_pb2.JobsListRequest, jobs_pb2.JobsListResponse),
    (
        "Jobs.Queue",
        subjects.SCHEDULER_QUEUE,
        aorta_jobs_pb2.JobsQueueRequest,
        aorta_jobs_pb2.JobsQueueResponse,
    ),
    (
        "Pipelines.List",
        subjects.PIPELINES_LIST,
        pipelines_pb2.PipelinesListRequest,
        pipelines_pb2.PipelinesListResponse,
    ),
    (
        "Models.ListModels",
        subjects.MODELS_LIST,
        models_pb2.ModelsListModelsRequest,
        models_pb2.ModelsListModelsResponse,
    ),
    (
        "Models.ListCatalogs",
        subjects.MODELS_LIST_CATALOGS,
        models_pb2.ModelsListCatalogsRequest,
        models_pb2.ModelsListCatalogsResponse,
    ),
    (
        "Models.ListInstances",
        subjects.MODELS_LIST_INSTANCES,
        models_pb2.ModelsListInstancesRequest,
        models_pb2.ModelsListInstancesResponse,
    ),
    (
        "Models.ReadCatalog",
        subjects.MODELS_READ_CATALOG,
        models_pb2.ModelsReadCatalogRequest,
        models_pb2.ModelsReadCatalogResponse,
    ),
]


def _wire(item: Message | bytes) -> bytes:
    return item if isinstance(item, bytes) else item.SerializeToString()


@pytest.mark.parametrize(("rpc", "subject", "request_class", "answer_class"), LISTS)
async def test_a_list_that_sends_nothing_is_asked_again(
    lists: ServeList,
    rpc: str,
    subject: str,
    request_class: type[Message],
    answer_class: type[Message],
) -> None:
    items = [_header(answer_class, "first"), _header(answer_class, "second")]
    replica = ListDyingFirst(items)
    handler = (await lists(subject, replica))[rpc]

    started = asyncio.get_running_loop().time()
    got = [_wire(item) async for item in handler(request_class(), None)]  # type: ignore[arg-type, union-attr]

    assert got == items
    assert replica.asked == 2
    # The first try had half the RPC timeout, so the caller waited no longer in all.
    assert asyncio.get_running_loop().time() - started < LIST_TIMEOUT


@pytest.mark.parametrize(("rpc", "subject", "request_class", "answer_class"), LISTS)
async def test_a_list_that_broke_after_its_first_item_is_not_asked_again(
    lists: ServeList,
    rpc: str,
    subject: str,
    request_class: type[Message],
    answer_class: type[Message],
) -> None:
    replica = ListDyingFirst([_header(answer_class, "first")], fail_after_first=True)
    handler = (await lists(subject, replica))[rpc]
    received = []

    with pytest.raises(Unavailable, match="sent nothing"):
        async for item in handler(request_class(), None):  # type: ignore[arg-type, union-attr]
            received.append(_wire(item))

    assert received == replica.items
    assert replica.asked == 1
