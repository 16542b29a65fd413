"""The gateway and the monitor in this process, on a real nats-server, for real clients
(`tests.integration.gateway_platform`).

The monitor reads `/proc` for process owners, and GPUs from a stand-in probe that has none,
so every GPU list is empty on a machine with GPUs as on one without (`NvmlProbe` itself is
tested in tests/unit/monitor/test_nvml.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from aorta.bus.nats_server import NatsServerProcess
from aorta.testing.gpu import StandInProbe
from aorta_services.monitor import app as monitor_app
from tests.integration.gateway_platform import (  # noqa: F401  (the fixtures)
    Gateway,
    channel_fixture,
    gateway_before,
    platform_settings,
)

WATCH_INTERVAL = 0.2


@dataclass(frozen=True)
class Platform(Gateway):
    """What a test needs: the gateway's port, a bus client of the same server and how often
    the monitor samples."""

    interval: float = WATCH_INTERVAL


@pytest.fixture
async def platform(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[Platform]:
    monitor = partial(
        monitor_app.start,
        environ={"AORTA_MONITOR_INTERVAL": str(WATCH_INTERVAL), "AORTA_NODE_ID": "test-node"},
        probe=StandInProbe(),
    )
    async with gateway_before(platform_settings(nats_server, tmp_path, 5.0), monitor) as gateway:
        yield Platform(gateway.port, gateway.bus, gateway.context)
