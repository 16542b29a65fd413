"""Pipeline services through the real gateway: `aorta.v1.Services/List` shows a user the
services of its own jobs with its own jobs only, a viewer and an admin every job; ReadLogs of a
service another user's job also used is PERMISSION_DENIED, never naming that user; an admin
reads it. The caller reaches the scheduler in the `Aorta-Caller` bus header.

The gateway, the pipelines, payloads and scheduler services share one in-memory bus and
SQLite store; operators and services run on fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from aorta.api import (
    aorta_services_pb2,
    aorta_services_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.bus import CloudEvent
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app
from aorta_services.scheduler import app as scheduler_app
from aorta_services.scheduler.domain.services import service_log_key
from tests.unit.gateway.door_harness import Door, door_gateway
from tests.unit.gateway.test_ownership import TwoUsers, as_, ident
from tests.unit.scheduler.scheduler_fakes import Behaviour
from tests.unit.scheduler.scheduler_harness import BASE_ENV
from tests.unit.scheduler.service_fakes import ServiceExecutor
from tests.unit.scheduler.test_service_pipeline_services import covid


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    executor = ServiceExecutor(behaviours={"segment": Behaviour(hang=True)})
    environ = {**BASE_ENV, "AORTA_SCHEDULER_CPUS": "16"}
    async with door_gateway(tmp_path, authenticator=TwoUsers()) as serving:
        services = [
            await pipelines_app.start(serving.context),
            await payloads_app.start(serving.context),
            await scheduler_app.start(
                serving.context, environ=environ, executor=executor, replica="one"
            ),
        ]
        try:
            yield serving
        finally:
            for service in reversed(services):
                await service.stop(1.0)


async def running_job(door: Door, pipeline_id: str, caller: str) -> str:
    """A job of `pipeline_id` made and started by `caller`, once its first operator started
    (its services are ready then, with the job among their users)."""
    jobs = jobs_pb2_grpc.JobsStub(door.channel)
    job = await jobs.Create(
        jobs_pb2.JobsCreateRequest(pipeline_id=ident(pipeline_id), name=caller),
        metadata=as_(caller),
    )
    assert job.header.code == 0, job.header.messages
    job_id = str(job.job_id.value)
    running = asyncio.Event()

    async def seen(event: CloudEvent) -> None:
        if event.subject == job_id and event.event == "operator.started":
            running.set()

    subscription = await door.bus.subscribe_events("aorta.events.job.>", seen, deliver="all")
    try:
        started = await jobs.Start(
            jobs_pb2.JobsStartRequest(job_id=job.job_id), metadata=as_(caller)
        )
        assert started.header.code == 0, started.header.messages
        async with asyncio.timeout(30):
            await running.wait()
    finally:
        await subscription.drain()
    return job_id


async def listed(door: Door, caller: str) -> dict[str, set[str]]:
    """Services/List as `caller`: each service's name and the jobs shown using it."""
    stub = aorta_services_pb2_grpc.ServicesStub(door.channel)
    stream = stub.List(aorta_services_pb2.ServicesListRequest(), metadata=as_(caller))
    return {
        item.service.name: {job.value for job in item.service.job_ids}
        async for item in stream
        if item.HasField("service")
    }


async def read_logs(door: Door, service: str, caller: str) -> list[str]:
    stub = aorta_services_pb2_grpc.ServicesStub(door.channel)
    request = aorta_services_pb2.ServicesReadLogsRequest(service=service)
    stream = stub.ReadLogs(request, metadata=as_(caller))
    return [line async for item in stream for line in item.logs]


async def line(text: bytes) -> AsyncIterator[bytes]:
    yield text


async def test_services_show_a_user_its_own_jobs_and_its_own_logs_only(door: Door) -> None:
    pipelines = pipelines_pb2_grpc.PipelinesStub(door.channel)
    definition = pipelines_pb2.PipelineDefinitionFile(path="covid.yaml", content=covid())
    created = await pipelines.Create(
        iter([pipelines_pb2.PipelinesCreateRequest(definition=definition)]),
        metadata=as_("alice"),
    )
    assert created.header.code == 0, created.header.messages
    pipeline_id = created.pipeline_id.value
    alices = await running_job(door, pipeline_id, "alice")
    assert await listed(door, "alice") == {"trtis": {alices}}
    assert await listed(door, "bob") == {}
    bobs = await running_job(door, pipeline_id, "bob")

    assert await listed(door, "alice") == {"trtis": {alices}}
    assert await listed(door, "bob") == {"trtis": {bobs}}
    for caller in ("vera", "ada"):
        assert await listed(door, caller) == {"trtis": {alices, bobs}}

    service_id = (await door.context.store.collection("services").find({}))[0]["id"]
    await door.context.blobs.put(service_log_key(service_id), line(b"patient 1234\n"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await read_logs(door, "trtis", "bob")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused.value.details() == (
        f"service {service_id} is shared with other jobs than yours; only an admin may read its log"
    )
    with pytest.raises(grpc.aio.AioRpcError) as viewer:
        await read_logs(door, "trtis", "vera")
    assert viewer.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await read_logs(door, "trtis", "ada") == ["patient 1234"]
