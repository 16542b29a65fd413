"""The gateway and the payloads service in this process, on a real nats-server, for gRPC clients.

`platform` is parametrized over both blob adapters: a local folder under the test's tmp_path,
and S3 through a `moto_server` started once per module (a fresh bucket per test). The gateway
and the service share that one store, as they do in a deployment.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from aorta.api import payloads_pb2_grpc
from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.nats import nats_server as started_nats_server
from aorta.testing.s3 import S3Server
from aorta_services.gateway import app as gateway_app
from aorta_services.payloads import app as payloads_app
from tests.integration.payloads.payload_grpc import Platform, Stub

RPC_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServerProcess]:
    with started_nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def blob_settings(kind: str, request: pytest.FixtureRequest) -> dict[str, str]:
    if kind == "local":
        return {}
    server: S3Server = request.getfixturevalue("s3_server")
    return {
        "AORTA_BLOB_STORE": f"s3://aorta-payloads-{uuid.uuid4().hex[:16]}",
        "AORTA_S3_ENDPOINT": server.endpoint,
        "AORTA_S3_ACCESS_KEY": server.access_key,
        "AORTA_S3_SECRET_KEY": server.secret_key,
        "AORTA_S3_REGION": server.region,
    }


def platform_settings(
    request: pytest.FixtureRequest,
    kind: str,
    nats_server: NatsServerProcess,
    folder: Path,
    **environ: str,
) -> Settings:
    """The settings of a platform a test runs in its own process: its data in `folder`, the
    bus at `nats_server`, a blob store of `kind` (`local` or `s3`), and `environ` on top."""
    return Settings.from_env(
        {
            "AORTA_DATA_DIR": str(folder),
            "AORTA_NATS_URL": nats_server.url,
            "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT),
            **blob_settings(kind, request),
            **environ,
        }
    )


@pytest.fixture(params=["local", "s3"])
async def platform(
    request: pytest.FixtureRequest, nats_server: NatsServerProcess, tmp_path: Path
) -> AsyncIterator[Platform]:
    kind: str = request.param
    settings = platform_settings(request, kind, nats_server, tmp_path)
    bus = await NatsBus.connect(settings.nats_url, name="aorta-test", default_timeout=RPC_TIMEOUT)
    async with service_context(settings, bus) as context:
        payloads = await payloads_app.start(context)
        try:
            gateway = await gateway_app.start(context, address="127.0.0.1:0")
            try:
                yield Platform(gateway.port, bus, context.blobs, kind, tmp_path)
            finally:
                await gateway.stop(1.0)
        finally:
            await payloads.stop(1.0)
            await bus.close()


@pytest.fixture
async def channel(platform: Platform) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(platform.target) as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return payloads_pb2_grpc.PayloadsStub(channel)
