"""The pipelines service's verbs over the in-process bus, with a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest

from aorta import contracts, subjects
from aorta.api import common_pb2, pipelines_pb2
from aorta.bus import CloudEvent
from aorta.bus.memory import MemoryBus
from aorta.bus.verbs import call_stream
from aorta.errors import AortaError, ErrorCode
from aorta.runtime.service import RunningService
from aorta_services.pipelines.domain import MAX_DAG_DEPTH

pytestmark = pytest.mark.usefixtures("service")

Files = list[tuple[str, str]]
UNUSED_ID = "0123456789abcdef0123456789abcdef"


def create_body(files: Files, pipeline_id: str = "", metadata: Mapping[str, str] = {}) -> bytes:
    return json.dumps(
        {
            "files": [{"path": path, "content": content} for path, content in files],
            "pipeline_id": pipeline_id,
            "metadata": dict(metadata),
        }
    ).encode()


async def create(bus: MemoryBus, files: Files, **kw: Any) -> pipelines_pb2.PipelinesCreateResponse:
    reply = await bus.request(subjects.PIPELINES_CREATE, create_body(files, **kw))
    return pipelines_pb2.PipelinesCreateResponse.FromString(reply)


async def create_id(bus: MemoryBus, files: Files, **kw: Any) -> str:
    return (await create(bus, files, **kw)).pipeline_id.value


async def update(bus: MemoryBus, pipeline_id: str, files: Files) -> list[str]:
    body = json.dumps(
        {"pipeline_id": pipeline_id, "files": [{"path": p, "content": c} for p, c in files]}
    ).encode()
    reply = pipelines_pb2.PipelinesUpdateResponse.FromString(
        await bus.request(subjects.PIPELINES_UPDATE, body)
    )
    assert reply.header.code == 0
    return list(reply.header.messages)


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


async def details(bus: MemoryBus, pipeline_id: str) -> list[pipelines_pb2.PipelinesDetailsResponse]:
    request = pipelines_pb2.PipelinesDetailsRequest(pipeline_id=ident(pipeline_id))
    stream = call_stream(bus, contracts.PIPELINES_DETAILS, request)
    return [item.details async for item in stream]


async def listing(bus: MemoryBus) -> list[pipelines_pb2.PipelinesListResponse]:
    stream = bus.request_stream(
        subjects.PIPELINES_LIST, pipelines_pb2.PipelinesListRequest().SerializeToString()
    )
    return [pipelines_pb2.PipelinesListResponse.FromString(item) async for item in stream]


async def listed_ids(bus: MemoryBus) -> list[str]:
    return [item.details.pipeline_id.value for item in await listing(bus) if item.details.name]


async def add_metadata(
    bus: MemoryBus, pipeline_id: str, metadata: dict[str, str]
) -> dict[str, str]:
    request = pipelines_pb2.PipelinesAddMetadataRequest(
        pipeline_id=ident(pipeline_id), metadata=metadata
    )
    reply = await bus.request(subjects.PIPELINES_ADD_METADATA, request.SerializeToString())
    return dict(pipelines_pb2.PipelinesAddMetadataResponse.FromString(reply).metadata)


async def remove_metadata(bus: MemoryBus, pipeline_id: str, keys: list[str]) -> dict[str, str]:
    request = pipelines_pb2.PipelinesRemoveMetadataRequest(
        pipeline_id=ident(pipeline_id), keys=keys
    )
    reply = await bus.request(subjects.PIPELINES_REMOVE_METADATA, request.SerializeToString())
    return dict(pipelines_pb2.PipelinesRemoveMetadataResponse.FromString(reply).metadata)


async def remove(bus: MemoryBus, pipeline_id: str) -> None:
    request = pipelines_pb2.PipelinesRemoveRequest(pipeline_id=ident(pipeline_id))
    reply = await bus.request(subjects.PIPELINES_REMOVE, request.SerializeToString())
    assert pipelines_pb2.PipelinesRemoveResponse.FromString(reply).header.code == 0


async def fails(call: Any, code: int) -> AortaError:
    with pytest.raises(AortaError) as caught:
        await call
    assert caught.value.code == code, caught.value.messages
    return caught.value


def dag(nodes: Any) -> list[Any]:
    return [[node.name, dag(node.next)] for node in nodes]


async def test_create_stores_the_definition_and_details_describe_it(
    client: MemoryBus, two_operators: str
) -> None:
    reply = await create(client, [("two.yml", two_operators)])
    assert reply.header.code == 0 and list(reply.header.messages) == []
    pipeline_id = reply.pipeline_id.value
    assert len(pipeline_id) == 32 and int(pipeline_id, 16) >= 0
    [message] = await details(client, pipeline_id)
    assert message.pipeline_id.value == pipeline_id
    assert message.name == "two-operators"
    assert (message.definition.path, message.definition.content) == ("two.yml", two_operators)
    assert dag(message.dag) == [["operator1", [["operator2", []]]]]


async def test_multi_file_details_send_one_message_per_file_root_first(client: MemoryBus) -> None:
    root = (
        "api-version: 0.4.0\nname: imported\noperators:\n"
        "- import: {path: ops/reader.yml}\n- import: {path: ops/writer.yml}\n"
    )
    reader = "name: reader\ncontainer: {image: r}\noutput: [{path: /out}]\n"
    writer = "name: writer\ncontainer: {image: w}\ninput: [{from: reader, path: /in}]\n"
    files = [("main.yml", root), ("ops/reader.yml", reader), ("ops/writer.yml", writer)]
    pipeline_id = await create_id(client, files, metadata={"team": "imaging"})
    messages = await details(client, pipeline_id)
    assert [(m.definition.path, m.definition.content) for m in messages] == files
    assert {(m.pipeline_id.value, m.name, m.header.code) for m in messages} == {
        (pipeline_id, "imported", 0)
    }
    assert dag(messages[0].dag) == [["reader", [["writer", []]]]]
    assert dict(messages[0].metadata) == {"team": "imaging"}
    assert [len(m.dag) + len(m.metadata) for m in messages[1:]] == [0, 0]


async def test_warnings_come_back_in_a_successful_header(client: MemoryBus) -> None:
    definition = (
        "api-version: 0.4.0\nname: w\nparameters: {UNUSED: x}\n"
        "operators:\n- name: a\n  container: {image: b}\n"
    )
    reply = await create(client, [("w.yml", definition)])
    assert reply.header.code == 0
    assert reply.pipeline_id.value
    assert any("UNUSED" in m and "warning" in m for m in reply.header.messages)


@pytest.mark.parametrize(
    ("change", "code", "named"),
    [
        (
            ("input:\n  - path: /pipeline_input", "input:\n  - from: operator2\n    path: /p"),
            ErrorCode.PIPELINE_DEFINITION_ERROR,
            "cycle: operator1 -> operator2 -> operator1",
        ),
        (("from: operator1", "from: nowhere"), ErrorCode.PIPELINE_DEFINITION_ERROR, "'nowhere'"),
        (("operators:", "operators: ["), ErrorCode.PIPELINE_LOAD_ERROR, "two.yml:"),
    ],
)
async def test_definition_errors_carry_their_code_and_diagnostics_and_store_nothing(
    client: MemoryBus, two_operators: str, change: tuple[str, str], code: int, named: str
) -> None:
    broken = two_operators.replace(*change)
    error = await fails(create(client, [("two.yml", broken)]), code)
    assert any(named in message for message in error.messages), error.messages
    assert all(message.startswith("two.yml:") for message in error.messages)
    assert await listed_ids(client) == []


async def test_a_client_chosen_id_is_honoured_once(client: MemoryBus, two_operators: str) -> None:
    dashed = "01234567-89AB-cdef-0123-456789abcdef"
    assert await create_id(client, [("p.yml", two_operators)], pipeline_id=dashed) == UNUSED_ID
    error = await fails(
        create(client, [("p.yml", two_operators)], pipeline_id=UNUSED_ID),
        ErrorCode.PIPELINE_STORE_ERROR,
    )
    assert UNUSED_ID in error.messages[0] and "already in use" in error.messages[0]
    await fails(
        create(client, [("p.yml", two_operators)], pipeline_id="not-an-id"),
        ErrorCode.PIPELINE_ID_INVALID,
    )
    assert await listed_ids(client) == [UNUSED_ID]


async def test_invalid_metadata_at_create_stores_nothing(
    client: MemoryBus, two_operators: str
) -> None:
    await fails(
        create(client, [("p.yml", two_operators)], metadata={"k": "v" * 300}),
        ErrorCode.METADATA_INVALID,
    )
    assert await listed_ids(client) == []


async def test_list_is_oldest_first_with_a_header_in_each_message(
    client: MemoryBus, two_operators: str
) -> None:
    [empty] = await listing(client)
    assert empty.header.code == 0 and not empty.HasField("details")
    first = await create_id(client, [("p.yml", two_operators)], metadata={"a": "1"})
    second = await create_id(client, [("p.yml", two_operators.replace("two-", "other-"))])
    items = await listing(client)
    assert [(i.details.pipeline_id.value, i.details.name) for i in items] == [
        (first, "two-operators"),
        (second, "other-operators"),
    ]
    assert dict(items[0].details.metadata) == {"a": "1"}
    assert all(item.header.code == 0 for item in items)


async def test_update_replaces_the_definition_only_when_it_is_valid(
    client: MemoryBus, two_operators: str
) -> None:
    pipeline_id = await create_id(client, [("p.yml", two_operators)], metadata={"k": "v"})
    renamed = two_operators.replace("name: two-operators", "name: renamed")
    assert await update(client, pipeline_id, [("new.yml", renamed)]) == []
    [message] = await details(client, pipeline_id)
    assert (message.name, message.definition.path) == ("renamed", "new.yml")
    assert dict(message.metadata) == {"k": "v"}
    cyclic = renamed.replace("- path: /pipeline_input", "- from: operator2\n    path: /p")
    await fails(
        update(client, pipeline_id, [("bad.yml", cyclic)]), ErrorCode.PIPELINE_DEFINITION_ERROR
    )
    [unchanged] = await details(client, pipeline_id)
    assert (unchanged.name, unchanged.definition.content) == ("renamed", renamed)


async def test_unknown_and_malformed_ids(client: MemoryBus, two_operators: str) -> None:
    error = await fails(details(client, UNUSED_ID), ErrorCode.PIPELINE_NOT_FOUND)
    assert UNUSED_ID in error.messages[0]
    await fails(update(client, UNUSED_ID, [("p.yml", two_operators)]), ErrorCode.PIPELINE_NOT_FOUND)
    await fails(remove(client, UNUSED_ID), ErrorCode.PIPELINE_NOT_FOUND)
    await fails(add_metadata(client, UNUSED_ID, {"k": "v"}), ErrorCode.PIPELINE_NOT_FOUND)
    await fails(remove_metadata(client, UNUSED_ID, ["k"]), ErrorCode.PIPELINE_NOT_FOUND)
    for bad in ("", "xyz", "0123"):
        error = await fails(details(client, bad), ErrorCode.PIPELINE_ID_INVALID)
        assert "pipeline id" in error.messages[0]
        await fails(remove(client, bad), ErrorCode.PIPELINE_ID_INVALID)
        await fails(update(client, bad, [("p.yml", two_operators)]), ErrorCode.PIPELINE_ID_INVALID)


async def test_metadata_follows_clara_rules(client: MemoryBus, two_operators: str) -> None:
    pipeline_id = await create_id(client, [("p.yml", two_operators)])
    assert await add_metadata(client, pipeline_id, {"Site": "north"}) == {"Site": "north"}
    assert await add_metadata(client, pipeline_id, {"study": "1"}) == {
        "Site": "north",
        "study": "1",
    }
    error = await fails(
        add_metadata(client, pipeline_id, {"new": "x", "SITE": "south"}), ErrorCode.METADATA_INVALID
    )
    assert "'SITE' already exists" in error.messages[0]
    assert await remove_metadata(client, pipeline_id, ["site", "absent"]) == {"study": "1"}
    [message] = await details(client, pipeline_id)
    assert dict(message.metadata) == {"study": "1"}


async def test_concurrent_metadata_additions_all_land(
    client: MemoryBus, two_operators: str
) -> None:
    pipeline_id = await create_id(client, [("p.yml", two_operators)])
    await asyncio.gather(*(add_metadata(client, pipeline_id, {f"k{i}": "v"}) for i in range(8)))
    [message] = await details(client, pipeline_id)
    assert sorted(message.metadata) == [f"k{i}" for i in range(8)]


async def test_remove_forgets_the_pipeline(client: MemoryBus, two_operators: str) -> None:
    keep = await create_id(client, [("p.yml", two_operators)])
    gone = await create_id(client, [("p.yml", two_operators)])
    await remove(client, gone)
    assert await listed_ids(client) == [keep]
    await fails(details(client, gone), ErrorCode.PIPELINE_NOT_FOUND)
    await fails(remove(client, gone), ErrorCode.PIPELINE_NOT_FOUND)


async def test_snapshot_returns_the_files_for_a_job(client: MemoryBus, two_operators: str) -> None:
    files = [("Main.yml", two_operators), ("extra.yml", "name: unused\n")]
    pipeline_id = await create_id(client, files)
    body = json.dumps({"pipeline_id": pipeline_id.upper()}).encode()
    assert json.loads(await client.request(subjects.PIPELINES_SNAPSHOT, body)) == {
        "pipeline_id": pipeline_id,
        "name": "two-operators",
        "root": "Main.yml",
        "files": [{"path": p, "content": c} for p, c in files],
    }
    missing = json.dumps({"pipeline_id": UNUSED_ID}).encode()
    await fails(client.request(subjects.PIPELINES_SNAPSHOT, missing), ErrorCode.PIPELINE_NOT_FOUND)
    await fails(
        client.request(subjects.PIPELINES_SNAPSHOT, b"[]"), ErrorCode.PIPELINE_DEFINITION_ERROR
    )


async def test_malformed_bodies_are_refused(client: MemoryBus) -> None:
    for body in (b"not json", b"{}", b'{"files": [{"path": 1, "content": ""}]}'):
        error = await fails(
            client.request(subjects.PIPELINES_CREATE, body), ErrorCode.PIPELINE_DEFINITION_ERROR
        )
        assert "malformed pipelines create request" in error.messages[0]
    same = create_body([("a.yml", "x"), ("A.YML", "y")])
    error = await fails(
        client.request(subjects.PIPELINES_CREATE, same), ErrorCode.PIPELINE_DEFINITION_ERROR
    )
    assert "same file" in error.messages[0]
    await fails(
        client.request(subjects.PIPELINES_REMOVE, b"\xff\xff"), ErrorCode.PIPELINE_DEFINITION_ERROR
    )


async def test_events_follow_each_stored_change(client: MemoryBus, two_operators: str) -> None:
    seen: list[CloudEvent] = []
    all_seen = asyncio.Event()

    async def record(event: CloudEvent) -> None:
        seen.append(event)
        if len(seen) == 5:
            all_seen.set()

    subscription = await client.subscribe_events("aorta.events.pipeline.>", record, deliver="all")
    pipeline_id = await create_id(client, [("p.yml", two_operators)])
    await update(client, pipeline_id, [("p.yml", two_operators)])
    await add_metadata(client, pipeline_id, {"k": "v"})
    await remove_metadata(client, pipeline_id, ["k"])
    await remove(client, pipeline_id)
    async with asyncio.timeout(30):
        await all_seen.wait()
    await subscription.drain()
    assert [(e.type, e.subject, e.source) for e in seen] == [
        (f"org.aorta.pipeline.{name}", pipeline_id, "aorta/pipelines")
        for name in ("created", "updated", "updated", "updated", "removed")
    ]
    assert [e.data.get("change") for e in seen] == [
        None,
        "definition",
        "metadata",
        "metadata",
        None,
    ]
    assert all(e.data["name"] == "two-operators" for e in seen)


async def test_a_long_chain_is_stored_and_its_dag_cut_for_protobuf_readers(
    client: MemoryBus,
) -> None:
    count = MAX_DAG_DEPTH + 6
    operators = "".join(
        f"- name: op{i}\n  container: {{image: x}}\n"
        + (f"  input: [{{from: op{i - 1}, path: /in}}]\n" if i else "")
        + "  output: [{path: /out}]\n"
        for i in range(count)
    )
    reply = await create(
        client, [("chain.yml", f"api-version: 0.4.0\nname: chain\noperators:\n{operators}")]
    )
    assert any(f"chain {count} deep" in message for message in reply.header.messages)
    [message] = await details(client, reply.pipeline_id.value)
    depth, nodes = 0, message.dag
    while nodes:
        depth, nodes = depth + 1, nodes[0].next
    assert depth == MAX_DAG_DEPTH


async def test_stopping_the_service_stops_answering(
    client: MemoryBus, service: RunningService
) -> None:
    await service.stop(1.0)
    await fails(listing(client), ErrorCode.SERVICE_UNAVAILABLE)


async def test_details_messages_are_settled(client: MemoryBus, two_operators: str) -> None:
    """Every change of a pipeline comes with its event, so a gateway may keep any answer."""
    pipeline_id = await create_id(client, [("two.yml", two_operators)])
    request = pipelines_pb2.PipelinesDetailsRequest(pipeline_id=ident(pipeline_id))
    items = [item async for item in call_stream(client, contracts.PIPELINES_DETAILS, request)]
    assert [item.settled for item in items] == [True]
