"""The gateway and the models service started in this process, for the tests of this folder."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from aorta.blobs import BlobStore
from aorta.bus.nats import NatsBus
from aorta.runtime.service import service_context
from aorta.settings import Settings
from aorta.store import StateStore
from aorta_services.gateway import app as gateway_app
from aorta_services.models import app as models_app

RPC_TIMEOUT = 10.0


@dataclass(frozen=True)
class Platform:
    """A running gateway + models service, and the adapters beside them."""

    port: int
    bus: NatsBus
    blobs: BlobStore
    store: StateStore
    models: models_app.RunningModels
    data_dir: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


async def start_platform(
    stack: AsyncExitStack, nats_url: str, data_dir: Path, environ: dict[str, str]
) -> Platform:
    """Starts the models service and the gateway; `stack` stops them."""
    settings = Settings.from_env(
        {
            "AORTA_DATA_DIR": str(data_dir),
            "AORTA_NATS_URL": nats_url,
            "AORTA_RPC_TIMEOUT": str(RPC_TIMEOUT),
        }
    )
    bus = await NatsBus.connect(nats_url, name="aorta-test", default_timeout=RPC_TIMEOUT)
    stack.push_async_callback(bus.close)
    context = await stack.enter_async_context(service_context(settings, bus))
    models = await models_app.start(context, environ={**os.environ, **environ})
    stack.push_async_callback(models.stop, 1.0)
    gateway = await gateway_app.start(context, address="127.0.0.1:0")
    stack.push_async_callback(gateway.stop, 1.0)
    return Platform(gateway.port, bus, context.blobs, context.store, models, data_dir)
