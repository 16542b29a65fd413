"""Ownership through the real gateway: a user may not start, cancel or read the logs of
another user's job, nor move or delete the bytes of another user's payload (gRPC
PERMISSION_DENIED naming the thing, never its owner), nor read another user's job's Status or
payload's Details, even one the gateway keeps; an admin may; Status and Details tell every
caller who may read them who created the thing in the `aorta-owner` initial metadata; List and
Page show a user its own jobs only.

The gateway, the pipelines, payloads and scheduler services share one in-memory bus and
SQLite store; operators run on a fake executor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from aorta.api import (
    aorta_jobs_pb2,
    aorta_jobs_pb2_grpc,
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.auth.ownership import OWNER_METADATA
from aorta.auth.principal import Principal, Role
from aorta.errors import Unauthenticated
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app
from aorta_services.scheduler import app as scheduler_app
from tests.unit.gateway.door_harness import Door, door_gateway
from tests.unit.scheduler.scheduler_fakes import FakeExecutor
from tests.unit.scheduler.scheduler_harness import BASE_ENV, CHAIN

PRINCIPALS: Mapping[str, Principal] = {
    "alice-token": Principal("alice", frozenset({Role.USER})),
    "bob-token": Principal("bob", frozenset({Role.USER})),
    "vera-token": Principal("vera", frozenset({Role.VIEWER})),
    "ada-token": Principal("ada", frozenset({Role.ADMIN})),
}


class TwoUsers:
    """Knows the tokens of `PRINCIPALS`."""

    async def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        for key, value in metadata:
            if key == "authorization" and isinstance(value, str):
                principal = PRINCIPALS.get(value.removeprefix("Bearer "))
                if principal is not None:
                    return principal
        raise Unauthenticated("this platform requires a known token")


def as_(name: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {name}-token"),)


@asynccontextmanager
async def two_users_door(tmp_path: Path) -> AsyncIterator[Door]:
    """A gateway admitting `TwoUsers`' callers, with the pipelines, payloads and scheduler
    services behind it (the scheduler's executor a fake)."""
    async with door_gateway(tmp_path, authenticator=TwoUsers()) as serving:
        services = [
            await pipelines_app.start(serving.context),
            await payloads_app.start(serving.context),
            await scheduler_app.start(
                serving.context, environ=BASE_ENV, executor=FakeExecutor(), replica="one"
            ),
        ]
        try:
            yield serving
        finally:
            for service in reversed(services):
                await service.stop(1.0)


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    async with two_users_door(tmp_path) as serving:
        yield serving


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


async def alices_job(door: Door) -> tuple[str, str]:
    """A pipeline, and a job of it with one input file, all made by alice: (job, payload)."""
    pipelines = pipelines_pb2_grpc.PipelinesStub(door.channel)
    definition = pipelines_pb2.PipelineDefinitionFile(path="chain.yaml", content=CHAIN)
    created = await pipelines.Create(
        iter([pipelines_pb2.PipelinesCreateRequest(definition=definition)]),
        metadata=as_("alice"),
    )
    assert created.header.code == 0, created.header.messages
    jobs = jobs_pb2_grpc.JobsStub(door.channel)
    job = await jobs.Create(
        jobs_pb2.JobsCreateRequest(pipeline_id=created.pipeline_id, name="mine"),
        metadata=as_("alice"),
    )
    assert job.header.code == 0, job.header.messages
    await upload(door, job.payload_id.value, "alice")
    return job.job_id.value, job.payload_id.value


async def upload(door: Door, payload_id: str, caller: str) -> payloads_pb2.PayloadsUploadResponse:
    payloads = payloads_pb2_grpc.PayloadsStub(door.channel)
    message = payloads_pb2.PayloadsUploadRequest(
        payload_id=ident(payload_id),
        details=payloads_pb2.PayloadFileDetails(name="scan.dcm", size=4),
        data=b"scan",
    )
    response: payloads_pb2.PayloadsUploadResponse = await payloads.Upload(
        iter([message]), metadata=as_(caller)
    )
    return response


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "alice" not in (caught.value.details() or "")
    return caught.value


async def download(door: Door, payload_id: str, caller: str) -> bytes:
    payloads = payloads_pb2_grpc.PayloadsStub(door.channel)
    request = payloads_pb2.PayloadsDownloadRequest(
        payload_id=ident(payload_id), name="/input/scan.dcm"
    )
    return b"".join(
        [message.data async for message in payloads.Download(request, metadata=as_(caller))]
    )


async def read_logs(door: Door, job_id: str, caller: str) -> list[str]:
    jobs = jobs_pb2_grpc.JobsStub(door.channel)
    request = jobs_pb2.JobsReadLogsRequest(job_id=ident(job_id), operator_name="first")
    return [
        line async for item in jobs.ReadLogs(request, metadata=as_(caller)) for line in item.logs
    ]


async def test_another_user_may_not_touch_a_users_job_or_payload(door: Door) -> None:
    job_id, payload_id = await alices_job(door)
    jobs = jobs_pb2_grpc.JobsStub(door.channel)
    payloads = payloads_pb2_grpc.PayloadsStub(door.channel)
    job, payload = ident(job_id), ident(payload_id)
    cancel = await refused(jobs.Cancel(jobs_pb2.JobsCancelRequest(job_id=job), metadata=as_("bob")))
    assert cancel.details() == f"job {job_id} belongs to another user"
    await refused(jobs.Start(jobs_pb2.JobsStartRequest(job_id=job), metadata=as_("bob")))
    await refused(read_logs(door, job_id, "bob"))
    downloaded = await refused(download(door, payload_id, "bob"))
    assert downloaded.details() == f"payload {payload_id} belongs to another user"
    await refused(upload(door, payload_id, "bob"))
    await refused(
        payloads.Delete(payloads_pb2.PayloadsDeleteRequest(payload_id=payload), metadata=as_("bob"))
    )
    status = await jobs.Status(jobs_pb2.JobsStatusRequest(job_id=job), metadata=as_("alice"))
    assert status.state == jobs_pb2.JOB_STATE_PENDING
    assert await download(door, payload_id, "alice") == b"scan"


async def test_an_admin_may(door: Door) -> None:
    job_id, payload_id = await alices_job(door)
    jobs = jobs_pb2_grpc.JobsStub(door.channel)
    assert await download(door, payload_id, "ada") == b"scan"
    await read_logs(door, job_id, "ada")
    canceled = await jobs.Cancel(
        jobs_pb2.JobsCancelRequest(job_id=ident(job_id)), metadata=as_("ada")
    )
    assert canceled.header.code == 0 and canceled.job_status == jobs_pb2.JOB_STATUS_CANCELED


async def test_status_and_details_name_the_owner_to_who_may_read_them(door: Door) -> None:
    job_id, payload_id = await alices_job(door)
    jobs = jobs_pb2_grpc.JobsStub(door.channel)
    payloads = payloads_pb2_grpc.PayloadsStub(door.channel)
    for caller in ("alice", "vera", "ada"):
        call = jobs.Status(jobs_pb2.JobsStatusRequest(job_id=ident(job_id)), metadata=as_(caller))
        assert (await call).job_id.value == job_id
        assert (OWNER_METADATA, "alice") in tuple(await call.initial_metadata())
        stream = payloads.Details(
            payloads_pb2.PayloadsDetailsRequest(payload_id=ident(payload_id)), metadata=as_(caller)
        )
        assert [item.file.name async for item in stream] == ["/input/scan.dcm"]
        assert (OWNER_METADATA, "alice") in tuple(await stream.initial_metadata())


async def drained(stream: Any) -> list[Any]:
    return [item async for item in stream]


async def status_and_details(door: Door, job_id: str, payload_id: str, caller: str) -> None:
    jobs = jobs_pb2_grpc.JobsStub(door.channel)
    payloads = payloads_pb2_grpc.PayloadsStub(door.channel)
    await jobs.Status(jobs_pb2.JobsStatusRequest(job_id=ident(job_id)), metadata=as_(caller))
    request = payloads_pb2.PayloadsDetailsRequest(payload_id=ident(payload_id))
    await drained(payloads.Details(request, metadata=as_(caller)))


@pytest.mark.parametrize("first", ["bob", "alice", "vera"], ids=lambda who: f"{who}-first")
async def test_another_user_reads_neither_status_nor_details_kept_or_not(
    door: Door, first: str
) -> None:
    """A settled answer is kept at the gateway after the first read: whoever read it first,
    bob never gets it."""
    job_id, payload_id = await alices_job(door)
    jobs = jobs_pb2_grpc.JobsStub(door.channel)
    payloads = payloads_pb2_grpc.PayloadsStub(door.channel)
    if first != "bob":
        await status_and_details(door, job_id, payload_id, first)
    for _ in range(2):
        status = await refused(
            jobs.Status(jobs_pb2.JobsStatusRequest(job_id=ident(job_id)), metadata=as_("bob"))
        )
        assert status.details() == f"job {job_id} belongs to another user"
        request = payloads_pb2.PayloadsDetailsRequest(payload_id=ident(payload_id))
        details = await refused(drained(payloads.Details(request, metadata=as_("bob"))))
        assert details.details() == f"payload {payload_id} belongs to another user"
    await status_and_details(door, job_id, payload_id, "alice")


async def test_list_shows_a_user_its_own_jobs_and_a_viewer_all(door: Door) -> None:
    job_id, _ = await alices_job(door)
    jobs = jobs_pb2_grpc.JobsStub(door.channel)

    async def listed(caller: str) -> list[str]:
        stream = jobs.List(jobs_pb2.JobsListRequest(), metadata=as_(caller))
        return [
            item.job_details.job_id.value async for item in stream if item.HasField("job_details")
        ]

    assert await listed("alice") == [job_id]
    assert await listed("bob") == []
    assert await listed("vera") == [job_id]
    assert await listed("ada") == [job_id]


async def test_a_page_of_jobs_answers_as_list_does(door: Door) -> None:
    job_id, _ = await alices_job(door)
    jobs = aorta_jobs_pb2_grpc.JobsStub(door.channel)

    async def paged(caller: str) -> list[str]:
        request = aorta_jobs_pb2.JobsPageRequest(page_size=10)
        answer = await jobs.Page(request, metadata=as_(caller))
        assert answer.header.code == 0 and answer.next_cursor == ""
        return [job.job_id.value for job in answer.jobs]

    assert await paged("alice") == [job_id]
    assert await paged("bob") == []
    assert await paged("vera") == [job_id]
    assert await paged("ada") == [job_id]


async def test_a_job_may_take_only_input_payloads_its_creator_owns(door: Door) -> None:
    job_id, _ = await alices_job(door)
    payloads = payloads_pb2_grpc.PayloadsStub(door.channel)
    reusable = await payloads.Create(payloads_pb2.PayloadsCreateRequest(), metadata=as_("alice"))
    await upload(door, reusable.payload_id.value, "alice")
    jobs = jobs_pb2_grpc.JobsStub(door.channel)
    of_job = jobs_pb2.JobsStatusRequest(job_id=ident(job_id))
    pipeline_id = (await jobs.Status(of_job, metadata=as_("alice"))).pipeline_id

    async def create(caller: str) -> jobs_pb2.JobsCreateResponse:
        request = jobs_pb2.JobsCreateRequest(
            pipeline_id=pipeline_id, name="theirs", input_payloads=[reusable.payload_id]
        )
        response: jobs_pb2.JobsCreateResponse = await jobs.Create(request, metadata=as_(caller))
        return response

    taken = await refused(create("bob"))
    assert taken.details() == f"payload {reusable.payload_id.value} belongs to another user"
    assert (await create("alice")).header.code == 0
