"""An upload racing its job's start (issue #18, "no half states"): the job's input at the moment
it was locked is what it keeps. Each upload here is held just before its store commits it (a
put whose chunks are all in, a direct upload about to be completed) while the scheduler's
`lock` comes, which is refused until the upload ended; on both blob stores, on the gRPC path
and on the direct path (S3 only). A lock before the commit is test_guards.py's."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from aorta import subjects
from aorta.api import aorta_payloads_pb2_grpc, payloads_pb2_grpc
from aorta.blobs import BlobInfo, BlobStore
from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.errors import Conflict, ErrorCode, Unavailable
from aorta.runtime.service import service_context
from aorta_services.gateway import app as gateway_app
from aorta_services.payloads import app as payloads_app
from tests.integration.payloads.conftest import RPC_TIMEOUT, platform_settings
from tests.integration.payloads.direct_support import DirectStub, ask, commit, put
from tests.integration.payloads.payload_grpc import (
    JOB,
    Stub,
    details,
    download,
    internal,
    job_payload,
    upload,
)

pytestmark = pytest.mark.timeout(60)


class HeldCommits:
    """The gateway's blob store, holding the commits of uploads once `armed` until `go_on` is
    set: a put once all its chunks are in, a direct upload before it is completed. `held` is
    set when one waits; with `fail`, the commit then fails as a store out of reach does."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner
        self.armed = False
        self.fail = False
        self.held = asyncio.Event()
        self.go_on = asyncio.Event()

    async def _hold(self) -> None:
        if self.armed:
            self.held.set()
            await self.go_on.wait()
            if self.fail:
                raise Unavailable("the store is out of reach")

    async def put(self, key: str, chunks: AsyncIterable[bytes | memoryview]) -> BlobInfo:
        async def all_then_held() -> AsyncIterator[bytes | memoryview]:
            async for chunk in chunks:
                yield chunk
            await self._hold()

        return await self._inner.put(key, all_then_held())

    async def complete_upload(
        self, key: str, upload_id: str, *, size: int, part_md5s: Sequence[str]
    ) -> BlobInfo:
        await self._hold()
        completed: BlobInfo = await self._inner.complete_upload(  # type: ignore[attr-defined]
            key, upload_id, size=size, part_md5s=part_md5s
        )
        return completed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclasses.dataclass(frozen=True)
class Racing:
    bus: NatsBus
    held: HeldCommits
    stub: Stub
    direct: DirectStub


@pytest.fixture(params=["local", "s3"])
async def racing(
    request: pytest.FixtureRequest, nats_server: NatsServerProcess, tmp_path: Path
) -> AsyncIterator[Racing]:
    """The payloads service on the real store, the gateway on it through `HeldCommits`."""
    settings = platform_settings(request, request.param, nats_server, tmp_path)
    bus = await NatsBus.connect(settings.nats_url, name="aorta-test", default_timeout=RPC_TIMEOUT)
    async with service_context(settings, bus) as context:
        payloads = await payloads_app.start(context)
        held = HeldCommits(context.blobs)
        held_context = dataclasses.replace(context, blobs=held)  # type: ignore[arg-type]
        gateway = await gateway_app.start(held_context, address="127.0.0.1:0")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                yield Racing(
                    bus,
                    held,
                    payloads_pb2_grpc.PayloadsStub(channel),
                    aorta_payloads_pb2_grpc.PayloadsStub(channel),
                )
        finally:
            await gateway.stop(1.0)
            await payloads.stop(1.0)
            await bus.close()


async def lock(racing: Racing, payload_id: str) -> Any:
    """The scheduler's lock at Start."""
    document = {"payload_id": payload_id, "job_id": JOB}
    return await internal(racing.bus, subjects.PAYLOADS_LOCK, document)


async def refused_while_committing(racing: Racing, payload_id: str) -> bool:
    """Whether the lock is refused because the payload is receiving a file."""
    with pytest.raises(Conflict) as refused:
        await lock(racing, payload_id)
    return refused.value.code == ErrorCode.PAYLOAD_IN_USE and (
        f"payload {payload_id} is still receiving files; start job {JOB} once its upload ends"
        in str(refused.value)
    )


