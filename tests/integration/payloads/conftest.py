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
from aorta.bus.nats_server import NatsServerProcess
from aorta.settings import Settings
from aorta.testing.s3 import S3Server
from aorta_services.payloads import app as payloads_app
from tests.integration import gateway_platform
from tests.integration.gateway_platform import (  # noqa: F401  (the fixtures)
    channel_fixture,
    gateway_before,
)
from tests.integration.payloads.payload_grpc import Platform, Stub

RPC_TIMEOUT = 10.0


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
    return gateway_platform.platform_settings(
        nats_server, folder, RPC_TIMEOUT, **{**blob_settings(kind, request), **environ}
    )


@pytest.fixture(params=["local", "s3"])
async def platform(
    request: pytest.FixtureRequest, nats_server: NatsServerProcess, tmp_path: Path
) -> AsyncIterator[Platform]:
    kind: str = request.param
    settings = platform_settings(request, kind, nats_server, tmp_path)
    async with gateway_before(settings, payloads_app.start) as gateway:
        yield Platform(gateway.port, gateway.bus, gateway.context.blobs, kind, tmp_path)


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return payloads_pb2_grpc.PayloadsStub(channel)
