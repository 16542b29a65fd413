"""Clara.Utilization through the real gateway, monitor and scheduler: alice sees her own job's
GPU process with its job and operator, bob's only as "another user's job" (its load, not its
job), and bob the other way round, in a single answer and in every message of a watch; a
viewer and an admin see every job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest

from aorta.api import (
    clara_pb2,
    clara_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.gpu import GpuProcess, GpuSample, ProcessOwner
from aorta.ids import JobId
from aorta.testing.gpu import StandInProbe, StaticOwners
from aorta.timestamps import utcnow
from aorta_services.monitor import app as monitor_app
from tests.unit.gateway.door_harness import Door
from tests.unit.gateway.test_ownership import as_, two_users_door
from tests.unit.scheduler.scheduler_harness import CHAIN

MONITOR_ENV = {"AORTA_MONITOR_INTERVAL": "0.1", "AORTA_NODE_ID": "node-a"}
Shown = list[tuple[str, str]]


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    async with two_users_door(tmp_path) as serving:
        yield serving


async def job_of(door: Door, caller: str) -> JobId:
    pipelines = pipelines_pb2_grpc.PipelinesStub(door.channel)
    definition = pipelines_pb2.PipelineDefinitionFile(path="chain.yaml", content=CHAIN)
    created = await pipelines.Create(
        iter([pipelines_pb2.PipelinesCreateRequest(definition=definition)]), metadata=as_(caller)
    )
    job = await jobs_pb2_grpc.JobsStub(door.channel).Create(
        jobs_pb2.JobsCreateRequest(pipeline_id=created.pipeline_id, name=caller),
        metadata=as_(caller),
    )
    assert job.header.code == 0, job.header.messages
    return JobId(job.job_id.value)


async def shown(door: Door, caller: str, *, watch: bool = False, messages: int = 1) -> list[Shown]:
    """The GPU's processes in each of the first `messages` answers `caller` receives."""
    clara = clara_pb2_grpc.ClaraStub(door.channel)
    call = clara.Utilization(clara_pb2.ClaraUtilizationRequest(watch=watch), metadata=as_(caller))
    answers: list[Shown] = []
    async with aclosing(aiter(call)) as stream:  # type: ignore[type-var]
        async for answer in stream:
            (gpu,) = answer.gpu_metrics
            answers.append([(p.name, p.job_id.value) for p in gpu.process_details])
            if len(answers) == messages:
                break
    call.cancel()
    return answers


async def test_a_user_sees_other_users_gpu_processes_without_their_job(door: Door) -> None:
    alices, bobs = await job_of(door, "alice"), await job_of(door, "bob")
    gpu = GpuSample(
        node_id="node-a",
        index=0,
        bus_id="00000000:3B:00.0",
        timestamp=utcnow(),
        processes=(GpuProcess(1, None, "python3"), GpuProcess(2, None, "python3")),
    )
    owners = StaticOwners(
        {1: ProcessOwner(alices, "segmentation"), 2: ProcessOwner(bobs, "classification")}
    )
    monitor = await monitor_app.start(
        door.context, environ=MONITOR_ENV, probe=StandInProbe([gpu]), owners=owners
    )
    try:
        every = [("segmentation", alices), ("classification", bobs)]
        hidden = ("another user's job", "")
        assert await shown(door, "alice") == [[("segmentation", alices), hidden]]
        assert await shown(door, "bob") == [[hidden, ("classification", bobs)]]
        assert (
            await shown(door, "alice", watch=True, messages=3)
            == [[("segmentation", alices), hidden]] * 3
        )
        for caller in ("vera", "ada"):
            assert await shown(door, caller) == [every]
    finally:
        await monitor.stop(1.0)
