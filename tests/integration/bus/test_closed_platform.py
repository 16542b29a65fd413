"""The whole platform as `aorta up` runs it on a closed bus: every service started by
`run_services` as its own NATS user, against a nats-server that admits only those users, still
answers Clara clients end to end, and an integration reads its events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import nats
import psutil
import pytest

from aorta import bus_permissions, subjects
from aorta.api import (
    clara_pb2,
    clara_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    payloads_pb2,
    payloads_pb2_grpc,
    pipelines_pb2,
)
from aorta.bus.credentials import generate_credentials
from aorta.bus.nats import NatsBus
from aorta.runtime.process import run_services
from aorta.runtime.service import Listening, Running
from aorta.settings import Settings
from aorta.testing.nats import async_nats_server
from aorta.testing.ports import free_port
from aorta_services.launch import registry
from aorta_services.launch.embedded import with_environ


@dataclass
class ClosedPlatform:
    channel: grpc.aio.Channel
    nats_url: str
    events_password: str
    health_port: int


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[ClosedPlatform]:
    credentials = generate_credentials(bus_permissions.bus_users())
    health_port = free_port()
    async with async_nats_server(tmp_path / "nats", users=credentials) as server:
        settings = Settings.from_env(
            {
                "AORTA_DATA_DIR": str(tmp_path / "data"),
                "AORTA_NATS_URL": server.url,
                "AORTA_GRPC_ADDRESS": "127.0.0.1:0",
                "AORTA_RPC_TIMEOUT": "10",
                "AORTA_HEALTH_PORT": str(health_port),
            }
        )
        stop = asyncio.Event()
        ready: asyncio.Future[dict[str, Running]] = asyncio.get_running_loop().create_future()

        async def on_ready(running: dict[str, Running]) -> None:
            ready.set_result(running)

        # The console listens on a free port rather than its fixed default; it reaches no
        # gateway here, but logs in to the bus as the events user as `aorta up` has it do.
        web_environ = {"AORTA_WEB_ADDRESS": "127.0.0.1:0"}
        starters = [
            (name, with_environ(start, web_environ) if name == "web" else start)
            for name, start in registry.starters(registry.START_ORDER)
        ]
        runner = asyncio.create_task(
            run_services(
                starters,
                settings,
                stop,
                on_ready,
                credentials=registry.service_credentials(credentials),
            )
        )
        try:
            running = await asyncio.wait_for(asyncio.shield(ready), 60)
            gateway = running["gateway"]
            assert isinstance(gateway, Listening)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                yield ClosedPlatform(
                    channel, server.url, credentials["events"].password, health_port
                )
        finally:
            stop.set()
            await runner


async def test_clara_calls_cross_the_closed_bus(platform: ClosedPlatform) -> None:
    integration = await nats.connect(
        platform.nats_url,
        user=bus_permissions.EVENTS_USER,
        password=platform.events_password,
        allow_reconnect=False,
    )
    try:
        events = await integration.subscribe("aorta.events.payload.>")
        await integration.flush()
        clara = clara_pb2_grpc.ClaraStub(platform.channel)
        version = await clara.Version(clara_pb2.ClaraVersionRequest())
        assert version.header.code == 0
        payloads = payloads_pb2_grpc.PayloadsStub(platform.channel)
        created = await payloads.Create(payloads_pb2.PayloadsCreateRequest())
        assert created.header.code == 0, created.header.messages
        jobs = jobs_pb2_grpc.JobsStub(platform.channel)
        listed = [r async for r in jobs.List(jobs_pb2.JobsListRequest())]
        assert all(r.header.code == 0 for r in listed)
        # Clara.Stop: the gateway asks the monitor, which asks the scheduler and the models.
        stopped = await clara.Stop(clara_pb2.ClaraStopRequest())
        assert stopped.header.code == 0, stopped.header.messages
        event = await events.next_msg(timeout=10.0)
        assert created.payload_id.value in event.subject
    finally:
        await integration.close()


async def test_the_health_endpoint_listens_on_loopback_only(platform: ClosedPlatform) -> None:
    listening = [
        c.laddr
        for c in psutil.Process().net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == platform.health_port
    ]
    assert [address.ip for address in listening] == ["127.0.0.1"]


async def test_a_service_started_alone_logs_in_as_the_user_its_settings_name(
    tmp_path: Path,
) -> None:
    """`aorta serve pipelines` in a pod: one user, from AORTA_NATS_USER and AORTA_NATS_PASSWORD."""
    credentials = generate_credentials(bus_permissions.bus_users())
    async with async_nats_server(tmp_path / "nats", users=credentials) as server:
        settings = Settings.from_env(
            {
                "AORTA_DATA_DIR": str(tmp_path / "data"),
                "AORTA_NATS_URL": server.url,
                "AORTA_NATS_USER": "pipelines",
                "AORTA_NATS_PASSWORD": credentials["pipelines"].password,
            }
        )
        stop = asyncio.Event()
        ready = asyncio.Event()

        async def on_ready(running: dict[str, Running]) -> None:
            ready.set()

        runner = asyncio.create_task(
            run_services(registry.starters(["pipelines"]), settings, stop, on_ready)
        )
        gateway = await NatsBus.connect(
            server.url, name="gateway", default_timeout=5.0, credentials=credentials["gateway"]
        )
        try:
            await asyncio.wait_for(ready.wait(), 30)
            listed = gateway.request_stream(
                subjects.PIPELINES_LIST, pipelines_pb2.PipelinesListRequest().SerializeToString()
            )
            assert [item async for item in listed]
        finally:
            await gateway.close()
            stop.set()
            await runner
