"""The gateway passes each List message on as the service sends it: a client has the first
job while the service has not produced the next one yet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aorta import subjects
from aorta.api import common_pb2, jobs_pb2, jobs_pb2_grpc
from aorta.bus import Request
from tests.unit.gateway.door_harness import door_gateway


def _item(job_id: str) -> bytes:
    details = jobs_pb2.JobsListResponse.JobDetails(job_id=common_pb2.Identifier(value=job_id))
    return jobs_pb2.JobsListResponse(job_details=details).SerializeToString()


async def test_the_first_job_arrives_before_the_service_reads_further(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def listing(request: Request) -> AsyncIterator[bytes]:
        yield _item("a" * 32)
        await release.wait()
        yield _item("b" * 32)

    async with door_gateway(tmp_path) as door:
        served = await door.bus.serve_stream(subjects.SCHEDULER_LIST, listing, queue="scheduler")
        try:
            call = jobs_pb2_grpc.JobsStub(door.channel).List(jobs_pb2.JobsListRequest())
            stream = aiter(call)
            # A gateway that waited for the whole stream would wait here for ever: the service
            # sends its second job only once the client has the first.
            first = await anext(stream)
            release.set()
            rest = [item async for item in stream]
        finally:
            await served.drain()

    assert first.job_details.job_id.value == "a" * 32
    assert [item.job_details.job_id.value for item in rest] == ["b" * 32]
