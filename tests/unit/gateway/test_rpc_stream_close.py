"""A server stream's handler is closed as soon as its call ends early: a client that cancels,
or a deadline that passes, runs the handler's `finally` (releasing the bus stream or store
cursor it holds) before the call is over on the server, not whenever garbage is collected;
and the audit log records the call as cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from aorta.api import clara_pb2, clara_pb2_grpc, common_pb2, payloads_pb2, payloads_pb2_grpc
from aorta.bus.memory import MemoryBus
from aorta.store.sqlite import SqliteStateStore
from aorta_services.gateway.audit import AuditTrail
from aorta_services.gateway.guard import Guard
from aorta_services.gateway.rpc import Context, Handler, service_handler


class _Endless:
    """A handler that yields `response` for ever, and notes whether its `finally` had run when
    grpc considered the call over (its done callbacks run once the call's task has finished)."""

    def __init__(self, response: Message) -> None:
        self.response = response
        self.closed = False
        self.closed_when_done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def _done(self, context: object) -> None:
        if not self.closed_when_done.done():
            self.closed_when_done.set_result(self.closed)

    async def __call__(self, request: object, context: Context) -> AsyncIterator[Message]:
        context.add_done_callback(self._done)
        try:
            # Nothing here waits, so the call's task can only be stopped while grpc sends a
            # message: the moment the handler is suspended at its `yield`.
            while True:
                yield self.response
        finally:
            self.closed = True


@asynccontextmanager
async def _serving(
    service: ServiceDescriptor, handlers: Mapping[str, Handler], guard: Guard | None = None
) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((service_handler(service, handlers, guard),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


async def _cancel_after_one(channel: grpc.aio.Channel) -> None:
    call = clara_pb2_grpc.ClaraStub(channel).Utilization(clara_pb2.ClaraUtilizationRequest())
    await call.read()
    call.cancel()


async def _read_past_deadline(channel: grpc.aio.Channel) -> None:
    stub = clara_pb2_grpc.ClaraStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for _ in stub.Utilization(clara_pb2.ClaraUtilizationRequest(), timeout=0.3):
            pass
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize("end", [_cancel_after_one, _read_past_deadline])
async def test_a_stream_ended_early_closes_its_handler_before_the_call_is_over(
    end: Callable[[grpc.aio.Channel], Awaitable[None]],
) -> None:
    endless = _Endless(clara_pb2.ClaraUtilizationResponse(header=common_pb2.ResponseHeader()))
    clara = clara_pb2.DESCRIPTOR.services_by_name["Clara"]
    async with _serving(clara, {"Utilization": endless}) as channel:
        await end(channel)
        assert await endless.closed_when_done


async def test_a_cancelled_download_is_recorded_as_cancelled(tmp_path: Path) -> None:
    store = await SqliteStateStore.open(tmp_path / "state.db", durable=False)
    bus = MemoryBus()
    trail = AuditTrail(store, bus)
    endless = _Endless(payloads_pb2.PayloadsDownloadResponse(data=b"x" * 1024))
    payloads = payloads_pb2.DESCRIPTOR.services_by_name["Payloads"]
    request = payloads_pb2.PayloadsDownloadRequest(
        payload_id=common_pb2.Identifier(value="cd" * 16), name="/input/scan.dcm"
    )
    try:
        async with _serving(payloads, {"Download": endless}, Guard(audit=trail)) as channel:
            call = payloads_pb2_grpc.PayloadsStub(channel).Download(request)
            await call.read()
            call.cancel()
            assert await endless.closed_when_done
        (record,) = [record async for record in trail.records()]
    finally:
        await bus.close()
        await store.close()
    assert record.method == "nvidia.clara.platform.Payloads/Download"
    assert record.result == "CANCELLED"
    assert record.resources == {"payload_id": "cd" * 16}