async def state(racing: Racing, payload_id: str) -> tuple[list[tuple[str, int, str]], bytes]:
    """What a job reads of its input: every file's name, size and recorded checksum, and the
    bytes of `scan.dcm`."""
    listed = [
        (item.file.name, item.file.size, item.header.messages[0] if item.header.messages else "")
        for item in await details(racing.stub, payload_id)
    ]
    return listed, (await download(racing.stub, payload_id, "/input/scan.dcm"))[1]


async def with_scan(racing: Racing) -> tuple[str, tuple[list[tuple[str, int, str]], bytes]]:
    """A job's payload holding `scan.dcm`, and its state; the next commit is held."""
    payload_id = await job_payload(racing.bus, [])
    await upload(racing.stub, payload_id, [("scan.dcm", b"original")])
    before = await state(racing, payload_id)
    racing.held.armed = True
    return payload_id, before


def direct_commit(racing: Racing, payload_id: str, data: bytes) -> Awaitable[Any]:
    async def committed() -> Any:
        asked = await racing.direct.DirectUpload(ask(payload_id, "scan.dcm", len(data)))
        assert await put(asked.parts[0].url, data) == 200
        return await racing.direct.CommitDirectUpload(
            commit(payload_id, asked.upload_id, "scan.dcm", data)
        )

    return committed()


async def test_a_job_does_not_start_while_an_upload_commits_into_its_input(
    racing: Racing,
) -> None:
    payload_id, before = await with_scan(racing)
    call = asyncio.ensure_future(upload(racing.stub, payload_id, [("scan.dcm", b"replaced")]))
    await asyncio.wait_for(racing.held.held.wait(), 10)
    assert await refused_while_committing(racing, payload_id)
    assert await state(racing, payload_id) == before
    racing.held.go_on.set()
    assert (await call).header.code == 0
    assert await lock(racing, payload_id) == {}
    at_start = await state(racing, payload_id)
    assert at_start[1] == b"replaced"
    refused = await upload(racing.stub, payload_id, [("scan.dcm", b"too late")])
    assert refused.header.code == ErrorCode.PAYLOAD_READ_ONLY
    assert await state(racing, payload_id) == at_start


@pytest.mark.parametrize("racing", ["s3"], indirect=True)
async def test_a_job_does_not_start_while_a_direct_upload_commits_into_its_input(
    racing: Racing,
) -> None:
    payload_id, before = await with_scan(racing)
    call = asyncio.ensure_future(direct_commit(racing, payload_id, b"replaced"))
    await asyncio.wait_for(racing.held.held.wait(), 10)
    assert await refused_while_committing(racing, payload_id)
    assert await state(racing, payload_id) == before
    racing.held.go_on.set()
    assert (await call).header.code == 0
    assert await lock(racing, payload_id) == {}
    assert (await state(racing, payload_id))[1] == b"replaced"


async def test_a_failed_commit_lets_the_job_start_with_its_input_as_it_was(
    racing: Racing,
) -> None:
    payload_id, before = await with_scan(racing)
    racing.held.fail = True
    racing.held.go_on.set()
    reply = await upload(racing.stub, payload_id, [("scan.dcm", b"replaced")])
    assert reply.header.code == ErrorCode.SERVICE_UNAVAILABLE
    assert await lock(racing, payload_id) == {}
    assert await state(racing, payload_id) == before


@pytest.mark.parametrize("racing", ["s3"], indirect=True)
async def test_a_failed_direct_commit_lets_the_job_start_with_its_input_as_it_was(
    racing: Racing,
) -> None:
    payload_id, before = await with_scan(racing)
    racing.held.fail = True
    racing.held.go_on.set()
    reply = await direct_commit(racing, payload_id, b"replaced")
    assert reply.header.code == ErrorCode.SERVICE_UNAVAILABLE
    assert await lock(racing, payload_id) == {}
    assert await state(racing, payload_id) == before
