"""Details answers the gateway keeps never hide a change the client made through it: on a real
nats-server, with the payloads and pipelines services, each metadata change is followed at
once by a Details (no wait for the change's event), many times over, and each shows the
change; so does a Details on another gateway, once the event reached it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from aorta.api import (
    common_pb2,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
)
from aorta.bus.nats import NatsBus
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.nats import async_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app

ROUNDS = 20
PIPELINE = """api-version: 0.4.0
name: kept
operators:
- name: only
  container: {image: python, command: [python, -c, pass]}
  input: [{path: /in}]
  output: [{path: /out}]
"""


@dataclass(frozen=True)
class Gateways:
    """Two gateways before the same services: `one` takes the commands."""

    one: grpc.aio.Channel
    other: grpc.aio.Channel


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[Gateways]:
    async with async_nats_server(tmp_path / "nats") as server:
        settings = Settings.from_env(
            {
                "AORTA_DATA_DIR": str(tmp_path / "data"),
                "AORTA_NATS_URL": server.url,
                "AORTA_RPC_TIMEOUT": "10",
            }
        )
        bus = await NatsBus.connect(server.url, name="aorta-e2e", default_timeout=10.0)
        other_bus = await NatsBus.connect(server.url, name="aorta-e2e-2", default_timeout=10.0)
        async with (
            service_context(settings, bus) as context,
            service_context(settings, other_bus) as other_context,
        ):
            pipelines = await pipelines_app.start(context)
            payloads = await payloads_app.start(context)
            one = await gateway_app.start(context, address="127.0.0.1:0")
            other = await gateway_app.start(other_context, address="127.0.0.1:0")
            try:
                async with (
                    grpc.aio.insecure_channel(f"127.0.0.1:{one.port}") as one_channel,
                    grpc.aio.insecure_channel(f"127.0.0.1:{other.port}") as other_channel,
                ):
                    yield Gateways(one_channel, other_channel)
            finally:
                await other.stop(1.0)
                await one.stop(1.0)
                await payloads.stop(1.0)
                await pipelines.stop(1.0)
                await other_bus.close()
                await bus.close()


Metadata = Callable[[grpc.aio.Channel], Awaitable[dict[str, str]]]
Command = Callable[[grpc.aio.Channel, dict[str, str] | None], Awaitable[None]]


async def eventually(
    read: Callable[[], Awaitable[dict[str, str]]], expected: dict[str, str]
) -> None:
    """Waits (30 s at most) for `read` to answer `expected`: the change's event on its way."""
    deadline = time.monotonic() + 30
    while (got := await read()) != expected:
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.01)


async def changes_show(gateways: Gateways, metadata: Metadata, change: Command) -> None:
    """Rounds of: Details read twice on each gateway (kept now), the key removed (`change`
    with None), Details, the key added with a new value, Details; each read right after the
    command through the same gateway shows it, and the other gateway follows."""
    for round in range(ROUNDS):
        for channel in (gateways.one, gateways.one, gateways.other):
            assert await metadata(channel) == {"round": str(round)}
        await change(gateways.one, None)
        assert await metadata(gateways.one) == {}
        await eventually(lambda: metadata(gateways.other), {})
        await change(gateways.one, {"round": str(round + 1)})
        assert await metadata(gateways.one) == {"round": str(round + 1)}
        await eventually(lambda: metadata(gateways.other), {"round": str(round + 1)})


async def test_a_payload_metadata_change_shows_in_the_next_details(gateways: Gateways) -> None:
    stub = payloads_pb2_grpc.PayloadsStub(gateways.one)
    created = await stub.Create(payloads_pb2.PayloadsCreateRequest(metadata={"round": "0"}))
    assert created.header.code == 0, created.header
    id = created.payload_id

    async def metadata(channel: grpc.aio.Channel) -> dict[str, str]:
        request = payloads_pb2.PayloadsDetailsRequest(payload_id=id)
        stream = payloads_pb2_grpc.PayloadsStub(channel).Details(request)
        return {key: value async for item in stream for key, value in item.metadata.items()}

    async def change(channel: grpc.aio.Channel, added: dict[str, str] | None) -> None:
        payloads = payloads_pb2_grpc.PayloadsStub(channel)
        if added is None:
            request = payloads_pb2.PayloadsRemoveMetadataRequest(payload_id=id, keys=["round"])
            code = (await payloads.RemoveMetadata(request)).header.code
        else:
            add = payloads_pb2.PayloadsAddMetadataRequest(payload_id=id, metadata=added)
            code = (await payloads.AddMetadata(add)).header.code
        assert code == 0

    await changes_show(gateways, metadata, change)


async def test_a_pipeline_metadata_change_shows_in_the_next_details(gateways: Gateways) -> None:
    stub = pipelines_pb2_grpc.PipelinesStub(gateways.one)
    file = pipelines_pb2.PipelineDefinitionFile(path="kept.yaml", content=PIPELINE)
    create = pipelines_pb2.PipelinesCreateRequest(definition=file, metadata={"round": "0"})
    created = await stub.Create(iter([create]))
    assert created.header.code == 0, created.header
    id = common_pb2.Identifier(value=created.pipeline_id.value)

    async def metadata(channel: grpc.aio.Channel) -> dict[str, str]:
        request = pipelines_pb2.PipelinesDetailsRequest(pipeline_id=id)
        stream = pipelines_pb2_grpc.PipelinesStub(channel).Details(request)
        return {key: value async for item in stream for key, value in item.metadata.items()}

    async def change(channel: grpc.aio.Channel, added: dict[str, str] | None) -> None:
        pipelines = pipelines_pb2_grpc.PipelinesStub(channel)
        if added is None:
            request = pipelines_pb2.PipelinesRemoveMetadataRequest(pipeline_id=id, keys=["round"])
            code = (await pipelines.RemoveMetadata(request)).header.code
        else:
            add = pipelines_pb2.PipelinesAddMetadataRequest(pipeline_id=id, metadata=added)
            code = (await pipelines.AddMetadata(add)).header.code
        assert code == 0

    await changes_show(gateways, metadata, change)
