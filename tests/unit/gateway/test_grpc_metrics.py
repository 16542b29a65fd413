"""The gateway's interceptor counts and times every call under the names and labels of the
widely used gRPC interceptors, whatever the call's shape and however it ends. Streams are
written with `context.write`, as the gateway serves them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from prometheus_client import REGISTRY

from aorta_services.gateway.grpc_metrics import GrpcMetrics, split_method

SERVICE = "aorta.test.Counted"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def unary(request: bytes, context: Any) -> bytes:
    return request


async def refused(request: bytes, context: Any) -> bytes:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")
    raise AssertionError("abort raises")


async def crashes(request: bytes, context: Any) -> bytes:
    raise RuntimeError("a bug")


async def client_stream(requests: AsyncIterator[bytes], context: Any) -> bytes:
    return b"".join([chunk async for chunk in requests])


async def server_stream(request: bytes, context: Any) -> None:
    for _ in range(3):
        await context.write(request)


async def bidi_stream(requests: AsyncIterator[bytes], context: Any) -> None:
    async for chunk in requests:
        await context.write(chunk)


ABANDONED: asyncio.Queue[None] = asyncio.Queue()


async def abandoned_stream(request: bytes, context: Any) -> None:
    """Writes until its client goes, then once more, as a handler whose send was under way
    when grpc's cancel came would: that write raises grpc's own error."""
    context.add_done_callback(lambda _: ABANDONED.put_nowait(None))
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await context.write(request)
    await context.write(request)


def handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Refused": grpc.unary_unary_rpc_method_handler(refused),
            "Crashes": grpc.unary_unary_rpc_method_handler(crashes),
            "Upload": grpc.stream_unary_rpc_method_handler(client_stream),
            "Download": grpc.unary_stream_rpc_method_handler(server_stream),
            "Echo": grpc.stream_stream_rpc_method_handler(bidi_stream),
            "Abandoned": grpc.unary_stream_rpc_method_handler(abandoned_stream),
        },
    )


def handled(method: str, kind: str, code: str) -> float:
    return value(
        "grpc_server_handled_total",
        grpc_type=kind,
        grpc_service=SERVICE,
        grpc_method=method,
        grpc_code=code,
    )


def started(method: str, kind: str) -> float:
    labels = {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": method}
    return value("grpc_server_started_total", **labels)


def timed(method: str, kind: str) -> float:
    labels = {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": method}
    return value("grpc_server_handling_seconds_count", **labels)


CALLS = (
    ("Unary", "unary", "OK"),
    ("Refused", "unary", "PERMISSION_DENIED"),
    ("Crashes", "unary", "UNKNOWN"),
    ("Upload", "client_stream", "OK"),
    ("Download", "server_stream", "OK"),
    ("Echo", "bidi_stream", "OK"),
    ("Abandoned", "server_stream", "CANCELLED"),
)


async def test_every_shape_of_call_is_counted_with_the_code_the_client_sees() -> None:
    before = {m: (started(m, k), handled(m, k, c), timed(m, k)) for m, k, c in CALLS}
    server = grpc.aio.server(interceptors=[GrpcMetrics()])
    server.add_generic_rpc_handlers((handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
            channel: Any = opened  # untyped calls of raw bytes
            path = f"/{SERVICE}/"
            assert await channel.unary_unary(path + "Unary")(b"x") == b"x"
            for failing, code in (("Refused", "PERMISSION_DENIED"), ("Crashes", "UNKNOWN")):
                try:
                    await channel.unary_unary(path + failing)(b"x")
                except grpc.aio.AioRpcError as error:
                    assert error.code().name == code
                else:
                    raise AssertionError(f"{failing} succeeded")
            assert await channel.stream_unary(path + "Upload")(iter([b"a", b"b"])) == b"ab"
            assert [r async for r in channel.unary_stream(path + "Download")(b"d")] == [b"d"] * 3
            abandoned = channel.unary_stream(path + "Abandoned")(b"a")
            await abandoned.read()
            abandoned.cancel()
            await ABANDONED.get()
            echoed = channel.stream_stream(path + "Echo")(iter([b"1", b"2"]))
            assert [r async for r in echoed] == [b"1", b"2"]
    finally:
        await server.stop(None)
    for method, kind, code in CALLS:
        was_started, was_handled, was_timed = before[method]
        assert started(method, kind) - was_started == 1, method
        assert handled(method, kind, code) - was_handled == 1, method
        assert timed(method, kind) - was_timed == 1, method


def test_methods_are_split_into_service_and_method() -> None:
    assert split_method("/nvidia.clara.platform.Jobs/Start") == (
        "nvidia.clara.platform.Jobs",
        "Start",
    )
    assert split_method("nonsense") == ("unknown", "nonsense")
