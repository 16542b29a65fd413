"""All seven Pipelines RPCs through the gateway, over gRPC with our own stubs, answered by the
pipelines service across a real nats-server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from aorta import subjects
from aorta.api import common_pb2, pipelines_pb2
from aorta.bus.nats import NatsBus
from aorta.errors import ErrorCode

if TYPE_CHECKING:
    from aorta.api.pipelines_pb2_grpc import PipelinesAsyncStub

Create = pipelines_pb2.PipelinesCreateRequest
Update = pipelines_pb2.PipelinesUpdateRequest
File = pipelines_pb2.PipelineDefinitionFile
UNUSED_ID = "0123456789abcdef0123456789abcdef"

TWO_OPERATORS = """\
api-version: 0.4.0
name: two-operators
orchestrator: Clara
operators:
- name: operator1
  container: {image: example/operator1, tag: latest}
  input: [{path: /pipeline_input}]
  output: [{name: segmentation-output, path: /output}]
- name: operator2
  container: {image: example/operator2, tag: latest}
  input: [{from: operator1, name: segmentation-output, path: /input}]
  output: [{name: final-output, path: /output}]
"""


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def sent(messages: Iterable[Any]) -> AsyncIterator[Any]:
    for message in messages:
        yield message


async def create(
    stub: PipelinesAsyncStub, *messages: Create
) -> pipelines_pb2.PipelinesCreateResponse:
    return await stub.Create(sent(messages))


async def create_id(stub: PipelinesAsyncStub, text: str, path: str = "p.yml") -> str:
    response = await create(stub, Create(definition=File(path=path, content=text)))
    assert response.header.code == 0, list(response.header.messages)
    return response.pipeline_id.value


async def details(stub: PipelinesAsyncStub, pipeline_id: str) -> list[Any]:
    request = pipelines_pb2.PipelinesDetailsRequest(pipeline_id=ident(pipeline_id))
    return [message async for message in stub.Details(request)]


def dag(nodes: Any) -> list[Any]:
    return [[node.name, dag(node.next)] for node in nodes]


def failed(header: common_pb2.ResponseHeader, code: int) -> list[str]:
    assert header.code == code, list(header.messages)
    return list(header.messages)


async def test_create_from_chunks_split_mid_line_then_list_and_details(
    stub: PipelinesAsyncStub,
) -> None:
    parts = chunks(TWO_OPERATORS, 37)
    assert not all(part.endswith("\n") for part in parts)
    messages = [Create(definition=File(path="two.yml", content=part)) for part in parts]
    messages[2].metadata["site"] = "north"
    response = await create(stub, *messages)
    assert response.header.code == 0, list(response.header.messages)
    pipeline_id = response.pipeline_id.value
    assert len(pipeline_id) == 32

    listed = [item async for item in stub.List(pipelines_pb2.PipelinesListRequest())]
    assert [(i.details.pipeline_id.value, i.details.name) for i in listed] == [
        (pipeline_id, "two-operators")
    ]
    assert dict(listed[0].details.metadata) == {"site": "north"}

    [message] = await details(stub, pipeline_id)
    assert (message.header.code, message.pipeline_id.value, message.name) == (
        0,
        pipeline_id,
        "two-operators",
    )
    assert (message.definition.path, message.definition.content) == ("two.yml", TWO_OPERATORS)
    assert dag(message.dag) == [["operator1", [["operator2", []]]]]
    assert dict(message.metadata) == {"site": "north"}


async def test_multi_file_definitions_with_imports_and_interleaved_chunks(
    stub: PipelinesAsyncStub,
) -> None:
    root = (
        "api-version: 0.4.0\nname: imported\noperators:\n"
        "- import: {path: ops/reader.yml}\n- import: {path: ops/writer.yml}\n"
    )
    reader = "name: reader\ncontainer: {image: r}\noutput: [{path: /out}]\n"
    writer = "name: writer\ncontainer: {image: w}\ninput: [{from: reader, path: /in}]\n"
    files = {"main.yml": root, "ops/reader.yml": reader, "ops/writer.yml": writer}
    split = {path: chunks(text, 20) for path, text in files.items()}
    rounds = max(len(parts) for parts in split.values())
    # Round robin over the files; each file's last chunk is sent under an upper-case spelling
    # of its path, which names the same file.
    messages = [
        Create(
            definition=File(
                path=path.upper() if index == len(parts) - 1 else path, content=parts[index]
            )
        )
        for index in range(rounds)
        for path, parts in split.items()
        if index < len(parts)
    ]
    response = await create(stub, *messages)
    assert response.header.code == 0, list(response.header.messages)
    sent_back = await details(stub, response.pipeline_id.value)
    assert [(m.definition.path, m.definition.content) for m in sent_back] == list(files.items())
    assert dag(sent_back[0].dag) == [["reader", [["writer", []]]]]


async def test_update_replaces_the_definition(stub: PipelinesAsyncStub) -> None:
    pipeline_id = await create_id(stub, TWO_OPERATORS)
    renamed = TWO_OPERATORS.replace("name: two-operators", "name: renamed")
    response = await stub.Update(
        sent(
            [
                Update(definition=File(path="v2.yml", content=renamed[:50])),
                Update(
                    pipeline_id=ident(pipeline_id),
                    definition=File(path="v2.yml", content=renamed[50:]),
                ),
            ]
        )
    )
    assert response.header.code == 0, list(response.header.messages)
    [message] = await details(stub, pipeline_id)
    assert (message.name, message.definition.path, message.definition.content) == (
        "renamed",
        "v2.yml",
        renamed,
    )
    broken = renamed.replace("from: operator1", "from: ghost")
    response = await stub.Update(
        sent(
            [Update(pipeline_id=ident(pipeline_id), definition=File(path="v3.yml", content=broken))]
        )
    )
    assert any("'ghost'" in m for m in failed(response.header, ErrorCode.PIPELINE_DEFINITION_ERROR))
    assert (await details(stub, pipeline_id))[0].definition.path == "v2.yml"


async def test_metadata_add_and_remove(stub: PipelinesAsyncStub) -> None:
    pipeline_id = await create_id(stub, TWO_OPERATORS)
    added = await stub.AddMetadata(
        pipelines_pb2.PipelinesAddMetadataRequest(
            pipeline_id=ident(pipeline_id), metadata={"Study": "ct", "site": "north"}
        )
    )
    assert (added.header.code, added.pipeline_id.value) == (0, pipeline_id)
    assert dict(added.metadata) == {"Study": "ct", "site": "north"}
    again = await stub.AddMetadata(
        pipelines_pb2.PipelinesAddMetadataRequest(
            pipeline_id=ident(pipeline_id), metadata={"STUDY": "x"}
        )
    )
    assert "already exists" in failed(again.header, ErrorCode.METADATA_INVALID)[0]
    removed = await stub.RemoveMetadata(
        pipelines_pb2.PipelinesRemoveMetadataRequest(pipeline_id=ident(pipeline_id), keys=["study"])
    )
    assert (removed.header.code, dict(removed.metadata)) == (0, {"site": "north"})


async def test_remove_then_unknown(stub: PipelinesAsyncStub) -> None:
    pipeline_id = await create_id(stub, TWO_OPERATORS)
    request = pipelines_pb2.PipelinesRemoveRequest(pipeline_id=ident(pipeline_id))
    assert (await stub.Remove(request)).header.code == 0
    again = await stub.Remove(request)
    assert pipeline_id in failed(again.header, ErrorCode.PIPELINE_NOT_FOUND)[0]
    [message] = await details(stub, pipeline_id)
    assert pipeline_id in failed(message.header, ErrorCode.PIPELINE_NOT_FOUND)[0]
    listed = [item async for item in stub.List(pipelines_pb2.PipelinesListRequest())]
    assert [(item.header.code, item.HasField("details")) for item in listed] == [(0, False)]


async def test_malformed_ids(stub: PipelinesAsyncStub) -> None:
    [message] = await details(stub, "not-a-uuid")
    assert "not-a-uuid" in failed(message.header, ErrorCode.PIPELINE_ID_INVALID)[0]
    removed = await stub.Remove(pipelines_pb2.PipelinesRemoveRequest(pipeline_id=ident("12")))
    failed(removed.header, ErrorCode.PIPELINE_ID_INVALID)
    response = await create(
        stub,
        Create(pipeline_id=ident("zz"), definition=File(path="p.yml", content=TWO_OPERATORS)),
    )
    failed(response.header, ErrorCode.PIPELINE_ID_INVALID)
    updated = await stub.Update(
        sent([Update(definition=File(path="p.yml", content=TWO_OPERATORS))])
    )
    failed(updated.header, ErrorCode.PIPELINE_ID_INVALID)


async def test_a_client_chosen_id(stub: PipelinesAsyncStub) -> None:
    message = Create(
        pipeline_id=ident(UNUSED_ID), definition=File(path="p.yml", content=TWO_OPERATORS)
    )
    assert (await create(stub, message)).pipeline_id.value == UNUSED_ID
    again = await create(stub, message)
    assert "already in use" in failed(again.header, ErrorCode.PIPELINE_STORE_ERROR)[0]


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        (
            "input: [{path: /pipeline_input}]",
            "input: [{from: operator2, name: final-output, path: /pipeline_input}]",
            "cycle: operator1 -> operator2 -> operator1",
        ),
        ("from: operator1", "from: missing-op", "'missing-op'"),
    ],
)
async def test_broken_graphs_name_the_problem(
    stub: PipelinesAsyncStub, old: str, new: str, named: str
) -> None:
    text = TWO_OPERATORS.replace(old, new)
    response = await create(stub, Create(definition=File(path="bad.yml", content=text)))
    messages = failed(response.header, ErrorCode.PIPELINE_DEFINITION_ERROR)
    assert any(named in m and m.startswith("bad.yml:") for m in messages), messages
    assert not response.pipeline_id.value


async def test_empty_and_oversized_streams_are_refused(stub: PipelinesAsyncStub) -> None:
    assert (
        "held no message"
        in failed((await create(stub)).header, ErrorCode.PIPELINE_DEFINITION_ERROR)[0]
    )
    empty = await create(stub, Create(definition=File(path="p.yml", content="")))
    assert "empty" in failed(empty.header, ErrorCode.PIPELINE_DEFINITION_ERROR)[0]
    big = "#" * (512 * 1024)
    response = await create(
        stub, *(Create(definition=File(path="p.yml", content=big)) for _ in range(3))
    )
    assert "larger than" in failed(response.header, ErrorCode.PIPELINE_DEFINITION_ERROR)[0]


async def test_malformed_request_bytes_get_invalid_argument(channel: grpc.aio.Channel) -> None:
    def raw(data: bytes) -> bytes:
        return data

    remove = channel.unary_unary(
        "/nvidia.clara.platform.Pipelines/Remove", request_serializer=raw, response_deserializer=raw
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await remove(b"\xff\xff\xff")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    create = channel.stream_unary(
        "/nvidia.clara.platform.Pipelines/Create", request_serializer=raw, response_deserializer=raw
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(sent([b"\x12\x02\x0a", b"\xff"]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_scheduler_snapshot_over_nats(stub: PipelinesAsyncStub, bus: NatsBus) -> None:
    pipeline_id = await create_id(stub, TWO_OPERATORS, path="two.yml")
    body = json.dumps({"pipeline_id": pipeline_id}).encode()
    snapshot = json.loads(await bus.request(subjects.PIPELINES_SNAPSHOT, body))
    assert snapshot == {
        "pipeline_id": pipeline_id,
        "name": "two-operators",
        "root": "two.yml",
        "files": [{"path": "two.yml", "content": TWO_OPERATORS}],
    }


def large_metadata(total: int) -> dict[str, str]:
    """About `total` bytes of metadata (keys and values), in entries of Clara's longest value."""
    return {f"key-{i:05d}": f"{i:05d}" + "v" * 251 for i in range(total // 265)}


async def test_megabytes_of_metadata_round_trip(stub: PipelinesAsyncStub) -> None:
    """Clara allows 4 MB of metadata per object: 3.5 MB crosses the bus in every answer."""
    metadata = large_metadata(3_500_000)
    response = await create(
        stub, Create(definition=File(path="two.yml", content=TWO_OPERATORS), metadata=metadata)
    )
    assert response.header.code == 0, list(response.header.messages)
    pipeline_id = response.pipeline_id.value

    [message] = await details(stub, pipeline_id)
    assert message.definition.content == TWO_OPERATORS
    assert dict(message.metadata) == metadata
    listed = [item async for item in stub.List(pipelines_pb2.PipelinesListRequest())]
    [item] = [i for i in listed if i.details.pipeline_id.value == pipeline_id]
    assert dict(item.details.metadata) == metadata

    added = await stub.AddMetadata(
        pipelines_pb2.PipelinesAddMetadataRequest(
            pipeline_id=ident(pipeline_id), metadata={"site": "north"}
        )
    )
    assert added.header.code == 0, list(added.header.messages)
    assert dict(added.metadata) == {**metadata, "site": "north"}
