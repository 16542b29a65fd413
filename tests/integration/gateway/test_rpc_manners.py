"""The gateway's manners, for every RPC: protocol faults get a gRPC status, platform errors get
a negative Clara header under status OK, crashes never leak a traceback or kill the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aorta import subjects
from aorta.api import clara_pb2, clara_pb2_grpc
from aorta.bus import Request
from aorta.bus.memory import MemoryBus
from aorta.errors import ErrorCode, NotFound
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta_services.gateway import app as gateway_app
from aorta_services.gateway.rpc import service_handler

VERSION_METHOD = "/nvidia.clara.platform.Clara/Version"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[grpc.aio.Channel, MemoryBus]]:
    settings = Settings.from_env({"AORTA_DATA_DIR": str(tmp_path), "AORTA_RPC_TIMEOUT": "2"})
    bus = MemoryBus(default_timeout=2.0)
    async with service_context(settings, bus) as context:
        running = await gateway_app.start(context, address="127.0.0.1:0")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                yield channel, bus
        finally:
            await running.stop(1.0)
            await bus.close()


def _raw_version(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(VERSION_METHOD)


async def _version(channel: grpc.aio.Channel, **kwargs: object) -> clara_pb2.ClaraVersionResponse:
    stub = clara_pb2_grpc.ClaraStub(channel)
    reply: clara_pb2.ClaraVersionResponse = await stub.Version(
        clara_pb2.ClaraVersionRequest(), timeout=5, **kwargs
    )
    return reply


async def test_malformed_bytes_are_invalid_argument(
    gateway: tuple[grpc.aio.Channel, MemoryBus],
) -> None:
    channel, _ = gateway
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _raw_version(channel)(b"\xff\xff\xff\xff", timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ClaraVersionRequest" in str(refused.value.details())


async def test_oversized_messages_are_resource_exhausted_and_the_server_lives_on(
    gateway: tuple[grpc.aio.Channel, MemoryBus],
) -> None:
    channel, _ = gateway
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _raw_version(channel)(b"\x12" + b"\x00" * (6 * 1024 * 1024), timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_platform_errors_are_negative_headers_under_status_ok(
    gateway: tuple[grpc.aio.Channel, MemoryBus],
) -> None:
    channel, bus = gateway

    async def refuse(request: Request) -> bytes:
        raise NotFound("nothing here", code=ErrorCode.PIPELINE_NOT_FOUND)

    subscription = await bus.serve(subjects.CLARA_VERSION, refuse, queue="monitor")
    try:
        reply = await _version(channel)
    finally:
        await subscription.drain()
    assert reply.header.code == ErrorCode.PIPELINE_NOT_FOUND
    assert list(reply.header.messages) == ["nothing here"]


async def test_a_missing_service_is_reported_in_the_header(
    gateway: tuple[grpc.aio.Channel, MemoryBus],
) -> None:
    channel, _ = gateway
    reply = await _version(channel)
    assert reply.header.code == ErrorCode.SERVICE_UNAVAILABLE
    assert subjects.CLARA_VERSION in " ".join(reply.header.messages)


async def test_a_crash_names_the_request_id_and_never_a_traceback(
    gateway: tuple[grpc.aio.Channel, MemoryBus],
) -> None:
    channel, bus = gateway

    async def garbage(request: Request) -> bytes:
        return b"\xff\xff\xff"  # not a ClaraVersionResponse: the gateway fails to decode it

    subscription = await bus.serve(subjects.CLARA_VERSION, garbage, queue="monitor")
    try:
        reply = await _version(channel, metadata=(("x-request-id", "req-1234"),))
    finally:
        await subscription.drain()
    assert reply.header.code == ErrorCode.INTERNAL
    text = " ".join(reply.header.messages)
    assert "req-1234" in text and "Traceback" not in text


async def test_methods_without_a_handler_are_unimplemented() -> None:
    server = grpc.aio.server()
    descriptor = clara_pb2.DESCRIPTOR.services_by_name["Clara"]
    server.add_generic_rpc_handlers((service_handler(descriptor, {}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _version(channel)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(None)


def test_handlers_for_unknown_methods_are_refused() -> None:
    descriptor = clara_pb2.DESCRIPTOR.services_by_name["Clara"]
    with pytest.raises(ValueError, match="Versions"):
        service_handler(descriptor, {"Versions": _version})  # type: ignore[dict-item]
