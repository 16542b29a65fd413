"""The gateway's reassembly of Pipelines.Create and Update streams into whole files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping

import pytest

from aorta.api import common_pb2, pipelines_pb2
from aorta.errors import ErrorCode, Invalid
from aorta_services.gateway.pipelines import (
    MAX_REQUEST_BYTES,
    UNNAMED_FILE,
    AssembledDefinition,
    assemble,
    create_body,
    update_body,
)

Create = pipelines_pb2.PipelinesCreateRequest
Update = pipelines_pb2.PipelinesUpdateRequest
File = pipelines_pb2.PipelineDefinitionFile


def chunk(
    path: str | None,
    content: str,
    *,
    pipeline_id: str = "",
    metadata: Mapping[str, str] | None = None,
) -> pipelines_pb2.PipelinesCreateRequest:
    request = Create(metadata=metadata or {})
    if path is not None:
        request.definition.CopyFrom(File(path=path, content=content))
    if pipeline_id:
        request.pipeline_id.CopyFrom(common_pb2.Identifier(value=pipeline_id))
    return request


async def stream(
    messages: Iterable[pipelines_pb2.PipelinesCreateRequest | pipelines_pb2.PipelinesUpdateRequest],
) -> AsyncIterator[pipelines_pb2.PipelinesCreateRequest | pipelines_pb2.PipelinesUpdateRequest]:
    for message in messages:
        yield message


async def assembled(
    *messages: pipelines_pb2.PipelinesCreateRequest, **kw: int
) -> AssembledDefinition:
    return await assemble(stream(messages), **kw)


async def refused(*messages: pipelines_pb2.PipelinesCreateRequest, **kw: int) -> Invalid:
    with pytest.raises(Invalid) as caught:
        await assemble(stream(messages), **kw)
    assert caught.value.code == ErrorCode.PIPELINE_DEFINITION_ERROR
    return caught.value


async def test_chunks_of_one_path_are_joined_in_arrival_order() -> None:
    result = await assembled(
        chunk("main.yml", "api-version: 0.4.0\nna"),
        chunk("ops/a.yml", "name: a\n"),
        chunk("main.yml", "me: demo\n"),
    )
    assert result.files == [
        ("main.yml", "api-version: 0.4.0\nname: demo\n"),
        ("ops/a.yml", "name: a\n"),
    ]


async def test_paths_differing_only_in_case_are_one_file_with_the_first_spelling() -> None:
    result = await assembled(
        chunk("Main.YML", "a: 1\n"), chunk("main.yml", "b: 2\n"), chunk("./MAIN.yml", "c: 3\n")
    )
    assert result.files == [("Main.YML", "a: 1\nb: 2\nc: 3\n")]


async def test_the_first_file_is_first_whatever_comes_later() -> None:
    result = await assembled(chunk("z.yml", "x"), chunk("a.yml", "y"), chunk("z.yml", "z"))
    assert [path for path, _ in result.files] == ["z.yml", "a.yml"]


async def test_chunks_without_a_path_get_a_default_name() -> None:
    result = await assembled(chunk("", "name: x\n"), chunk("", "more: 1\n"))
    assert result.files == [(UNNAMED_FILE, "name: x\nmore: 1\n")]


async def test_pipeline_id_and_metadata_come_from_the_first_message_that_has_them() -> None:
    result = await assembled(
        chunk("p.yml", "a"),
        chunk(None, "", pipeline_id="0123456789abcdef0123456789abcdef", metadata={"k": "v"}),
        chunk("p.yml", "b", pipeline_id="ffffffffffffffffffffffffffffffff", metadata={"x": "y"}),
    )
    assert result.pipeline_id == "0123456789abcdef0123456789abcdef"
    assert result.metadata == {"k": "v"}
    assert result.files == [("p.yml", "ab")]


async def test_update_streams_carry_the_id_and_no_metadata() -> None:
    identifier = common_pb2.Identifier(value="abc")
    result = await assemble(
        stream(
            [
                Update(definition=File(path="p.yml", content="x: ")),
                Update(pipeline_id=identifier, definition=File(path="p.yml", content="1\n")),
            ]
        )
    )
    assert (result.pipeline_id, result.files, result.metadata) == ("abc", [("p.yml", "x: 1\n")], {})


async def test_an_empty_stream_is_refused() -> None:
    error = await refused()
    assert "held no message" in error.messages[0]


async def test_a_definition_without_content_is_refused() -> None:
    error = await refused(chunk(None, "", pipeline_id="abc"), chunk("p.yml", ""))
    assert "the definition is empty" in error.messages[0]


async def test_a_stream_past_the_limit_is_refused_and_no_longer_read() -> None:
    read = []

    async def endless() -> AsyncIterator[pipelines_pb2.PipelinesCreateRequest]:
        while True:
            read.append(1)
            yield chunk("p.yml", "x" * 100)

    with pytest.raises(Invalid) as caught:
        await assemble(endless(), limit=1000)
    assert "larger than 1000 bytes" in caught.value.messages[0]
    assert len(read) == 10


async def test_paths_and_metadata_count_against_the_limit() -> None:
    await assembled(chunk("p.yml", "x" * 95), limit=100)
    await refused(chunk("p.yml", "x" * 96), limit=100)
    await refused(chunk("p.yml", "x", metadata={"k" * 50: "v" * 50}), limit=100)


def test_bodies_follow_the_pipelines_service_schema() -> None:
    definition = AssembledDefinition([("p.yml", 'näme: "x"\n')], "id1", {"k": "v"})
    assert json.loads(create_body(definition)) == {
        "files": [{"path": "p.yml", "content": 'näme: "x"\n'}],
        "pipeline_id": "id1",
        "metadata": {"k": "v"},
    }
    assert json.loads(update_body(definition)) == {
        "pipeline_id": "id1",
        "files": [{"path": "p.yml", "content": 'näme: "x"\n'}],
    }
    # Non-ASCII text is sent as UTF-8, not as \u escapes that would inflate the body.
    assert "näme".encode() in create_body(definition)


def test_a_body_that_escaping_grows_past_the_limit_is_refused() -> None:
    quotes = '"' * (MAX_REQUEST_BYTES // 2 + 1)
    with pytest.raises(Invalid) as caught:
        create_body(AssembledDefinition([("p.yml", quotes)]))
    assert caught.value.code == ErrorCode.PIPELINE_DEFINITION_ERROR
    assert "once encoded" in caught.value.messages[0]


async def test_the_definition_alone_has_its_own_limit() -> None:
    metadata = {"k" * 50: "v" * 200}
    await assembled(chunk("p.yml", "x" * 95, metadata=metadata), limit=1000, definition_limit=100)
    error = await refused(chunk("p.yml", "x" * 96), limit=1000, definition_limit=100)
    assert "larger than 100 bytes" in error.messages[0]
