"""A server stream's handler is closed as soon as its call ends early: a client that cancels,
or a deadline that passes, runs the handler's `finally` (releasing the bus stream or store
cursor it holds) before the call is over on the server, not whenever garbage is collected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from aorta.api import clara_pb2, clara_pb2_grpc, common_pb2
from aorta_services.gateway.rpc import Context, Handler, service_handler

Utilization = clara_pb2.ClaraUtilizationResponse


class _Endless:
    """A handler that yields for ever, and notes whether its `finally` had run when grpc
    considered the call over (its done callbacks run once the call's task has finished)."""

    def __init__(self) -> None:
        self.closed = False
        self.closed_when_done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def _done(self, context: object) -> None:
        if not self.closed_when_done.done():
            self.closed_when_done.set_result(self.closed)

    async def __call__(self, request: object, context: Context) -> AsyncIterator[Utilization]:
        context.add_done_callback(self._done)
        try:
            # Nothing here waits, so the call's task can only be stopped while grpc sends a
            # message: the moment the handler is suspended at its `yield`.
            while True:
                yield Utilization(header=common_pb2.ResponseHeader())
        finally:
            self.closed = True


async def _cancel_after_one(stub: clara_pb2_grpc.ClaraStub) -> None:
    call = stub.Utilization(clara_pb2.ClaraUtilizationRequest())
    await call.read()
    call.cancel()


async def _read_past_deadline(stub: clara_pb2_grpc.ClaraStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for _ in stub.Utilization(clara_pb2.ClaraUtilizationRequest(), timeout=0.3):
            pass
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize("end", [_cancel_after_one, _read_past_deadline])
async def test_a_stream_ended_early_closes_its_handler_before_the_call_is_over(
    end: Callable[[clara_pb2_grpc.ClaraStub], Awaitable[None]],
) -> None:
    endless = _Endless()
    handlers: dict[str, Handler] = {"Utilization": endless}
    server = grpc.aio.server()
    descriptor = clara_pb2.DESCRIPTOR.services_by_name["Clara"]
    server.add_generic_rpc_handlers((service_handler(descriptor, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await end(clara_pb2_grpc.ClaraStub(channel))
            assert await endless.closed_when_done
    finally:
        await server.stop(None)
