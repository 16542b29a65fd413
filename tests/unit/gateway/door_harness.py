"""A real gateway (grpc.aio on a loopback port) over an in-memory bus and SQLite, with a fake
authenticator that knows four tokens; and raw calls of any method by its descriptor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

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
from aorta.auth.principal import Principal, Role
from aorta.bus.memory import MemoryBus
from aorta.errors import Unauthenticated
from aorta.runtime.service import ServiceContext, service_context
from aorta.settings import Settings
from aorta.store import StateStore
from aorta_services.gateway import app as gateway_app
from aorta_services.gateway.guard import Authenticates

PRINCIPALS: Mapping[str, Principal] = {
    "viewer-token": Principal("vera", frozenset({Role.VIEWER})),
    "user-token": Principal("alice", frozenset({Role.USER})),
    "admin-token": Principal("ada", frozenset({Role.ADMIN})),
}
TOKEN_OF: Mapping[Role, str] = {
    Role.VIEWER: "viewer-token",
    Role.USER: "user-token",
    Role.ADMIN: "admin-token",
}


class FakeAuthenticator:
    """Knows the tokens of `PRINCIPALS`; refuses anything else as the real one would."""

    async def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        for key, value in metadata:
            if key == "authorization" and isinstance(value, str):
                principal = PRINCIPALS.get(value.removeprefix("Bearer "))
                if principal is not None:
                    return principal
                raise Unauthenticated("the token is not known to this platform")
        raise Unauthenticated("this platform requires a token")


def bearer(role: Role) -> tuple[tuple[str, str], ...]:
    """The call metadata of a caller holding `role`."""
    return (("authorization", f"Bearer {TOKEN_OF[role]}"),)


def public_services() -> list[ServiceDescriptor]:
    """Every service the gateway serves but health: Clara's and Aorta's own."""
    return [
        clara_pb2.DESCRIPTOR.services_by_name["Clara"],
        jobs_pb2.DESCRIPTOR.services_by_name["Jobs"],
        models_pb2.DESCRIPTOR.services_by_name["Models"],
        payloads_pb2.DESCRIPTOR.services_by_name["Payloads"],
        pipelines_pb2.DESCRIPTOR.services_by_name["Pipelines"],
        node_monitor_pb2.DESCRIPTOR.services_by_name["Monitor"],
        audit_pb2.DESCRIPTOR.services_by_name["Audit"],
        aorta_jobs_pb2.DESCRIPTOR.services_by_name["Jobs"],
        aorta_payloads_pb2.DESCRIPTOR.services_by_name["Payloads"],
        aorta_services_pb2.DESCRIPTOR.services_by_name["Services"],
        aorta_session_pb2.DESCRIPTOR.services_by_name["Session"],
    ]


def full_name(method: MethodDescriptor) -> str:
    return f"{method.containing_service.full_name}/{method.name}"


@dataclass(frozen=True)
class Outcome:
    """How a raw call ended: its status and details."""

    code: grpc.StatusCode
    details: str


async def call_raw(
    channel: grpc.aio.Channel,
    method: MethodDescriptor,
    metadata: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Outcome:
    """Calls `method` with one request `body` (an empty message by default) and reads the
    whole answer; the status it ended with."""
    path = f"/{full_name(method)}"
    try:
        if method.client_streaming:
            upload: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(path)
            await upload(iter([body]), metadata=metadata, timeout=10)
        elif method.server_streaming:
            stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
            async for _ in stream(body, metadata=metadata, timeout=10):
                pass
        else:
            unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
            await unary(body, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as error:
        return Outcome(error.code(), error.details() or "")
    return Outcome(grpc.StatusCode.OK, "")


@dataclass(frozen=True)
class Door:
    """A serving gateway and a channel to it."""

    channel: grpc.aio.Channel
    bus: MemoryBus
    context: ServiceContext
    port: int


def settings_for(tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_env({"AORTA_DATA_DIR": str(tmp_path), "AORTA_RPC_TIMEOUT": "2", **environ})


@asynccontextmanager
async def door_gateway(
    tmp_path: Path,
    *,
    authenticator: Authenticates | None = None,
    store: StateStore | None = None,
) -> AsyncIterator[Door]:
    """A gateway on 127.0.0.1 admitting callers through `authenticator` (none: auth off),
    recording in `store` (default: the SQLite store of the settings)."""
    settings = settings_for(tmp_path)
    bus = MemoryBus(default_timeout=2.0)
    try:
        async with service_context(settings, bus) as shared:
            context = (
                shared if store is None else ServiceContext(settings, bus, store, shared.blobs)
            )
            running = await gateway_app.start(
                context, address="127.0.0.1:0", authenticator=authenticator
            )
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                    yield Door(channel, bus, context, running.port)
            finally:
                await running.stop(1.0)
    finally:
        await bus.close()
