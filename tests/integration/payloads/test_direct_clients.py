"""The direct path's own clients: the CLI's upload and download (straight to the blob store
when it offers links, through the gateway when asked or when the store is out of reach; large
files in parts, the link of a named file asked while listing) and the console's JSON API, whose
links a browser uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from click.testing import CliRunner, Result

from aorta.api import payloads_pb2_grpc
from aorta.blobs.port import DIRECT_PART_SIZE
from aorta.bus.nats_server import NatsServerProcess
from aorta.cli.direct import DirectPath
from aorta.payload_names import checksums
from aorta.testing.ports import free_port
from aorta_services.web.context import Console
from aorta_services.web.events import EventHub
from aorta_services.web.platform_client import Platform as WebPlatform
from aorta_services.web.server import build_app
from aorta_services.web.sessions import Sessions
from aorta_services.web.settings import WebSettings
from aorta_services.web.utilization import History
from tests.integration.cli.cli_support import root_group
from tests.integration.payloads.direct_support import (
    DATA,
    get,
    md5,
    put,
    s3_platform,
)
from tests.integration.payloads.payload_grpc import (
    Platform,
    Stub,
    create,
    details,
    digest,
    download,
    listing,
    pattern,
)

pytestmark = pytest.mark.timeout(60)


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
