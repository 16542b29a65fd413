"""The direct path (`aorta.v1.Payloads`) on both blob stores: with S3 a client moves the bytes
itself through pre-signed URLs and the file is recorded as Payloads.Upload records it; the
platform refuses bytes other than announced, read-only payloads and other users' payloads;
with a local folder nothing is offered and the CLI falls back to gRPC."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
import urllib3
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from click.testing import CliRunner, Result

from aorta import subjects
from aorta.api import aorta_payloads_pb2, aorta_payloads_pb2_grpc, payloads_pb2, payloads_pb2_grpc
from aorta.auth.principal import Role
from aorta.blobs.port import DIRECT_PART_SIZE
from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.cli.direct import DirectPath
from aorta.errors import ErrorCode
from aorta.payload_names import checksums
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.ports import free_port
from aorta_services.gateway import app as gateway_app
from aorta_services.payloads import app as payloads_app
from aorta_services.web.context import Console
from aorta_services.web.events import EventHub
from aorta_services.web.platform_client import Platform as WebPlatform
from aorta_services.web.server import build_app
from aorta_services.web.sessions import Sessions
from aorta_services.web.settings import WebSettings
from aorta_services.web.utilization import History
from tests.integration.cli.cli_support import root_group
from tests.integration.payloads.conftest import RPC_TIMEOUT, blob_settings
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
    pattern,
    upload,
)
from tests.unit.gateway.door_harness import FakeAuthenticator, bearer

pytestmark = pytest.mark.timeout(60)

DATA = pattern(3 << 20, seed=7)

if TYPE_CHECKING:
    from aorta.api.aorta_payloads_pb2_grpc import PayloadsAsyncStub as DirectStub
else:
    DirectStub = aorta_payloads_pb2_grpc.PayloadsStub


@pytest.fixture
def direct(channel: grpc.aio.Channel) -> DirectStub:
    return aorta_payloads_pb2_grpc.PayloadsStub(channel)


async def put(url: str, body: bytes) -> int:
    """The client's PUT: nothing but the URL."""
    response = await asyncio.to_thread(urllib3.PoolManager().request, "PUT", url, body=body)
    return response.status


async def get(url: str) -> bytes:
    response = await asyncio.to_thread(urllib3.PoolManager().request, "GET", url)
    assert response.status == 200
    return response.data


def ask(payload_id: str, name: str, size: int) -> aorta_payloads_pb2.PayloadsDirectUploadRequest:
    return aorta_payloads_pb2.PayloadsDirectUploadRequest(
        payload_id=ident(payload_id), name=name, size=size
    )


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def commit(
    payload_id: str, upload_id: str, name: str, data: bytes
) -> aorta_payloads_pb2.PayloadsCommitDirectUploadRequest:
    return aorta_payloads_pb2.PayloadsCommitDirectUploadRequest(
        payload_id=ident(payload_id),
        upload_id=upload_id,
        details=payloads_pb2.PayloadFileDetails(name=name, size=len(data), mode=0o640),
        sha256=digest(data),
        part_md5s=[md5(data)],
    )


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


@asynccontextmanager
async def s3_platform(
    request: pytest.FixtureRequest,
    nats_server: NatsServerProcess,
    tmp_path: Path,
    *,
    authenticator: FakeAuthenticator | None = None,
    **environ: str,
) -> AsyncIterator[str]:
    """An S3 platform in this process with extra settings; yields the gateway's target."""
    settings = Settings.from_env(
        {
            "AORTA_DATA_DIR": str(tmp_path),
            "AORTA_NATS_URL": nats_server.url,
            "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT),
            **blob_settings("s3", request),
            **environ,
        }
    )
    bus = await NatsBus.connect(settings.nats_url, name="aorta-test", default_timeout=RPC_TIMEOUT)
    async with service_context(settings, bus) as context:
        payloads = await payloads_app.start(context)
        gateway = await gateway_app.start(
            context, address="127.0.0.1:0", authenticator=authenticator
        )
        try:
            yield f"127.0.0.1:{gateway.port}"
        finally:
            await gateway.stop(1.0)
            await payloads.stop(1.0)
            await bus.close()


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


