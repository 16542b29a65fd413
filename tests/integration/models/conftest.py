"""Fixtures of the models tests: the gateway and the models service in this process, on a real
nats-server, for real clients.

`platform` gives a started gateway (its gRPC port) in front of the models service, both on one
real nats-server (one per module, on a free port of 127.0.0.1), with the SQLite state store and
the local blob store under the test's tmp_path. The models service runs its real local Triton
backend; no tritonserver starts unless a test acquires one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest

from aorta.api import models_pb2_grpc
from aorta.bus.nats_server import NatsServerProcess
from tests.integration.models.models_platform import Platform, start_platform


@pytest.fixture
async def platform(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[Platform]:
    async with AsyncExitStack() as stack:
        yield await start_platform(stack, nats_server.url, tmp_path, {})


@pytest.fixture
async def stub(platform: Platform) -> AsyncIterator[models_pb2_grpc.ModelsAsyncStub]:
    async with grpc.aio.insecure_channel(platform.target) as channel:
        yield models_pb2_grpc.ModelsStub(channel)
