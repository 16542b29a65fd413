"""Fixtures: a real nats-server per module and, per test, the job path of the platform in this
process (`jobs_platform.Platform`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.runtime.service import Running, service_context
from aorta.settings import Settings
from aorta.testing.nats import nats_server as started_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app
from tests.integration.scheduler.jobs_platform import RPC_TIMEOUT, Platform


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
        services: list[Running] = []
        try:
            services.append(await pipelines_app.start(context))
            services.append(await payloads_app.start(context))
            gateway = await gateway_app.start(context, address="127.0.0.1:0")
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                made = Platform(gateway.port, context, channel, tmp_path, services)
                await made.start_scheduler()
                try:
                    yield made
                finally:
                    await gateway.stop(1.0)
        finally:
            for service in reversed(services):
                await service.stop(1.0)
            await bus.close()
