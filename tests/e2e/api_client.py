"""The public API of one gateway through our own stubs, for the end-to-end tests that submit a
job and follow it to its end while they kill parts of the platform."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc

from aorta.api import (
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


class Client:
    """The public API of one gateway, through our own stubs."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.jobs = jobs_pb2_grpc.JobsStub(channel)
        self.pipelines = pipelines_pb2_grpc.PipelinesStub(channel)
        self.payloads = payloads_pb2_grpc.PayloadsStub(channel)

    async def submit(self, text: str) -> tuple[str, str]:
        """Creates the pipeline and a job, uploads one input and starts the job."""
        file = pipelines_pb2.PipelineDefinitionFile(path="p.yaml", content=text)
        created = await self.pipelines.Create(
            iter([pipelines_pb2.PipelinesCreateRequest(definition=file)])
        )
        assert created.header.code == 0, created.header
        job = await self.jobs.Create(
            jobs_pb2.JobsCreateRequest(pipeline_id=created.pipeline_id, name="crash-test")
        )
        assert job.header.code == 0, job.header
        upload = payloads_pb2.PayloadsUploadRequest(
            payload_id=job.payload_id,
            details=payloads_pb2.PayloadFileDetails(name="scan.dcm", size=4),
            data=b"scan",
        )
        uploaded = await self.payloads.Upload(iter([upload]))
        assert uploaded.header.code == 0, uploaded.header
        started = await self.jobs.Start(jobs_pb2.JobsStartRequest(job_id=job.job_id))
        assert started.header.code == 0, started.header
        return job.job_id.value, job.payload_id.value

    async def status(self, job_id: str) -> jobs_pb2.JobsStatusResponse:
        response = await self.jobs.Status(jobs_pb2.JobsStatusRequest(job_id=ident(job_id)))
        assert response.header.code == 0, response.header
        return response

    async def stopped(self, job_id: str, within: float = 60.0) -> jobs_pb2.JobsStatusResponse:
        deadline = time.monotonic() + within
        while True:
            status = await self.status(job_id)
            if status.state == jobs_pb2.JOB_STATE_STOPPED:
                return status
            assert time.monotonic() < deadline, f"the job did not stop: {status}"
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def client(port: int) -> AsyncIterator[Client]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Client(channel)
