"""What the direct-path tests share: a client's bare PUT and GET of a pre-signed URL, the
requests for a link and its commit, and an S3 platform in this process with extra settings."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import urllib3

from aorta.api import aorta_payloads_pb2, aorta_payloads_pb2_grpc, payloads_pb2
from aorta.bus.nats_server import NatsServerProcess
from aorta_services.payloads import app as payloads_app
from tests.integration.gateway_platform import gateway_before
from tests.integration.payloads.conftest import platform_settings
from tests.integration.payloads.payload_grpc import (
    digest,
    ident,
    pattern,
)
from tests.unit.gateway.door_harness import FakeAuthenticator

DATA = pattern(3 << 20, seed=7)

if TYPE_CHECKING:
    from aorta.api.aorta_payloads_pb2_grpc import PayloadsAsyncStub as DirectStub
else:
    DirectStub = aorta_payloads_pb2_grpc.PayloadsStub


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
    settings = platform_settings(request, "s3", nats_server, tmp_path, **environ)
    async with gateway_before(settings, payloads_app.start, authenticator=authenticator) as gateway:
        yield gateway.target
