"""Clara.Version, Clara.Utilization, Clara.Stop and Monitor.GpuMetrics through the gateway, over
gRPC with our own stubs, answered by the monitor across a real nats-server (its probe sees no
GPU)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import grpc
from structlog.testing import capture_logs

from aorta import subjects
from aorta.api import clara_pb2, clara_pb2_grpc, node_monitor_pb2, node_monitor_pb2_grpc
from aorta.bus import Request


async def eventually(check: Callable[[], Any], within: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while not (result := check()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
    return result


async def test_version(channel: grpc.aio.Channel) -> None:
    response = await clara_pb2_grpc.ClaraStub(channel).Version(clara_pb2.ClaraVersionRequest())
    assert response.header.code == 0
    assert "Clara Platform API" in response.header.messages[0]


async def test_utilization_snapshot_is_one_empty_answer(channel: grpc.aio.Channel) -> None:
    # Not a watch: the call ends after one answer (a stream that went on would hang here).
    stub = clara_pb2_grpc.ClaraStub(channel)
    responses = [r async for r in stub.Utilization(clara_pb2.ClaraUtilizationRequest())]
    (response,) = responses
    assert response.HasField("header")
    assert response.header.code == 0
    assert list(response.gpu_metrics) == []


async def test_utilization_watch_ends_on_the_monitor_when_the_client_cancels(
    platform: Any, channel: grpc.aio.Channel
) -> None:
    stub = clara_pb2_grpc.ClaraStub(channel)
    with capture_logs() as logs:
        call = stub.Utilization(clara_pb2.ClaraUtilizationRequest(watch=True))
        loop = asyncio.get_running_loop()
        started = loop.time()
        received = []
        async for response in call:
            received.append(response)
            if len(received) == 3:
                break
        elapsed = loop.time() - started
        call.cancel()
        ended = await eventually(lambda: [e for e in logs if e["event"] == "monitor.watch_ended"])
    assert all(r.HasField("header") and r.header.code == 0 for r in received)
    assert elapsed >= 2 * platform.interval * 0.9
    assert ended[0]["messages"] >= 3
    assert call.cancelled()


async def test_stop_with_nothing_deployed(channel: grpc.aio.Channel) -> None:
    response = await clara_pb2_grpc.ClaraStub(channel).Stop(clara_pb2.ClaraStopRequest())
    assert response.header.code == 0
    assert list(response.header.messages) == [
        "scheduler: not deployed, nothing to stop",
        "models: not deployed, nothing to stop",
    ]


async def test_stop_reaches_a_deployed_service_over_nats(
    platform: Any, channel: grpc.aio.Channel
) -> None:
    asked: list[dict[str, Any]] = []

    async def models_stop(request: Request) -> bytes:
        asked.append(json.loads(request.data))
        return json.dumps({"stopped": {"triton_servers": 2}}).encode()

    served = await platform.bus.serve(subjects.MODELS_PLATFORM_STOP, models_stop, queue="models")
    try:
        response = await clara_pb2_grpc.ClaraStub(channel).Stop(clara_pb2.ClaraStopRequest())
    finally:
        await served.drain()
    assert response.header.code == 0
    assert list(response.header.messages) == [
        "scheduler: not deployed, nothing to stop",
        "models: stopped triton_servers=2",
    ]
    assert asked == [{"reason": "Clara.Stop"}]


async def test_a_failed_stop_is_a_negative_header_code(
    platform: Any, channel: grpc.aio.Channel
) -> None:
    async def scheduler_stop(request: Request) -> bytes:
        return b"not json"

    served = await platform.bus.serve(
        subjects.SCHEDULER_PLATFORM_STOP, scheduler_stop, queue="scheduler"
    )
    try:
        response = await clara_pb2_grpc.ClaraStub(channel).Stop(clara_pb2.ClaraStopRequest())
    finally:
        await served.drain()
    assert response.header.code < 0
    assert response.header.messages[0].startswith("scheduler: answered Clara.Stop with a malformed")


async def test_gpu_metrics(channel: grpc.aio.Channel) -> None:
    stub = node_monitor_pb2_grpc.MonitorStub(channel)
    responses = [r async for r in stub.GpuMetrics(node_monitor_pb2.MonitorGpuMetricsRequest())]
    (response,) = responses
    assert response.HasField("header")
    assert response.header.code == 0
    assert list(response.gpu_details) == []
