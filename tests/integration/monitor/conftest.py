"""The gateway and the monitor in this process, on a real nats-server, for real clients.

The monitor reads `/proc` for process owners, and GPUs from a stand-in probe that has none,
so every GPU list is empty on a machine with GPUs as on one without (`NvmlProbe` itself is
tested in tests/unit/monitor/test_nvml.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.testing.gpu import StandInProbe
from aorta.testing.nats import nats_server as started_nats_server
from aorta_services.gateway import app as gateway_app
from aorta_services.monitor import app as monitor_app

WATCH_INTERVAL = 0.2


@dataclass(frozen=True)
class Platform:
    """What a test needs: the gateway's port and a bus client of the same server."""

    port: int
    bus: NatsBus
    interval: float = WATCH_INTERVAL

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
            "AORTA_RPC_TIMEOUT": "5",
        }
    )
    async with AsyncExitStack() as stack:
        bus = await NatsBus.connect(settings.nats_url, name="aorta-test", default_timeout=5.0)
        stack.push_async_callback(bus.close)
        context = await stack.enter_async_context(service_context(settings, bus))
        monitor = await monitor_app.start(
            context,
            environ={"AORTA_MONITOR_INTERVAL": str(WATCH_INTERVAL), "AORTA_NODE_ID": "test-node"},
            probe=StandInProbe(),
        )
        stack.push_async_callback(monitor.stop, 1.0)
        gateway = await gateway_app.start(context, address="127.0.0.1:0")
        stack.push_async_callback(gateway.stop, 1.0)
        yield Platform(port=gateway.port, bus=bus)
