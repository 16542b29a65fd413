"""The gateway and the pipelines service in this process, on a real nats-server, for real clients.

`platform` is what a test of the public API needs: a started gateway (its gRPC port) in front
of the pipelines service, both on one real nats-server (one per module, on a free port of
127.0.0.1), with the SQLite state store and the local blob store under the test's tmp_path
(`tests.integration.gateway_platform`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from aorta.api import pipelines_pb2_grpc
from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta_services.pipelines import app as pipelines_app
from tests.integration.gateway_platform import (  # noqa: F401  (the fixtures)
    Gateway,
    channel_fixture,
    gateway_before,
    platform_settings,
)

RPC_TIMEOUT = 5.0


@pytest.fixture
async def platform(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = platform_settings(nats_server, tmp_path, RPC_TIMEOUT)
    async with gateway_before(settings, pipelines_app.start) as gateway:
        yield gateway


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> pipelines_pb2_grpc.PipelinesAsyncStub:
    return pipelines_pb2_grpc.PipelinesStub(channel)


@pytest.fixture
def bus(platform: Gateway) -> NatsBus:
    """A bus client of the platform's nats-server, as another service would hold."""
    return platform.bus
