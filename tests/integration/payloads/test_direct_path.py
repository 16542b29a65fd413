"""The direct path (`aorta.v1.Payloads`) on both blob stores: with S3 a client moves the bytes
itself through pre-signed URLs and the file is recorded as Payloads.Upload records it; the
platform refuses bytes other than announced, read-only payloads and other users' payloads;
with a local folder nothing is offered (docs/payloads.md). The CLI and the console on it:
tests/integration/payloads/test_direct_clients.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from aorta import subjects
from aorta.api import aorta_payloads_pb2, aorta_payloads_pb2_grpc, payloads_pb2, payloads_pb2_grpc
from aorta.auth.principal import Role
from aorta.bus.nats_server import NatsServerProcess
from aorta.errors import ErrorCode
from aorta.payload_names import checksums
from tests.integration.payloads.direct_support import (
    DATA,
    DirectStub,
    ask,
    commit,
    get,
    put,
    s3_platform,
)
from tests.integration.payloads.payload_grpc import (
    JOB,
    Platform,
    Stub,
    create,
    details,
    digest,
    download,
    ident,
    internal,
    job_payload,
    listing,
    upload,
)
from tests.unit.gateway.door_harness import FakeAuthenticator, bearer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def direct(channel: grpc.aio.Channel) -> DirectStub:
    return aorta_payloads_pb2_grpc.PayloadsStub(channel)


async def test_a_direct_upload_is_recorded_as_a_grpc_upload_is(
    stub: Stub, direct: DirectStub, platform: Platform
) -> None:
    payload_id = await create(stub)
    asked = await direct.DirectUpload(ask(payload_id, "ct/scan.dcm", len(DATA)))
    assert asked.header.code == 0, list(asked.header.messages)
    if platform.kind == "local":
        assert not asked.supported
        assert "Payloads.Upload" in asked.header.messages[0]
        return
    assert asked.supported and [link.method for link in asked.parts] == ["PUT"]
    assert await put(asked.parts[0].url, DATA) == 200
    assert await listing(stub, payload_id) == {}  # pending, not part of the payload yet

    done = await direct.CommitDirectUpload(commit(payload_id, asked.upload_id, "ct/scan.dcm", DATA))

    assert done.header.code == 0, list(done.header.messages)
    assert checksums(done.header.messages) == {"/input/ct/scan.dcm": digest(DATA)}
    assert (done.details.name, done.details.size) == ("/input/ct/scan.dcm", len(DATA))
    grpc_payload = await create(stub)
    await upload(stub, grpc_payload, [("ct/scan.dcm", DATA)])
    direct_item, grpc_item = (
        (await details(stub, payload_id))[0],
        (await details(stub, grpc_payload))[0],
    )
    assert (direct_item.file.size, list(direct_item.header.messages)) == (
        grpc_item.file.size,
        list(grpc_item.header.messages),
    )
    assert digest((await download(stub, payload_id, "/input/ct/scan.dcm"))[1]) == digest(DATA)


async def test_a_direct_download_gives_the_stored_bytes(
    stub: Stub, direct: DirectStub, platform: Platform
) -> None:
    payload_id = await create(stub)
    await upload(stub, payload_id, [("scan.dcm", DATA)])
    request = aorta_payloads_pb2.PayloadsDirectDownloadRequest(
        payload_id=ident(payload_id), name="scan.dcm"
    )
    answer = await direct.DirectDownload(request)
    assert answer.header.code == 0, list(answer.header.messages)
    assert (answer.details.name, answer.details.size) == ("/input/scan.dcm", len(DATA))
    assert answer.supported == (platform.kind == "s3")
    if answer.supported:
        assert await get(answer.link.url) == DATA


@pytest.mark.parametrize("platform", ["s3"], indirect=True)
async def test_bytes_other_than_announced_are_refused_and_dropped(
    stub: Stub, direct: DirectStub, platform: Platform
) -> None:
    payload_id = await create(stub)
    asked = await direct.DirectUpload(ask(payload_id, "scan.dcm", len(DATA)))
    await put(asked.parts[0].url, DATA[:-1] + b"\x00")

    refused = await direct.CommitDirectUpload(commit(payload_id, asked.upload_id, "scan.dcm", DATA))

    assert refused.header.code == ErrorCode.PAYLOAD_REQUEST_INVALID
    assert "MD5" in refused.header.messages[0]
    assert await listing(stub, payload_id) == {}
    again = await direct.CommitDirectUpload(commit(payload_id, asked.upload_id, "scan.dcm", DATA))
    assert again.header.code == ErrorCode.PAYLOAD_FILE_NOT_FOUND


async def test_a_read_only_payload_gets_no_link_and_no_commit(
    stub: Stub, direct: DirectStub, platform: Platform
) -> None:
    payload_id = await job_payload(platform.bus, [], job_id=uuid.uuid4().hex)
    asked = await direct.DirectUpload(ask(payload_id, "scan.dcm", len(DATA)))
    job = (await details(stub, payload_id))[0].job_id.value
    await internal(platform.bus, subjects.PAYLOADS_LOCK, {"payload_id": payload_id, "job_id": job})

    refused = await direct.DirectUpload(ask(payload_id, "scan.dcm", len(DATA)))
    assert refused.header.code == ErrorCode.PAYLOAD_READ_ONLY
    if platform.kind == "s3":
        # A link asked for before the job started: its bytes are not taken in afterwards.
        await put(asked.parts[0].url, DATA)
        late = await direct.CommitDirectUpload(
            commit(payload_id, asked.upload_id, "scan.dcm", DATA)
        )
        assert late.header.code == ErrorCode.PAYLOAD_READ_ONLY
        assert await listing(stub, payload_id) == {}
    assert JOB  # the module's default job is not this one


@pytest.fixture
async def guarded(
    request: pytest.FixtureRequest, nats_server: NatsServerProcess, tmp_path: Path
) -> AsyncIterator[grpc.aio.Channel]:
    """An S3 platform whose gateway authenticates callers (`door_harness` tokens)."""
    platform = s3_platform(request, nats_server, tmp_path, authenticator=FakeAuthenticator())
    async with platform as target, grpc.aio.insecure_channel(target) as channel:
        yield channel


async def test_only_the_owner_or_an_admin_gets_a_link(guarded: grpc.aio.Channel) -> None:
    clara: Stub = payloads_pb2_grpc.PayloadsStub(guarded)
    direct: DirectStub = aorta_payloads_pb2_grpc.PayloadsStub(guarded)
    created = await clara.Create(payloads_pb2.PayloadsCreateRequest(), metadata=bearer(Role.ADMIN))
    payload_id = created.payload_id.value
    asked = await direct.DirectUpload(ask(payload_id, "a", 4), metadata=bearer(Role.ADMIN))
    assert asked.supported
    await put(asked.parts[0].url, b"scan")
    fetch = aorta_payloads_pb2.PayloadsDirectDownloadRequest(payload_id=ident(payload_id), name="a")

    for role in (Role.USER, Role.VIEWER):  # another user's payload; a viewer moves no bytes
        for call in (
            direct.DirectUpload(ask(payload_id, "a", 4), metadata=bearer(role)),
            direct.CommitDirectUpload(
                commit(payload_id, asked.upload_id, "a", b"scan"), metadata=bearer(role)
            ),
            direct.DirectDownload(fetch, metadata=bearer(role)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    done = await direct.CommitDirectUpload(
        commit(payload_id, asked.upload_id, "a", b"scan"), metadata=bearer(Role.ADMIN)
    )
    assert done.header.code == 0, list(done.header.messages)
