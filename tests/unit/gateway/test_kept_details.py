"""The gateway keeps a settled Payloads.Details or Pipelines.Details answer, whole, until its
thing's event, a command for it through the gateway, or a gap; unsettled, misnamed or large
answers pass through. The services here are fakes on the gateway's memory bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from aorta import contracts, subjects
from aorta.api import (
    aorta_jobs_pb2,
    aorta_jobs_pb2_grpc,
    common_pb2,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.auth.principal import Role
from aorta.bus import Request, make_event
from aorta.bus.verbs import answering, streaming
from aorta_services.gateway.guard import Authenticates
from aorta_services.gateway.kept_answers import MAX_KEPT_BYTES
from tests.unit.gateway.door_harness import Door, FakeAuthenticator, bearer, door_gateway

PAYLOAD = "0123456789abcdef0123456789abcdef"
PIPELINE = "fedcba9876543210fedcba9876543210"
OTHER = "00000000000000000000000000000001"
JOB = "0000000000000000000000000000000a"


@dataclass
class FakePayloads:
    """A payloads service answering Details with `files` (a message each) and `metadata`."""

    files: list[str] = field(default_factory=lambda: ["/input/a", "/input/b"])
    metadata: dict[str, str] = field(default_factory=lambda: {"k": "v1"})
    settled: bool = True
    named: str = PAYLOAD
    asked: int = 0
    others_asked: int = 0

    async def details(
        self, request: payloads_pb2.PayloadsDetailsRequest
    ) -> AsyncGenerator[contracts.PayloadDetailsItem, None]:
        if request.payload_id.value == OTHER:
            # Another payload, that nothing changes.
            self.others_asked += 1
            message = payloads_pb2.PayloadsDetailsResponse(payload_id=request.payload_id)
            yield contracts.PayloadDetailsItem(message, "carol", settled=True)
            return
        self.asked += 1
        for index, name in enumerate(self.files):
            message = payloads_pb2.PayloadsDetailsResponse(
                payload_id=common_pb2.Identifier(value=self.named),
                file=payloads_pb2.PayloadFileDetails(name=name, size=1),
            )
            if index == 0:
                message.metadata.update(self.metadata)
            yield contracts.PayloadDetailsItem(message, "alice", self.settled)

    async def add_metadata(self, request: Request) -> bytes:
        message = payloads_pb2.PayloadsAddMetadataRequest.FromString(request.data)
        self.metadata.update(message.metadata)
        return payloads_pb2.PayloadsAddMetadataResponse().SerializeToString()

    async def file_added(self, added: contracts.FileAdded) -> contracts.Done:
        self.files.append(f"/input/{added.name}")
        return contracts.Done()


@asynccontextmanager
async def payloads_door(
    tmp_path: Path, service: FakePayloads, authenticator: Authenticates | None = None
) -> AsyncIterator[Door]:
    async with door_gateway(tmp_path, authenticator=authenticator) as door:
        bus = door.bus
        served = [
            await bus.serve_stream(
                subjects.PAYLOADS_DETAILS,
                streaming(contracts.PAYLOADS_DETAILS, service.details),
                queue="payloads",
            ),
            await bus.serve(subjects.PAYLOADS_ADD_METADATA, service.add_metadata, queue="payloads"),
            await bus.serve(
                subjects.PAYLOADS_FILE_ADDED,
                answering(contracts.PAYLOADS_FILE_ADDED, service.file_added),
                queue="payloads",
            ),
            await bus.serve(
                subjects.PAYLOADS_CHECK_UPLOAD,
                answering(contracts.PAYLOADS_CHECK_UPLOAD, checked),
                queue="payloads",
            ),
        ]
        try:
            yield door
        finally:
            for subscription in served:
                await subscription.drain()


async def checked(command: contracts.CheckUpload) -> contracts.UploadAllowed:
    return contracts.UploadAllowed(command.payload_id, "REUSABLE", None)


async def payload_details(
    door: Door, credentials: tuple[tuple[str, str], ...] = (), *, id: str = PAYLOAD
) -> tuple[list[str], dict[str, str], str]:
    """The files, the metadata and the owner the client got."""
    request = payloads_pb2.PayloadsDetailsRequest(payload_id=common_pb2.Identifier(value=id))
    call = payloads_pb2_grpc.PayloadsStub(door.channel).Details(request, metadata=credentials)
    names: list[str] = []
    metadata: dict[str, str] = {}
    async for item in call:
        assert item.header.code == 0, item.header
        names.append(item.file.name)
        metadata.update(item.metadata)
    owner = dict(await call.initial_metadata()).get("aorta-owner", "")
    return names, metadata, str(owner)


async def until(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def test_a_settled_payload_answer_is_kept_until_an_event_of_the_payload(
    tmp_path: Path,
) -> None:
    service = FakePayloads()
    async with payloads_door(tmp_path, service) as door:
        # The other payload's answer, kept first, is the witness that the event, not the
        # answers' age, dropped the payload's: aged out, it would have been dropped too.
        assert (await payload_details(door, id=OTHER))[2] == "carol"
        first = await payload_details(door)
        assert first == (["/input/a", "/input/b"], {"k": "v1"}, "alice")
        assert await payload_details(door) == first
        assert service.asked == 1
        # A change elsewhere (another gateway, the scheduler) comes with the payload's event.
        service.files.append("/input/c")
        event = make_event("payloads", "payload", PAYLOAD, "file.added", {"payload_id": PAYLOAD})
        await door.bus.publish_event(event)

        async def listed_c() -> bool:
            return "/input/c" in (await payload_details(door))[0]

        await until(listed_c)
        await payload_details(door, id=OTHER)
        assert service.others_asked == 1


async def test_own_commands_through_the_gateway_drop_the_answer(tmp_path: Path) -> None:
    service = FakePayloads()
    async with payloads_door(tmp_path, service) as door:
        await payload_details(door)
        stub = payloads_pb2_grpc.PayloadsStub(door.channel)
        id = common_pb2.Identifier(value=PAYLOAD)
        added = await stub.AddMetadata(
            payloads_pb2.PayloadsAddMetadataRequest(payload_id=id, metadata={"k": "v2"})
        )
        assert added.header.code == 0, added.header
        # No event reached the gateway: the command itself dropped the kept answer.
        assert (await payload_details(door))[1] == {"k": "v2"}
        upload = payloads_pb2.PayloadsUploadRequest(
            payload_id=id, details=payloads_pb2.PayloadFileDetails(name="d"), data=b"x"
        )
        uploaded = await stub.Upload(iter([upload]))
        assert uploaded.header.code == 0, uploaded.header
        assert "/input/d" in (await payload_details(door))[0]
        assert service.asked == 3


async def test_a_gap_on_the_bus_drops_the_answers(tmp_path: Path) -> None:
    service = FakePayloads()
    async with payloads_door(tmp_path, service) as door:
        await payload_details(door)
        door.bus.interrupt()
        await payload_details(door)
        assert service.asked == 2


async def test_unsettled_misnamed_and_large_answers_pass_through_uncached(
    tmp_path: Path,
) -> None:
    service = FakePayloads(settled=False)
    async with payloads_door(tmp_path, service) as door:
        await payload_details(door)
        await payload_details(door)
        assert service.asked == 2
        service.settled, service.named = True, PAYLOAD.upper()
        await payload_details(door)
        await payload_details(door)
        assert service.asked == 4
        service.named = PAYLOAD
        service.files = [
            f"/input/{index:05}" + "x" * 1000 for index in range(MAX_KEPT_BYTES // 1000)
        ]
        assert len((await payload_details(door))[0]) == len(service.files)
        await payload_details(door)
        assert service.asked == 6


@dataclass
class Pipeline:
    content: str = "v1"
    asked: int = 0
    others_asked: int = 0


async def test_a_pipeline_answer_is_kept_until_the_pipeline_changes(tmp_path: Path) -> None:
    contents = Pipeline()

    async def details(
        request: pipelines_pb2.PipelinesDetailsRequest,
    ) -> AsyncGenerator[contracts.PipelineDetailsItem, None]:
        if request.pipeline_id.value == OTHER:
            contents.others_asked += 1
            message = pipelines_pb2.PipelinesDetailsResponse(pipeline_id=request.pipeline_id)
            yield contracts.PipelineDetailsItem(message, "bob", settled=True)
            return
        contents.asked += 1
        for path in ("root.yaml", "other.yaml"):
            definition = pipelines_pb2.PipelineDefinitionFile(path=path, content=contents.content)
            message = pipelines_pb2.PipelinesDetailsResponse(
                pipeline_id=common_pb2.Identifier(value=PIPELINE), definition=definition
            )
            yield contracts.PipelineDetailsItem(message, "bob", settled=True)

    async def removed(request: Request) -> bytes:
        contents.content = "removed"
        return pipelines_pb2.PipelinesRemoveResponse().SerializeToString()

    async with door_gateway(tmp_path) as door:
        served = [
            await door.bus.serve_stream(
                subjects.PIPELINES_DETAILS,
                streaming(contracts.PIPELINES_DETAILS, details),
                queue="pipelines",
            ),
            await door.bus.serve(subjects.PIPELINES_REMOVE, removed, queue="pipelines"),
        ]
        stub = pipelines_pb2_grpc.PipelinesStub(door.channel)
        id = common_pb2.Identifier(value=PIPELINE)

        async def read(pipeline_id: common_pb2.Identifier = id) -> list[str]:
            call = stub.Details(pipelines_pb2.PipelinesDetailsRequest(pipeline_id=pipeline_id))
            items = [item async for item in call]
            assert dict(await call.initial_metadata())["aorta-owner"] == "bob"
            return [item.definition.content for item in items]

        witness = common_pb2.Identifier(value=OTHER)
        try:
            # Kept first, the other pipeline's answer shows that the event dropped this one.
            await read(witness)
            assert await read() == await read() == ["v1", "v1"]
            assert contents.asked == 1
            contents.content = "v2"
            event = make_event("pipelines", "pipeline", PIPELINE, "updated", {"change": "x"})
            await door.bus.publish_event(event)

            async def updated() -> bool:
                return await read() == ["v2", "v2"]

            await until(updated)
            await read(witness)
            assert contents.others_asked == 1
            await stub.Remove(pipelines_pb2.PipelinesRemoveRequest(pipeline_id=id))
            assert await read() == ["removed", "removed"]
        finally:
            for subscription in served:
                await subscription.drain()


async def test_the_guard_still_judges_a_call_whose_answer_is_kept(tmp_path: Path) -> None:
    service = FakePayloads()
    async with payloads_door(tmp_path, service, FakeAuthenticator()) as door:
        assert (await payload_details(door, bearer(Role.VIEWER)))[0] == ["/input/a", "/input/b"]
        request = payloads_pb2.PayloadsDetailsRequest(
            payload_id=common_pb2.Identifier(value=PAYLOAD)
        )
        call = payloads_pb2_grpc.PayloadsStub(door.channel).Details(request)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            _ = [item async for item in call]
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert await payload_details(door, bearer(Role.VIEWER)) == (
            ["/input/a", "/input/b"],
            {"k": "v1"},
            "alice",
        )
        assert service.asked == 1


async def test_a_job_deleted_through_the_gateway_drops_its_payloads_answer(
    tmp_path: Path,
) -> None:
    service = FakePayloads()

    async def deleted(request: Request) -> bytes:
        service.files = []
        response = aorta_jobs_pb2.JobsDeleteResponse(
            job_id=common_pb2.Identifier(value=JOB),
            payload_id=common_pb2.Identifier(value=PAYLOAD),
        )
        return response.SerializeToString()

    async with payloads_door(tmp_path, service) as door:
        served = await door.bus.serve(subjects.SCHEDULER_DELETE, deleted, queue="scheduler")
        try:
            assert (await payload_details(door))[0] == ["/input/a", "/input/b"]
            request = aorta_jobs_pb2.JobsDeleteRequest(job_id=common_pb2.Identifier(value=JOB))
            answer = await aorta_jobs_pb2_grpc.JobsStub(door.channel).Delete(request)
            assert answer.header.code == 0, answer.header
            # The payload's `deleted` event may come later: the Delete itself dropped it.
            assert (await payload_details(door))[0] == []
            assert service.asked == 2
        finally:
            await served.drain()
