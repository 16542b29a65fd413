"""The gateway's door: no anonymous call gets past it but health checks, each role may call
exactly what the policy table says, and refusals from deeper down keep their gRPC status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aorta import subjects
from aorta.api import clara_pb2, clara_pb2_grpc, common_pb2, jobs_pb2
from aorta.auth.policy import REQUIRED_ROLES, required_role
from aorta.auth.principal import Principal, Role, current_principal
from aorta.bus import Request
from aorta.errors import Forbidden, Unauthenticated
from aorta_services.gateway.guard import Guard
from aorta_services.gateway.rpc import Context, Handler, service_handler
from tests.unit.gateway.door_harness import (
    Door,
    FakeAuthenticator,
    bearer,
    call_raw,
    door_gateway,
    full_name,
    public_services,
)


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    async with door_gateway(tmp_path, authenticator=FakeAuthenticator()) as serving:
        yield serving


def _methods() -> list[MethodDescriptor]:
    return [method for service in public_services() for method in service.methods]


def test_every_public_method_has_a_role_in_the_policy() -> None:
    served = {full_name(method) for method in _methods()}
    assert served == set(REQUIRED_ROLES)


async def test_anonymous_callers_are_refused_on_every_method_but_health(door: Door) -> None:
    for method in _methods():
        outcome = await call_raw(door.channel, method)
        assert outcome.code == grpc.StatusCode.UNAUTHENTICATED, full_name(method)
        assert "requires a token" in outcome.details
    health = health_pb2_grpc.HealthStub(door.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_an_unknown_token_is_unauthenticated(door: Door) -> None:
    method = clara_pb2.DESCRIPTOR.services_by_name["Clara"].methods_by_name["Version"]
    outcome = await call_raw(door.channel, method, (("authorization", "Bearer forged"),))
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED
    assert "forged" not in outcome.details


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_is_allowed_and_refused_as_the_policy_says(door: Door, role: Role) -> None:
    for method in _methods():
        name = full_name(method)
        needed = required_role(name)
        outcome = await call_raw(door.channel, method, bearer(role))
        if role.rank < needed.rank:
            assert outcome.code == grpc.StatusCode.PERMISSION_DENIED, name
            label = name.rsplit(".", 1)[-1].replace("/", ".")
            assert f"{label} needs the role {needed.value}" in outcome.details
            assert f"have {role.value}" in outcome.details
        else:
            refused = outcome.code in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.PERMISSION_DENIED,
            )
            assert not refused, f"{name} refused to {role}: {outcome.details}"


async def test_the_role_message_names_method_caller_and_roles(door: Door) -> None:
    method = jobs_pb2.DESCRIPTOR.services_by_name["Jobs"].methods_by_name["Cancel"]
    outcome = await call_raw(door.channel, method, bearer(Role.VIEWER))
    assert outcome.details == "Jobs.Cancel needs the role user; you (vera) have viewer"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Forbidden("job 12ab was created by bob"), grpc.StatusCode.PERMISSION_DENIED),
        (Unauthenticated("the token expired"), grpc.StatusCode.UNAUTHENTICATED),
    ],
)
async def test_refusals_from_a_service_keep_their_grpc_status(
    door: Door, error: Exception, status: grpc.StatusCode
) -> None:
    async def refuse(request: Request) -> bytes:
        raise error

    subscription = await door.bus.serve(subjects.CLARA_VERSION, refuse, queue="monitor")
    try:
        stub = clara_pb2_grpc.ClaraStub(door.channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Version(
                clara_pb2.ClaraVersionRequest(), metadata=bearer(Role.VIEWER), timeout=5
            )
    finally:
        await subscription.drain()
    assert refused.value.code() == status
    assert refused.value.details() == str(error)


async def test_the_caller_is_bound_while_handlers_run_streams_included() -> None:
    seen: list[str] = []
    client_side: list[str] = []

    async def version(request: object, context: Context) -> clara_pb2.ClaraVersionResponse:
        seen.append(current_principal().subject)
        return clara_pb2.ClaraVersionResponse()

    async def utilization(
        request: object, context: Context
    ) -> AsyncIterator[clara_pb2.ClaraUtilizationResponse]:
        for _ in range(2):
            seen.append(current_principal().subject)
            yield clara_pb2.ClaraUtilizationResponse(header=common_pb2.ResponseHeader())

    server = grpc.aio.server()
    descriptor = clara_pb2.DESCRIPTOR.services_by_name["Clara"]
    handlers: dict[str, Handler] = {"Version": version, "Utilization": utilization}
    guard = Guard(authenticator=FakeAuthenticator())
    server.add_generic_rpc_handlers((service_handler(descriptor, handlers, guard),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = clara_pb2_grpc.ClaraStub(channel)
            await stub.Version(clara_pb2.ClaraVersionRequest(), metadata=bearer(Role.USER))
            async for _ in stub.Utilization(
                clara_pb2.ClaraUtilizationRequest(), metadata=bearer(Role.VIEWER)
            ):
                client_side.append(current_principal().subject)
    finally:
        await server.stop(None)
    assert seen == ["alice", "vera", "vera"]
    # The client's own context never sees the caller: only the handlers' did.
    assert client_side == ["", ""]


async def test_without_an_authenticator_everyone_is_admitted_as_before(tmp_path: Path) -> None:
    async with door_gateway(tmp_path) as serving:
        stop = clara_pb2.DESCRIPTOR.services_by_name["Clara"].methods_by_name["Stop"]
        outcome = await call_raw(serving.channel, stop)
    assert outcome.code == grpc.StatusCode.OK


class _Broken:
    async def authenticate(self, metadata: object) -> Principal:
        raise RuntimeError("the JWKS cache is corrupt")


async def test_a_crash_while_authenticating_lets_nothing_through(tmp_path: Path) -> None:
    async with door_gateway(tmp_path, authenticator=_Broken()) as serving:
        stop = clara_pb2.DESCRIPTOR.services_by_name["Clara"].methods_by_name["Stop"]
        outcome = await call_raw(serving.channel, stop, bearer(Role.ADMIN))
    assert outcome.code == grpc.StatusCode.UNAVAILABLE
    assert "cannot check credentials" in outcome.details and "JWKS" not in outcome.details