def cli(target: str, tmp_path: Path, *args: str | Path) -> Result:
    environ = {
        "AORTA_HOST": target,
        "AORTA_CONFIG": str(tmp_path / "no-config.yaml"),
        "NO_COLOR": "1",
    }
    return CliRunner().invoke(root_group(), [str(a) for a in args], env=environ)


@pytest.mark.parametrize("via_gateway", [False, True])
async def test_the_cli_moves_files_on_the_path_offered(
    stub: Stub, platform: Platform, tmp_path: Path, via_gateway: bool
) -> None:
    payload_id = await create(stub)
    source = tmp_path / "study"
    (source / "series").mkdir(parents=True)
    (source / "series" / "1.dcm").write_bytes(DATA)
    (source / "empty.dat").write_bytes(b"")
    flag = ["--via-gateway"] if via_gateway else []

    sent = await asyncio.to_thread(
        cli, platform.target, tmp_path, "upload", *flag, payload_id, source
    )
    assert sent.exit_code == 0, sent.output
    fetched = await asyncio.to_thread(
        cli, platform.target, tmp_path, "download", "payload", *flag, payload_id, tmp_path / "out"
    )

    assert fetched.exit_code == 0, fetched.output
    took_direct = platform.kind == "s3" and not via_gateway
    assert ("2 straight to the blob store" in sent.output) == took_direct, sent.output
    assert ("2 straight from the blob store" in fetched.output) == took_direct, fetched.output
    assert (tmp_path / "out" / "input" / "series" / "1.dcm").read_bytes() == DATA
    assert (tmp_path / "out" / "input" / "empty.dat").read_bytes() == b""
    found = await listing(stub, payload_id)
    assert found == {"/input/empty.dat": 0, "/input/series/1.dcm": len(DATA)}


async def _no_owner(job_id: str, token: str | None) -> str:
    raise AssertionError("no event is looked at here")


@pytest.fixture
async def console_api(platform: Platform) -> AsyncIterator[TestClient[Request, Application]]:
    """The web console's JSON API in this process, in front of `platform`'s gateway."""
    settings = WebSettings(
        address="127.0.0.1:0",
        gateway=platform.target,
        gateway_ca=None,
        gateway_server_name="",
        gateway_plaintext=True,
        max_upload_bytes=1 << 20,
        session_seconds=60.0,
        tls_cert=None,
        tls_key=None,
    )
    gateway = WebPlatform.connect(platform.target, tls=False)
    parts = Console(
        platform=gateway,
        sessions=Sessions(60.0),
        hub=EventHub(_no_owner),
        settings=settings,
        history=History(),
        secure_cookies=False,
    )
    async with TestClient(TestServer(build_app(parts))) as client:
        yield client
    await gateway.close()


async def test_the_console_api_hands_out_links_a_browser_uses(
    stub: Stub, platform: Platform, console_api: TestClient[Request, Application]
) -> None:
    payload_id = await create(stub)
    base = f"/api/payloads/{payload_id}"
    csrf = {"X-Aorta-Console": "1"}

    started = await console_api.post(
        f"{base}/direct-uploads", json={"name": "scan.dcm", "size": len(DATA)}, headers=csrf
    )
    assert started.status == 200, await started.text()
    asked = await started.json()
    assert asked["supported"] == (platform.kind == "s3")
    if not asked["supported"]:
        fetched = await console_api.get(f"{base}/direct-download", params={"name": "scan.dcm"})
        assert fetched.status == 404  # no such file; a present one would say supported: false
        return
    assert [link["method"] for link in asked["parts"]] == ["PUT"]
    assert await put(asked["parts"][0]["url"], DATA) == 200
    committed = await console_api.post(
        f"{base}/direct-uploads/{asked['upload_id']}/commit",
        json={
            "name": "scan.dcm",
            "size": len(DATA),
            "sha256": digest(DATA),
            "part_md5s": [md5(DATA)],
        },
        headers=csrf,
    )
    assert committed.status == 200, await committed.text()
    assert await committed.json() == {
        "name": "/input/scan.dcm",
        "size": len(DATA),
        "mode": 0o644,
        "sha256": digest(DATA),
    }
    fetched = await console_api.get(f"{base}/direct-download", params={"name": "scan.dcm"})
    link = (await fetched.json())["link"]
    assert await get(link["url"]) == DATA
    refused = await console_api.post(f"{base}/direct-uploads", json={"name": "a", "size": 1})
    assert refused.status == 403  # no CSRF header


