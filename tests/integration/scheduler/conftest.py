"""Fixtures: on the module's nats-server (the integration tests' shared `nats_server`), per
test, the job path of the platform in this process (`jobs_platform.Platform`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.runtime.service import Running, service_context
from aorta_services.gateway import app as gateway_app
from aorta_services.payloads import app as payloads_app
from aorta_services.pipelines import app as pipelines_app
from tests.integration.gateway_platform import platform_settings
from tests.integration.scheduler.jobs_platform import RPC_TIMEOUT, Platform


@pytest.fixture
async def platform(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[Platform]:
    settings = platform_settings(nats_server, tmp_path, RPC_TIMEOUT)
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
