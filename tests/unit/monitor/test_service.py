"""The monitor service over the in-process bus: Utilization (snapshot and watch), GpuMetrics,
Stop, publication of samples and aggregation of other nodes' samples."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any

import pytest
from structlog.testing import capture_logs

from aorta import subjects
from aorta.api import clara_pb2, node_monitor_pb2
from aorta.bus import Request
from aorta.bus.memory import MemoryBus
from aorta.errors import Conflict, Internal, Unavailable
from aorta.gpu import GpuProcess, GpuSample, NodeSample, ProcessOwner
from aorta.ids import JobId
from aorta.runtime.service import ServiceContext
from aorta.settings import SettingsError
from aorta.testing.gpu import StandInProbe, StaticOwners
from aorta.timestamps import utcnow
from aorta_services.monitor import app
from aorta_services.monitor.app import RunningMonitor
from aorta_services.monitor.stop import PlatformStop

INTERVAL = 0.1
ENVIRON = {"AORTA_MONITOR_INTERVAL": str(INTERVAL), "AORTA_NODE_ID": "node-b"}
JOB = JobId("0123456789abcdef0123456789abcdef")
MIB = 1024 * 1024


def gpus(node: str = "node-b", utilization: float = 0.5) -> list[GpuSample]:
    now = utcnow()
    return [
        GpuSample(
            node_id=node,
            index=0,
            bus_id="00000000:3B:00.0",
            timestamp=now,
            compute_utilization=utilization,
            memory_utilization=0.25,
            memory_free=2048 * MIB,
            memory_used=1024 * MIB,
            bar1_free=8 * MIB,
            bar1_used=MIB,
            processes=(GpuProcess(101, 512 * MIB, "python3"), GpuProcess(202, MIB, "tritonserver")),
        ),
        GpuSample(node_id=node, index=1, bus_id="00000000:5E:00.0", timestamp=now),
    ]


def owners() -> StaticOwners:
    return StaticOwners({101: ProcessOwner(job_id=JOB, operator="inference")})


@asynccontextmanager
async def monitor(context: ServiceContext, probe: StandInProbe) -> AsyncIterator[RunningMonitor]:
    running = await app.start(context, environ=ENVIRON, probe=probe, owners=owners())
    try:
        yield running
    finally:
        await running.stop(2.0)


async def eventually(check: Callable[[], Any], within: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while not (result := check()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
    return result


async def utilization(bus: MemoryBus) -> list[clara_pb2.ClaraUtilizationResponse]:
    request = clara_pb2.ClaraUtilizationRequest(watch=False).SerializeToString()
    return [
        clara_pb2.ClaraUtilizationResponse.FromString(raw)
        async for raw in bus.request_stream(subjects.CLARA_UTILIZATION, request)
    ]


async def test_utilization_is_one_snapshot_with_owned_processes(
    context: ServiceContext, client: MemoryBus
) -> None:
    probe = StandInProbe(gpus())
    async with monitor(context, probe):
        (response,) = await utilization(client)
    assert response.HasField("header")
    assert response.header.code == 0
    first, second = response.gpu_metrics
    assert (first.node_id, first.pcie_id, first.compute_utilization) == ("node-b", 0x3B00, 0.5)
    assert (first.memory_free, first.memory_used) == (2048, 1024)
    assert [(p.name, p.job_id.value) for p in first.process_details] == [
        ("inference", JOB),
        ("tritonserver", ""),
    ]
    assert second.pcie_id == 0x5E00
    assert probe.closed


async def test_without_gpus_utilization_is_an_empty_list(
    context: ServiceContext, client: MemoryBus
) -> None:
    async with monitor(context, StandInProbe([])):
        (response,) = await utilization(client)
    assert response.HasField("header")
    assert list(response.gpu_metrics) == []


async def test_watch_sends_a_snapshot_each_interval_until_the_reader_stops(
    context: ServiceContext, client: MemoryBus
) -> None:
    probe = StandInProbe(gpus())
    request = clara_pb2.ClaraUtilizationRequest(watch=True).SerializeToString()
    received: list[clara_pb2.ClaraUtilizationResponse] = []
    async with monitor(context, probe):
        with capture_logs() as logs:
            started = asyncio.get_running_loop().time()
            stream = client.request_stream(subjects.CLARA_UTILIZATION, request)
            async with aclosing(stream):  # type: ignore[type-var]
                async for raw in stream:
                    received.append(clara_pb2.ClaraUtilizationResponse.FromString(raw))
                    if len(received) == 2:
                        probe.gpus = gpus(utilization=0.75)
                    if len(received) == 6:
                        break
            elapsed = asyncio.get_running_loop().time() - started
            ended = await eventually(
                lambda: [e for e in logs if e["event"] == "monitor.watch_ended"]
            )
    assert elapsed >= 5 * INTERVAL * 0.9
    assert all(r.HasField("header") and r.header.code == 0 for r in received)
    assert received[0].gpu_metrics[0].compute_utilization == 0.5
    assert received[-1].gpu_metrics[0].compute_utilization == 0.75
    assert ended[0]["messages"] >= 6
    assert probe.samples >= 3


async def test_stopping_the_service_ends_open_watch_streams(
    context: ServiceContext, client: MemoryBus
) -> None:
    probe = StandInProbe(gpus())
    request = clara_pb2.ClaraUtilizationRequest(watch=True).SerializeToString()
    running = await app.start(context, environ=ENVIRON, probe=probe, owners=owners())
    count = 0
    async for _ in client.request_stream(subjects.CLARA_UTILIZATION, request):
        count += 1
        if count == 2:
            stopping = asyncio.create_task(running.stop(2.0))
    await asyncio.wait_for(stopping, 30.0)
    assert count >= 2
    assert probe.closed


async def test_gpu_metrics_is_one_snapshot(context: ServiceContext, client: MemoryBus) -> None:
    async with monitor(context, StandInProbe(gpus())):
        request = node_monitor_pb2.MonitorGpuMetricsRequest().SerializeToString()
        answers = [
            node_monitor_pb2.MonitorGpuMetricsResponse.FromString(raw)
            async for raw in client.request_stream(subjects.MONITOR_GPU_METRICS, request)
        ]
    (response,) = answers
    assert response.HasField("header")
    assert [d.device_id for d in response.gpu_details] == [0, 1]
    assert response.gpu_details[0].data.used_gpu_memory == 1024 * MIB
    assert response.gpu_details[0].data.free_bar_1 == 8 * MIB


async def test_samples_are_published_with_their_owners(
    context: ServiceContext, client: MemoryBus
) -> None:
    published: list[NodeSample] = []

    async def collect(data: bytes, subject: str) -> None:
        published.append(NodeSample.from_json(data))

    subscription = await client.subscribe(subjects.GPU_SAMPLES, collect)
    async with monitor(context, StandInProbe(gpus())):
        await eventually(lambda: len(published) >= 2)
    await subscription.drain()
    sample = published[-1]
    assert (sample.node_id, sample.interval) == ("node-b", INTERVAL)
    assert sample.gpus[0].processes[0].owner == ProcessOwner(job_id=JOB, operator="inference")
    assert sample.gpus[0].processes[1].owner is None


async def test_utilization_covers_every_node_that_publishes(
    context: ServiceContext, client: MemoryBus
) -> None:
    # node-a publishes every 2 s, so it is forgotten 6 s after its last sample, however fast
    # this monitor samples: time enough to see it first even when a loaded machine stalls the
    # event loop for seconds (at 0.5 s it could be gone before the first look).
    other = NodeSample("node-a", 2.0, utcnow(), tuple(gpus("node-a", 0.125)[:1]))
    with_node_a = [("node-a", 0.125), ("node-b", 0.5), ("node-b", 0.0)]
    loop = asyncio.get_running_loop()

    async def gpus_by_node() -> list[tuple[str, float]]:
        (response,) = await utilization(client)
        return [(gpu.node_id, gpu.compute_utilization) for gpu in response.gpu_metrics]

    async def until(expected: list[tuple[str, float]]) -> None:
        deadline = loop.time() + 30.0
        while (seen := await gpus_by_node()) != expected:
            assert loop.time() < deadline, f"still {seen}"
            await asyncio.sleep(0.02)

    async with monitor(context, StandInProbe(gpus())):
        with capture_logs() as logs:
            published = loop.time()
            await client.publish(subjects.GPU_SAMPLES, b"not a sample")
            await client.publish(subjects.GPU_SAMPLES, other.to_json())
            await until(with_node_a)
            await until(with_node_a[1:])
            forgotten_after = loop.time() - published
    assert forgotten_after >= 5.8
    assert [e["reason"] for e in logs if e["event"] == "monitor.sample_ignored"] == [
        "a GPU sample is not JSON: Expecting value: line 1 column 1 (char 0)"
    ]


async def test_stop_with_no_scheduler_or_models_deployed_succeeds(
    context: ServiceContext, client: MemoryBus
) -> None:
    async with monitor(context, StandInProbe([])):
        raw = await client.request(
            subjects.CLARA_STOP, clara_pb2.ClaraStopRequest().SerializeToString()
        )
    response = clara_pb2.ClaraStopResponse.FromString(raw)
    assert response.header.code == 0
    assert list(response.header.messages) == [
        "scheduler: not deployed, nothing to stop",
        "models: not deployed, nothing to stop",
    ]


async def test_stop_asks_the_scheduler_and_the_models_service(
    context: ServiceContext, client: MemoryBus
) -> None:
    asked: list[tuple[str, dict[str, Any]]] = []

    def answering(counts: dict[str, int]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> bytes:
            asked.append((request.subject, json.loads(request.data)))
            return json.dumps({"stopped": counts}).encode()

        return handler

    scheduler = await client.serve(
        subjects.SCHEDULER_PLATFORM_STOP, answering({"jobs": 2}), queue="scheduler"
    )
    models = await client.serve(
        subjects.MODELS_PLATFORM_STOP, answering({"triton_servers": 1}), queue="models"
    )
    async with monitor(context, StandInProbe([])):
        raw = await client.request(
            subjects.CLARA_STOP, clara_pb2.ClaraStopRequest().SerializeToString()
        )
        # The platform keeps answering after a stop.
        assert len(await utilization(client)) == 1
    await scheduler.drain()
    await models.drain()
    response = clara_pb2.ClaraStopResponse.FromString(raw)
    assert response.header.code == 0
    assert list(response.header.messages) == [
        "scheduler: stopped jobs=2",
        "models: stopped triton_servers=1",
    ]
    assert sorted(asked) == [
        (subjects.MODELS_PLATFORM_STOP, {"reason": "Clara.Stop"}),
        (subjects.SCHEDULER_PLATFORM_STOP, {"reason": "Clara.Stop"}),
    ]


async def test_a_failing_service_fails_stop_with_every_outcome(
    context: ServiceContext, client: MemoryBus
) -> None:
    async def refuse(request: Request) -> bytes:
        raise Conflict("jobs are being recovered", code=-0x2101)

    async def stop_servers(request: Request) -> bytes:
        return b'{"stopped": {"triton_servers": 0}}'

    scheduler = await client.serve(subjects.SCHEDULER_PLATFORM_STOP, refuse, queue="scheduler")
    models = await client.serve(subjects.MODELS_PLATFORM_STOP, stop_servers, queue="models")
    async with monitor(context, StandInProbe([])):
        with pytest.raises(Conflict) as failure:
            await client.request(
                subjects.CLARA_STOP, clara_pb2.ClaraStopRequest().SerializeToString()
            )
    await scheduler.drain()
    await models.drain()
    assert failure.value.code == -0x2101
    assert failure.value.messages == (
        "scheduler: jobs are being recovered",
        "models: stopped triton_servers=0",
    )


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        (b"done", "the answer is not JSON"),
        (b'{"stopped": {"jobs": -1}}', "expected"),
        (b'{"stopped": [1]}', "expected"),
    ],
)
async def test_a_malformed_answer_fails_stop(
    client: MemoryBus, answer: bytes, complaint: str
) -> None:
    async def odd(request: Request) -> bytes:
        return answer

    subscription = await client.serve(subjects.MODELS_PLATFORM_STOP, odd, queue="models")
    stop = PlatformStop(client, timeout=1.0)
    request = Request(subjects.CLARA_STOP, clara_pb2.ClaraStopRequest().SerializeToString())
    with pytest.raises(Internal, match=r"models: answered Clara\.Stop with a malformed document"):
        await stop.handle(request)
    with pytest.raises(Internal, match=complaint):
        await stop.handle(request)
    await subscription.drain()


async def test_a_service_that_does_not_answer_in_time_fails_stop(client: MemoryBus) -> None:
    release = asyncio.Event()

    async def stuck(request: Request) -> bytes:
        await release.wait()
        return b'{"stopped": {}}'

    subscription = await client.serve(subjects.SCHEDULER_PLATFORM_STOP, stuck, queue="scheduler")
    stop = PlatformStop(client, timeout=0.5)  # the services get 80 % of it
    request = Request(subjects.CLARA_STOP, clara_pb2.ClaraStopRequest().SerializeToString())
    try:
        with pytest.raises(Unavailable) as failure:
            await stop.handle(request)
    finally:
        release.set()
        await subscription.drain()
    assert failure.value.messages == (
        f"scheduler: no answer from {subjects.SCHEDULER_PLATFORM_STOP} within 0.4 s",
        "models: not deployed, nothing to stop",
    )


async def test_version_is_still_answered(context: ServiceContext, client: MemoryBus) -> None:
    async with monitor(context, StandInProbe([])):
        raw = await client.request(
            subjects.CLARA_VERSION, clara_pb2.ClaraVersionRequest().SerializeToString()
        )
    response = clara_pb2.ClaraVersionResponse.FromString(raw)
    assert response.header.code == 0
    assert "Clara Platform API 0.8.1" in response.header.messages[0]


async def test_bad_settings_stop_the_start_before_anything_runs(context: ServiceContext) -> None:
    probe = StandInProbe(gpus())
    with pytest.raises(SettingsError, match="AORTA_MONITOR_INTERVAL"):
        await app.start(context, environ={"AORTA_MONITOR_INTERVAL": "60"}, probe=probe)
    assert probe.samples == 0