async def test_the_cli_goes_through_the_platform_when_the_store_is_out_of_reach(
    request: pytest.FixtureRequest, nats_server: NatsServerProcess, tmp_path: Path
) -> None:
    unreachable = f"127.0.0.1:{free_port()}"  # nothing listens there
    source = tmp_path / "scan.dcm"
    source.write_bytes(DATA)
    platform = s3_platform(request, nats_server, tmp_path, AORTA_S3_PUBLIC_ENDPOINT=unreachable)
    async with platform as target, grpc.aio.insecure_channel(target) as channel:
        payload_id = await create(payloads_pb2_grpc.PayloadsStub(channel))

        sent = await asyncio.to_thread(cli, target, tmp_path, "upload", payload_id, source)
        fetched = await asyncio.to_thread(
            cli, target, tmp_path, "download", "payload", payload_id, tmp_path / "out"
        )

    assert sent.exit_code == 0, sent.output
    assert f"the blob store at {unreachable} cannot be reached" in sent.output
    assert "straight to the blob store" not in sent.output
    assert fetched.exit_code == 0, fetched.output
    assert f"the blob store at {unreachable} cannot be reached" in fetched.output
    assert (tmp_path / "out" / "input" / "scan.dcm").read_bytes() == DATA


@pytest.mark.parametrize("platform", ["s3"], indirect=True)
async def test_the_cli_sends_a_large_file_in_parts_at_once(
    stub: Stub, platform: Platform, tmp_path: Path
) -> None:
    payload_id = await create(stub)
    # Six parts, the last of 5 bytes: more than the CLI sends at once, so a stream sends two
    # on the connection it keeps.
    large = pattern(DIRECT_PART_SIZE * 5 + 5, seed=3)
    (tmp_path / "large.raw").write_bytes(large)

    sent = await asyncio.to_thread(
        cli, platform.target, tmp_path, "upload", payload_id, tmp_path / "large.raw"
    )

    assert sent.exit_code == 0, sent.output
    assert "1 straight to the blob store" in sent.output
    found = await details(stub, payload_id)
    assert checksums(found[0].header.messages) == {"/input/large.raw": digest(large)}
    assert digest((await download(stub, payload_id, "/input/large.raw"))[1]) == digest(large)


@pytest.mark.parametrize("platform", ["s3"], indirect=True)
async def test_a_download_of_one_named_file_asks_for_its_link_while_listing(
    stub: Stub, platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload_id = await create(stub)
    source = tmp_path / "study"
    (source / "series").mkdir(parents=True)
    (source / "series" / "1.dcm").write_bytes(DATA)
    (source / "series" / "2.dcm").write_bytes(DATA[:1000])
    sent = await asyncio.to_thread(cli, platform.target, tmp_path, "upload", payload_id, source)
    assert sent.exit_code == 0, sent.output
    asked: list[str] = []
    original = DirectPath.link

    def link(self: DirectPath, payload: str, name: str) -> object:
        asked.append(name)
        return original(self, payload, name)

    monkeypatch.setattr(DirectPath, "link", link)

    one = await asyncio.to_thread(
        cli, platform.target, tmp_path, "download", "payload", payload_id,
        "/input/series/1.dcm", tmp_path / "one",
    )  # fmt: skip
    named, asked[:] = list(asked), []
    folder = await asyncio.to_thread(
        cli, platform.target, tmp_path, "download", "payload", payload_id,
        "/input/series", tmp_path / "folder",
    )  # fmt: skip

    assert one.exit_code == 0, one.output
    assert "1 straight from the blob store" in one.output
    assert named == ["/input/series/1.dcm"]  # the early link, used: no second request
    assert (tmp_path / "one" / "1.dcm").read_bytes() == DATA
    assert folder.exit_code == 0, folder.output
    assert "2 straight from the blob store" in folder.output
    # The early link of a folder is refused; each file selected gets its own.
    assert asked == ["/input/series", "/input/series/1.dcm", "/input/series/2.dcm"]
    assert (tmp_path / "folder" / "series" / "2.dcm").read_bytes() == DATA[:1000]
