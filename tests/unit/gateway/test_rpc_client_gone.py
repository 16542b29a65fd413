"""A unary or client-streaming call whose client has gone ends as CANCELLED: an upload
cancelled mid-way never looks complete to its handler (grpc reads a cancelled stream as an
ended one), grpc's own error from an operation on a call that is over is not answered as an
internal error, and the audit log records the call as cancelled. The request generators a
client-streaming handler is given are closed when its call ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from aorta.api import common_pb2, jobs_pb2, jobs_pb2_grpc, payloads_pb2, pipelines_pb2
from aorta.bus.memory import MemoryBus
from aorta.store.sqlite import SqliteStateStore
from aorta_services.gateway.audit import AuditTrail
from aorta_services.gateway.audit_record import AuditRecord
from aorta_services.gateway.guard import Guard
from aorta_services.gateway.rpc import (
    Context,
    Handler,
    WireRequests,
    WireStreamHandler,
    service_handler,
)

PAYLOAD = "cd" * 16


class _Served:
    """What a handler saw: whether its requests ended, and when grpc was done with the call
    (its done callbacks run once the call's task has finished)."""

    def __init__(self) -> None:
        self.requests_ended = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.first_read: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def watch(self, context: Context) -> None:
        context.add_done_callback(lambda _: self.done.done() or self.done.set_result(None))

    def read(self) -> None:
        if not self.first_read.done():
            self.first_read.set_result(None)


@asynccontextmanager
async def _audited(
    tmp_path: Path, service: ServiceDescriptor, handlers: dict[str, Handler]
) -> AsyncIterator[tuple[grpc.aio.Channel, AuditTrail]]:
    store = await SqliteStateStore.open(tmp_path / "state.db", durable=False)
    bus = MemoryBus()
    trail = AuditTrail(store, bus)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((service_handler(service, handlers, Guard(audit=trail)),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, trail
    finally:
        await server.stop(None)
        await bus.close()
        await store.close()


async def _outcome(trail: AuditTrail) -> AuditRecord:
    """The record of the call's end (a mutation's `started` record comes first)."""
    records = [record async for record in trail.records()]
    assert records[0].result == "started"
    (ended,) = records[1:]
    return ended


async def _never_ending(first: Message) -> AsyncIterator[Message]:
    """A client stream that sends `first` and then waits, never ending it."""
    yield first
    await asyncio.Event().wait()


def _wire_upload(served: _Served) -> Handler:
    async def upload(requests: WireRequests, context: Context) -> Message:
        served.watch(context)
        while await requests.next() is not None:
            served.read()
        served.requests_ended = True
        return payloads_pb2.PayloadsUploadResponse()

    return WireStreamHandler(upload)


def _parsed_create(served: _Served) -> Handler:
    async def create(requests: AsyncIterator[Message], context: Context) -> Message:
        served.watch(context)
        async for _ in requests:
            served.read()
        served.requests_ended = True
        return pipelines_pb2.PipelinesCreateResponse()

    return create


_UPLOAD = (
    payloads_pb2,
    "Payloads",
    "Upload",
    _wire_upload,
    payloads_pb2.PayloadsUploadRequest(
        payload_id=common_pb2.Identifier(value=PAYLOAD),
        details=payloads_pb2.PayloadFileDetails(name="/scan.dcm"),
        data=b"x" * 1024,
    ),
)
_CREATE = (
    pipelines_pb2,
    "Pipelines",
    "Create",
    _parsed_create,
    pipelines_pb2.PipelinesCreateRequest(
        definition=pipelines_pb2.PipelineDefinitionFile(path="a.yaml", content="api-version")
    ),
)


@pytest.mark.parametrize(("module", "service", "method", "handler", "first"), [_UPLOAD, _CREATE])
async def test_a_client_stream_cancelled_mid_way_never_ends_its_requests(
    tmp_path: Path,
    module: Any,
    service: str,
    method: str,
    handler: Callable[[_Served], Handler],
    first: Message,
) -> None:
    served = _Served()
    descriptor = module.DESCRIPTOR.services_by_name[service]
    async with _audited(tmp_path, descriptor, {method: handler(served)}) as (channel, trail):
        path = f"/{descriptor.full_name}/{method}"
        call = channel.stream_unary(path, request_serializer=type(first).SerializeToString)(
            _never_ending(first)
        )
        await served.first_read
        call.cancel()
        await served.done
        record = await _outcome(trail)
    assert not served.requests_ended
    assert record.result == "CANCELLED"


async def test_a_unary_call_past_its_deadline_is_recorded_as_cancelled(tmp_path: Path) -> None:
    served = _Served()

    async def start(request: Message, context: Context) -> Message:
        served.watch(context)
        # A handler whose work finished as the deadline passed: grpc's cancel is taken here
        # so that the handler, like such a one, goes on to use a call that is over.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        await context.send_initial_metadata((("aorta-owner", "alice"),))
        return jobs_pb2.JobsStartResponse()

    jobs = jobs_pb2.DESCRIPTOR.services_by_name["Jobs"]
    async with _audited(tmp_path, jobs, {"Start": start}) as (channel, trail):
        request = jobs_pb2.JobsStartRequest(job_id=common_pb2.Identifier(value=PAYLOAD))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await jobs_pb2_grpc.JobsStub(channel).Start(request, timeout=0.3)
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await served.done
        record = await _outcome(trail)
    assert record.result == "CANCELLED"


async def test_a_client_streaming_handler_has_its_requests_closed_when_the_call_ends(
    tmp_path: Path,
) -> None:
    given: list[AsyncIterator[Message]] = []

    async def create(requests: AsyncIterator[Message], context: Context) -> Message:
        given.append(requests)
        await anext(requests)
        return pipelines_pb2.PipelinesCreateResponse()

    pipelines = pipelines_pb2.DESCRIPTOR.services_by_name["Pipelines"]
    request = pipelines_pb2.PipelinesCreateRequest()
    async with _audited(tmp_path, pipelines, {"Create": create}) as (channel, _):
        path = f"/{pipelines.full_name}/Create"
        upload: Callable[..., Awaitable[bytes]] = channel.stream_unary(
            path, request_serializer=pipelines_pb2.PipelinesCreateRequest.SerializeToString
        )
        await upload(iter([request, request, request]))
    (requests,) = given
    # A closed async generator has no frame left; one left suspended keeps it.
    assert getattr(requests, "ag_frame", "not a generator") is None
