"""Pipelines record who created them; Update and metadata are the owner's or an admin's,
Details and List everyone's. Callers ride in the bus header the gateway sets."""

from __future__ import annotations

import json

import pytest

from aorta import contracts, subjects
from aorta.api import common_pb2, pipelines_pb2
from aorta.auth.caller import caller_headers
from aorta.auth.principal import ANONYMOUS, Principal, Role
from aorta.bus.memory import MemoryBus
from aorta.bus.verbs import call, call_stream
from aorta.errors import Forbidden, Unauthenticated

pytestmark = pytest.mark.usefixtures("service")

ALICE = Principal("alice", frozenset({Role.USER}))
BOB = Principal("bob", frozenset({Role.USER}))
VIEWER = Principal("vera", frozenset({Role.VIEWER}))
ADMIN = Principal("root", frozenset({Role.ADMIN}))


async def create(bus: MemoryBus, definition: str, caller: Principal) -> str:
    request = contracts.CreatePipeline(files=(contracts.PipelineFile("p.yml", definition),))
    reply = await call(bus, contracts.PIPELINES_CREATE, request, headers=caller_headers(caller))
    assert reply.header.code == 0
    return reply.pipeline_id.value


async def details(
    bus: MemoryBus, pipeline_id: str, caller: Principal
) -> list[contracts.PipelineDetailsItem]:
    request = pipelines_pb2.PipelinesDetailsRequest(
        pipeline_id=common_pb2.Identifier(value=pipeline_id)
    )
    stream = call_stream(bus, contracts.PIPELINES_DETAILS, request, headers=caller_headers(caller))
    return [item async for item in stream]


async def add_metadata(bus: MemoryBus, pipeline_id: str, caller: Principal) -> None:
    request = pipelines_pb2.PipelinesAddMetadataRequest(
        pipeline_id=common_pb2.Identifier(value=pipeline_id), metadata={"k": "v"}
    )
    await bus.request(
        subjects.PIPELINES_ADD_METADATA,
        request.SerializeToString(),
        headers=caller_headers(caller),
    )


async def remove_metadata(bus: MemoryBus, pipeline_id: str, caller: Principal) -> None:
    request = pipelines_pb2.PipelinesRemoveMetadataRequest(
        pipeline_id=common_pb2.Identifier(value=pipeline_id), keys=["k"]
    )
    await bus.request(
        subjects.PIPELINES_REMOVE_METADATA,
        request.SerializeToString(),
        headers=caller_headers(caller),
    )


async def update(bus: MemoryBus, pipeline_id: str, definition: str, caller: Principal) -> None:
    body = json.dumps(
        {"pipeline_id": pipeline_id, "files": [{"path": "p.yml", "content": definition}]}
    ).encode()
    await bus.request(subjects.PIPELINES_UPDATE, body, headers=caller_headers(caller))


async def test_the_creator_is_recorded_and_every_details_message_names_it(
    client: MemoryBus, two_operators: str
) -> None:
    pipeline_id = await create(client, two_operators, ALICE)
    for caller in (ALICE, BOB, VIEWER, ADMIN):
        items = await details(client, pipeline_id, caller)
        assert [item.owner for item in items] == ["alice"]
        assert items[0].details.name == "two-operators"


async def test_another_user_may_neither_update_nor_change_metadata(
    client: MemoryBus, two_operators: str
) -> None:
    pipeline_id = await create(client, two_operators, ALICE)
    refused = [
        update(client, pipeline_id, two_operators.replace("two-operators", "stolen"), BOB),
        add_metadata(client, pipeline_id, BOB),
        remove_metadata(client, pipeline_id, BOB),
    ]
    for attempt in refused:
        with pytest.raises(Forbidden) as caught:
            await attempt
        assert caught.value.messages == (f"pipeline {pipeline_id} belongs to another user",)
    [item] = await details(client, pipeline_id, ALICE)
    assert item.details.name == "two-operators" and dict(item.details.metadata) == {}


async def test_the_owner_and_an_admin_may(client: MemoryBus, two_operators: str) -> None:
    pipeline_id = await create(client, two_operators, ALICE)
    await add_metadata(client, pipeline_id, ALICE)
    await remove_metadata(client, pipeline_id, ADMIN)
    await update(client, pipeline_id, two_operators.replace("two-operators", "renamed"), ADMIN)
    [item] = await details(client, pipeline_id, VIEWER)
    assert item.details.name == "renamed" and item.owner == "alice"


async def test_a_pipeline_made_without_authentication_is_an_admins(
    client: MemoryBus, two_operators: str
) -> None:
    pipeline_id = await create(client, two_operators, ANONYMOUS)
    [item] = await details(client, pipeline_id, BOB)
    assert item.owner == ""
    with pytest.raises(Forbidden, match="created before authentication was turned on"):
        await add_metadata(client, pipeline_id, BOB)
    await add_metadata(client, pipeline_id, ADMIN)
    await remove_metadata(client, pipeline_id, ANONYMOUS)


async def test_a_malformed_caller_header_is_refused(client: MemoryBus, two_operators: str) -> None:
    pipeline_id = await create(client, two_operators, ALICE)
    request = pipelines_pb2.PipelinesAddMetadataRequest(
        pipeline_id=common_pb2.Identifier(value=pipeline_id), metadata={"k": "v"}
    )
    with pytest.raises(Unauthenticated, match="caller header is malformed"):
        await client.request(
            subjects.PIPELINES_ADD_METADATA,
            request.SerializeToString(),
            headers={"Aorta-Caller": "{not json"},
        )
