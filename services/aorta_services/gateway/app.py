"""Composition root of the gateway: a grpc.aio server with every Clara service registered.

Readiness (gRPC health checking, `grpc.health.v1`) turns SERVING only after every handler is
registered and the port is bound, and NOT_SERVING as soon as shutdown begins, so a load
balancer stops sending new calls while in-flight ones finish within the grace period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from aorta.api import (
    clara_pb2,
    jobs_pb2,
    models_pb2,
    node_monitor_pb2,
    payloads_pb2,
    pipelines_pb2,
)
from aorta.logger import get_logger
from aorta.runtime.service import ServiceContext
from aorta_services.gateway import clara, jobs, models, monitor, payloads, pipelines
from aorta_services.gateway.forward import Forwarder, GatewayContext
from aorta_services.gateway.rpc import Handler, service_handler

log = get_logger(__name__)

# Clara clients send payload chunks of at most 4 MiB - 512 bytes (docs/clara-compatibility.md,
# "Payload names and upload chunks"); a little headroom for the envelope, and anything larger is
# refused by grpc core with RESOURCE_EXHAUSTED before it reaches a handler.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024 + 64 * 1024

HandlerSet = Callable[[GatewayContext], Mapping[str, Handler]]

_SERVICES: tuple[tuple[str, object, HandlerSet], ...] = (
    ("Clara", clara_pb2, clara.handlers),
    ("Jobs", jobs_pb2, jobs.handlers),
    ("Models", models_pb2, models.handlers),
    ("Payloads", payloads_pb2, payloads.handlers),
    ("Pipelines", pipelines_pb2, pipelines.handlers),
    ("Monitor", node_monitor_pb2, monitor.handlers),
)


@dataclass
class RunningGateway:
    """A serving gateway; `port` is the bound port (useful when asked for port 0)."""

    name: str
    port: int
    server: grpc.aio.Server
    health: health.aio.HealthServicer

    async def stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        log.info("gateway.stopped")


async def start(ctx: ServiceContext, address: str | None = None) -> RunningGateway:
    """Binds the gRPC server to `address` (default: the settings') and starts serving."""
    bind = address or ctx.settings.grpc_address
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
    )
    gateway = GatewayContext(
        forward=Forwarder(ctx.bus, ctx.settings.rpc_timeout),
        bus=ctx.bus,
        blobs=ctx.blobs,
        settings=ctx.settings,
    )
    for service_name, module, handler_set in _SERVICES:
        descriptor = module.DESCRIPTOR.services_by_name[service_name]  # type: ignore[attr-defined]
        handlers = handler_set(gateway)
        server.add_generic_rpc_handlers((service_handler(descriptor, handlers),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(bind)
    if port == 0:
        raise OSError(f"the gateway could not bind {bind}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    log.info("gateway.serving", address=bind, port=port)
    return RunningGateway(name="gateway", port=port, server=server, health=health_servicer)
