"""Composition root of the gateway: a grpc.aio server with every Clara service registered.

Readiness (gRPC health checking, `grpc.health.v1`) turns SERVING only after every handler is
registered and the port is bound, and NOT_SERVING as soon as shutdown begins, so a load
balancer stops sending new calls while in-flight ones finish within the grace period.

Every public method (Clara's, and Aorta's `aorta.v1.Audit`, `aorta.v1.Jobs`,
`aorta.v1.Payloads` and `aorta.v1.Session`) is admitted by
one `Guard` (authentication when the settings turn it on, roles, the audit log); health checks
stay open. Every call is counted and timed (`grpc_metrics`) while metrics are on. New jobs
and uploads are refused while a disk is nearly full (`disk_admission`).
The port is TLS when a certificate is set (mTLS with a client CA), and an address beyond
loopback is refused without authentication unless the operator accepted the risk
(`aorta.auth.exposure`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from aorta.api import (
    aorta_jobs_pb2,
    aorta_payloads_pb2,
    aorta_services_pb2,
    aorta_session_pb2,
    audit_pb2,
    clara_pb2,
    jobs_pb2,
    models_pb2,
    node_monitor_pb2,
    payloads_pb2,
    pipelines_pb2,
)
from aorta.auth.authenticator import build_authenticator
from aorta.auth.exposure import exposure_warnings
from aorta.disk_watch import DiskWatch
from aorta.logger import get_logger
from aorta.observability import metrics
from aorta.runtime.service import ServiceContext
from aorta.settings import Settings, SettingsError
from aorta.tasks import cancel_and_wait
from aorta_services.gateway import (
    audit_api,
    clara,
    direct_payloads,
    disk_admission,
    jobs,
    models,
    monitor,
    payloads,
    pipeline_services,
    pipelines,
    session_api,
)
from aorta_services.gateway.answer_cache import KeptAnswers
from aorta_services.gateway.audit import SWEEP_EVERY, AuditTrail, sweep_forever
from aorta_services.gateway.forward import Forwarder, GatewayContext
from aorta_services.gateway.grpc_metrics import GrpcMetrics
from aorta_services.gateway.guard import Authenticates, Guard
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
    ("Jobs", aorta_jobs_pb2, jobs.aorta_handlers),
    ("Services", aorta_services_pb2, pipeline_services.handlers),
    ("Payloads", aorta_payloads_pb2, direct_payloads.handlers),
)


@dataclass
class RunningGateway:
    """A serving gateway; `port` is the bound port (useful when asked for port 0)."""

    name: str
    port: int
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    sweeper: asyncio.Task[None] | None = field(default=None, repr=False)
    kept: KeptAnswers = field(default_factory=KeptAnswers, repr=False)

    async def stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.kept.stop()
        if self.sweeper is not None:
            await cancel_and_wait(self.sweeper)
        log.info("gateway.stopped")


def _read_pem(path: str, setting: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise SettingsError(f"{setting}: cannot read {path}: {exc.strerror}") from exc


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The gateway's TLS credentials (None when `settings.gateway_tls` is off); with a client
    CA, clients must present a certificate it signed. `SettingsError` names a setting that is
    missing or a file that cannot be read."""
    if not settings.gateway_tls:
        if settings.gateway_tls_client_ca:
            raise SettingsError(
                "AORTA_GATEWAY_TLS_CLIENT_CA needs AORTA_GATEWAY_TLS_CERT and "
                "AORTA_GATEWAY_TLS_KEY: client certificates are only asked for over TLS"
            )
        return None
    if not settings.gateway_tls_key:
        raise SettingsError("AORTA_GATEWAY_TLS_CERT is set, so AORTA_GATEWAY_TLS_KEY must be too")
    key = _read_pem(settings.gateway_tls_key, "AORTA_GATEWAY_TLS_KEY")
    chain = _read_pem(settings.gateway_tls_cert, "AORTA_GATEWAY_TLS_CERT")
    client_ca = (
        _read_pem(settings.gateway_tls_client_ca, "AORTA_GATEWAY_TLS_CLIENT_CA")
        if settings.gateway_tls_client_ca
        else None
    )
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


async def start(
    ctx: ServiceContext,
    address: str | None = None,
    *,
    authenticator: Authenticates | None = None,
) -> RunningGateway:
    """Binds the gRPC server to `address` (default: the settings') and starts serving.

    Callers are authenticated by `authenticator`, or by the one the settings describe
    (`aorta.auth.authenticator.build_authenticator`; none when authentication is off).
    Raises `SettingsError` before binding when `address` is beyond loopback without
    authentication and without `settings.insecure`, or when the TLS files cannot be read.
    """
    settings = ctx.settings
    bind = address or settings.grpc_address
    for event, message in exposure_warnings(settings, bind):
        log.warning(event, address=bind, message=message)
    credentials = server_credentials(settings)
    if authenticator is None:
        authenticator = build_authenticator(settings)
    trail = AuditTrail(ctx.store, ctx.bus)
    await trail.prepare()
    guard = Guard(authenticator=authenticator, audit=trail)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
        interceptors=[GrpcMetrics()] if metrics.recording() else [],
    )
    kept = KeptAnswers()
    gateway = GatewayContext(
        forward=Forwarder(ctx.bus, ctx.settings.rpc_timeout),
        bus=ctx.bus,
        blobs=ctx.blobs,
        settings=ctx.settings,
        kept=kept,
    )
    disks = DiskWatch.from_settings(settings)
    for service_name, module, handler_set in _SERVICES:
        descriptor = module.DESCRIPTOR.services_by_name[service_name]  # type: ignore[attr-defined]
        handlers = disk_admission.guarded(service_name, handler_set(gateway), disks)
        server.add_generic_rpc_handlers((service_handler(descriptor, handlers, guard),))
    audit_service = audit_pb2.DESCRIPTOR.services_by_name["Audit"]
    server.add_generic_rpc_handlers(
        (service_handler(audit_service, audit_api.handlers(trail), guard),)
    )
    session_service = aorta_session_pb2.DESCRIPTOR.services_by_name["Session"]
    session_handlers = session_api.handlers(authentication=authenticator is not None)
    server.add_generic_rpc_handlers((service_handler(session_service, session_handlers, guard),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        if credentials is None:
            port = server.add_insecure_port(bind)
        else:
            port = server.add_secure_port(bind, credentials)
    except RuntimeError:  # what grpcio raises for a port it cannot bind, with no reason
        port = 0
    if port == 0:
        raise OSError(
            f"the Clara API cannot listen on {bind}: the port is in use (another platform?) "
            "or the address is not one of this host's"
        )
    await kept.start(ctx.bus)
    await server.start()
    sweeper = asyncio.create_task(
        sweep_forever(trail, timedelta(days=settings.audit_retention_days), SWEEP_EVERY),
        name="gateway.audit_sweep",
    )
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "gateway.serving",
        address=bind,
        port=port,
        tls=credentials is not None,
        mtls=bool(settings.gateway_tls_client_ca),
        authentication=authenticator is not None,
    )
    return RunningGateway(
        name="gateway",
        port=port,
        server=server,
        health=health_servicer,
        sweeper=sweeper,
        kept=kept,
    )
