"""Services in this process behind the gateway, on a real nats-server: what the integration
tests of the public API of a service start from.

A folder's conftest builds its `platform` fixture, on the integration tests' shared
`nats_server` (one server per test module on a free port of 127.0.0.1), from
`platform_settings` and `gateway_before`; `channel_fixture` (`channel`) reaches that platform's
gateway. The state store and the local blob store are under
the folder the settings name, as `aorta up` lays them out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest

from aorta.bus.nats import NatsBus
from aorta.bus.nats_server import NatsServerProcess
from aorta.runtime.service import Running, ServiceContext, service_context
from aorta.settings import Settings
from aorta_services.gateway import app as gateway_app

Start = Callable[[ServiceContext], Awaitable[Running]]
"""Starts one service on the context (`aorta_services.<name>.app.start`)."""


def platform_settings(
    nats_server: NatsServerProcess, folder: Path, rpc_timeout: float, **environ: str
) -> Settings:
    """The settings of a platform with its data in `folder` and its bus at `nats_server`,
    `environ` on top."""
    return Settings.from_env(
        {
            "AORTA_DATA_DIR": str(folder),
            "AORTA_NATS_URL": nats_server.url,
            "AORTA_RPC_TIMEOUT": str(rpc_timeout),
            **environ,
        }
    )


class Reachable(Protocol):
    """A platform whose gateway a gRPC client reaches at `target` (`host:port`)."""

    @property
    def target(self) -> str: ...


@pytest.fixture(name="channel")
async def channel_fixture(platform: Reachable) -> AsyncIterator[grpc.aio.Channel]:
    """An insecure gRPC channel to the gateway of the folder's `platform` fixture."""
    async with grpc.aio.insecure_channel(platform.target) as opened:
        yield opened


@dataclass(frozen=True)
class Gateway:
    """A started gateway (its gRPC port), a bus client beside it, as another service would
    hold, and the context its services share."""

    port: int
    bus: NatsBus
    context: ServiceContext

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def gateway_before(
    settings: Settings, *starts: Start, **gateway_options: Any
) -> AsyncIterator[Gateway]:
    """The services `starts` start, in that order, behind a gateway on a free port of
    127.0.0.1 (started with `gateway_options`, such as an `authenticator`), sharing one bus
    client of the settings' nats-server and one service context.

    On exit the gateway stops, then the services in reverse order (a second of grace each),
    then the context and the bus close; whatever started is stopped when a start fails.
    """
    async with AsyncExitStack() as stack:
        bus = await NatsBus.connect(
            settings.nats_url, name="aorta-test", default_timeout=settings.rpc_timeout
        )
        stack.push_async_callback(bus.close)
        context = await stack.enter_async_context(service_context(settings, bus))
        for start in starts:
            running = await start(context)
            stack.push_async_callback(running.stop, 1.0)
        gateway = await gateway_app.start(context, address="127.0.0.1:0", **gateway_options)
        stack.push_async_callback(gateway.stop, 1.0)
        yield Gateway(gateway.port, bus, context)
