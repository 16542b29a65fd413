"""Pure parts of the pipelines service: records, the graph summary, request bodies."""

from __future__ import annotations

import pytest

from aorta import contracts
from aorta.errors import ErrorCode, Invalid
from aorta.ids import PipelineId
from aorta.pipeline_spec import DefinitionError
from aorta_services.pipelines.domain import (
    DefinitionFile,
    OperatorLink,
    PipelineRecord,
    dag_depth,
    load_definition,
)

DIAMOND = """\
api-version: 0.4.0
name: diamond
operators:
- name: Split
  container: {image: s}
  output: [{name: left, path: /l}, {name: right, path: /r}]
- name: a
  container: {image: a}
  input: [{from: split, name: left, path: /in}]
  output: [{path: /out}]
- name: b
  container: {image: b}
  input: [{from: SPLIT, name: right, path: /in}]
  output: [{path: /out}]
- name: join
  container: {image: j}
  input: [{from: a, path: /a}, {from: b, path: /b}]
"""


def test_the_graph_summary_uses_the_operators_own_spelling() -> None:
    definition = load_definition([DefinitionFile("d.yml", DIAMOND)])
    assert definition.name == "diamond"
    assert definition.operators == (
        OperatorLink("Split"),
        OperatorLink("a", ("Split",)),
        OperatorLink("b", ("Split",)),
        OperatorLink("join", ("a", "b")),
    )
    assert dag_depth(definition.operators) == 3


def test_a_record_survives_its_stored_form() -> None:
    definition = load_definition([DefinitionFile("d.yml", DIAMOND)])
    metadata = {"a.b": "1", "$where": "2"}
    record = PipelineRecord.new(PipelineId("f" * 32), definition, metadata, "alice")
    document = {**record.to_document(), "version": 3}
    again = PipelineRecord.from_document(document)
    assert again == PipelineRecord(
        record.id, record.name, record.files, record.operators, metadata, 3, owner="alice"
    )
    assert [[n.name, [c.name for c in n.next]] for n in again.dag()] == [["Split", ["a", "b"]]]


def test_definition_errors_keep_the_loaders_code() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition([DefinitionFile("d.yml", DIAMOND.replace("from: a,", "from: join,"))])
    assert caught.value.code == ErrorCode.PIPELINE_DEFINITION_ERROR
    assert "cannot depend on itself" in caught.value.messages[0]


def test_files_naming_one_path_twice_are_refused() -> None:
    with pytest.raises(Invalid, match="are the same file"):
        load_definition([DefinitionFile("Ops/a.yml", DIAMOND), DefinitionFile("ops\\A.yml", "")])


def test_bodies_are_checked_field_by_field() -> None:
    create = contracts.PIPELINES_CREATE.decode_request
    command = create(b'{"files": [{"path": "p", "content": "c"}]}')
    assert (command.files, command.pipeline_id, command.metadata) == (
        (contracts.PipelineFile("p", "c"),),
        "",
        {},
    )
    for body in (
        b'{"files": []}',
        b'{"files": [{"path": "p", "content": "c"}], "metadata": {"k": 1}}',
        b'{"files": [{"path": "p", "content": "c"}], "pipeline_id": 7}',
    ):
        with pytest.raises(Invalid) as caught:
            create(body)
        assert caught.value.code == ErrorCode.PIPELINE_DEFINITION_ERROR
    with pytest.raises(Invalid, match="pipeline_id must be a string"):
        contracts.PIPELINES_SNAPSHOT.decode_request(b'{"pipeline_id": null}')


def test_a_record_stored_before_owners_were_recorded_loads_without_one() -> None:
    definition = load_definition([DefinitionFile("d.yml", DIAMOND)])
    record = PipelineRecord.new(PipelineId("f" * 32), definition, {}, "alice")
    document = {key: value for key, value in record.to_document().items() if key != "owner"}
    assert PipelineRecord.from_document(document).owner == ""
