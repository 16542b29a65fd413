"""The gateway and the pipelines service in this process, on a real nats-server, for real clients.

`platform` is what a test of the public API needs: a started gateway (its gRPC port) in front
of the pipelines service, both on one real nats-server (one per module, on a free port of
127.0.0.1), with the SQLite state store and the local blob store under the test's tmp_path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from aorta.api import pipelines_pb2_grpc
from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.nats import nats_server as started_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.pipelines import app as pipelines_app

RPC_TIMEOUT = 5.0


@dataclass(frozen=True)
class Platform:
    """A running gateway + pipelines service: where to reach it, and a bus client beside it."""

    port: int
    bus: NatsBus

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServerProcess]:
    with started_nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
async def platform(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[Platform]:
    settings = Settings.from_env(
        {
            "AORTA_DATA_DIR": str(tmp_path),
            "AORTA_NATS_URL": nats_server.url,
            "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT),
        }
    )
    bus = await NatsBus.connect(settings.nats_url, name="aorta-test", default_timeout=RPC_TIMEOUT)
    async with service_context(settings, bus) as context:
        pipelines = await pipelines_app.start(context)
        try:
            gateway = await gateway_app.start(context, address="127.0.0.1:0")
            try:
                yield Platform(port=gateway.port, bus=bus)
            finally:
                await gateway.stop(1.0)
        finally:
            await pipelines.stop(1.0)
            await bus.close()


@pytest.fixture
async def channel(platform: Platform) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(platform.target) as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> pipelines_pb2_grpc.PipelinesAsyncStub:
    return pipelines_pb2_grpc.PipelinesStub(channel)


@pytest.fixture
def bus(platform: Platform) -> NatsBus:
    """A bus client of the platform's nats-server, as another service would hold."""
    return platform.bus
