"""load_pipeline: what it accepts, what it warns about, and how it refuses the rest."""

from __future__ import annotations

import pickle

import pytest

from aorta.errors import ErrorCode, Invalid
from aorta.pipeline_spec import (
    MAX_DIAGNOSTICS,
    Container,
    DefinitionError,
    Diagnostic,
    load_pipeline,
)

HEAD = "api-version: 0.4.0\nname: demo\n"


def refused(files: dict[str, str], root: str | None = None) -> DefinitionError:
    with pytest.raises(DefinitionError) as raised:
        load_pipeline(files, root=root)
    return raised.value


def one_operator(body: str, head: str = HEAD) -> dict[str, str]:
    return {"p.yml": head + "operators:\n- name: op\n  container: {image: tools/op}\n" + body}


def test_diagnostic_formats_as_file_line_column() -> None:
    diagnostic = Diagnostic("error", "it broke", "def/p.yml", 3, 7)

    assert str(diagnostic) == "def/p.yml:3:7: error: it broke"


def test_all_errors_are_reported_not_just_the_first() -> None:
    error = refused(
        one_operator("  requests: {cpu: -1, gpu: -2}\n  input: [{path: in}]\n", "name: x y\n")
    )

    assert len(error.diagnostics) == 5
    assert [d.line for d in error.diagnostics] == [1, 1, 5, 5, 6]
    assert error.messages == tuple(str(d) for d in error.diagnostics)
    assert isinstance(error, Invalid)


def test_structure_problems_carry_the_load_code_even_next_to_semantic_ones() -> None:
    error = refused(one_operator("  requests: {cpu: many}\n  input: [{path: in}]\n"))

    assert error.code == ErrorCode.PIPELINE_LOAD_ERROR
    assert {d.code for d in error.diagnostics} == {
        ErrorCode.PIPELINE_LOAD_ERROR,
        ErrorCode.PIPELINE_DEFINITION_ERROR,
    }


def test_definition_error_crosses_the_bus_as_invalid() -> None:
    error = refused(one_operator("  input: [{path: in}]\n"))

    wire = error.to_wire()
    rebuilt = Invalid.from_wire(wire)

    assert type(rebuilt) is Invalid
    assert rebuilt.code == ErrorCode.PIPELINE_DEFINITION_ERROR
    assert rebuilt.messages == error.messages


def test_far_off_unknown_keys_are_warnings_with_positions() -> None:
    loaded = load_pipeline(one_operator("  colour: blue\n  stage: 2\n", HEAD + "owner: me\n"))

    assert [(w.line, w.column) for w in loaded.warnings] == [(3, 1), (7, 3), (8, 3)]
    assert "unknown key `colour` in operator 'op' is ignored" in loaded.warnings[1].message
    assert "the keys of the operator are name, description" in loaded.warnings[1].message
    assert all(w.severity == "warning" and w.code is None for w in loaded.warnings)


def test_a_document_full_of_unknown_keys_reports_the_first_hundred_with_hints() -> None:
    many = "".join(f"  extra-{n:04d}: x\n" for n in range(MAX_DIAGNOSTICS * 3))

    loaded = load_pipeline(one_operator(many))

    assert len(loaded.warnings) == MAX_DIAGNOSTICS
    assert all("the keys of the operator are" in w.message for w in loaded.warnings)


def test_a_near_miss_is_an_error_naming_the_key_it_may_mean() -> None:
    error = refused(one_operator("  containr: {}\n"))

    (diagnostic,) = error.diagnostics
    assert (diagnostic.line, diagnostic.column) == (6, 3)
    assert diagnostic.message == (
        "unknown key `containr` in operator 'op'; did you mean `container`?"
    )
    assert error.code == ErrorCode.PIPELINE_LOAD_ERROR


def test_a_missing_required_key_is_reported_when_no_typo_explains_it() -> None:
    error = refused({"p.yml": HEAD + "operators:\n- name: op\n  colour: blue\n"})

    assert [d.message for d in error.diagnostics] == ["operator 'op' is missing `container`"]
    assert "unknown key `colour`" in error.warnings[0].message


def test_deprecated_services_warn_but_load() -> None:
    loaded = load_pipeline(
        one_operator("  services:\n  - name: triton\n    container: {image: nvcr.io/triton}\n")
    )

    (warning,) = loaded.warnings
    assert "deprecated since Clara 0.7.1" in warning.message and warning.line == 6
    assert loaded.pipeline.operators[0].services[0].container.tag == "latest"


def test_models_before_0_6_warn_but_are_kept() -> None:
    loaded = load_pipeline(one_operator("  models: [{name: liver}]\n"))

    assert "need api-version 0.6.0" in loaded.warnings[0].message
    assert loaded.pipeline.operators[0].models == ("liver",)


def test_types_before_0_5_warn_but_are_kept() -> None:
    loaded = load_pipeline(one_operator("  output: [{path: /o, type: stream, element-type: x}]\n"))

    assert "need api-version 0.5.0" in loaded.warnings[0].message
    assert loaded.pipeline.operators[0].outputs[0].type == "stream"


@pytest.mark.parametrize(
    ("version", "warned"),
    [("0.3.0", False), ("'0.4.0'", False), ('"0.7.0"', False), ("0.7.4", True), ("0.8.1", True)],
)
def test_accepted_api_versions(version: str, warned: bool) -> None:
    loaded = load_pipeline(one_operator("", f"api-version: {version}\nname: demo\n"))

    assert loaded.pipeline.api_version == version.strip("'\"")
    assert bool(loaded.warnings) is warned


@pytest.mark.parametrize("version", ["0.4", "4", "0.9.0", "v0.4.0", "[0.4.0]", "0.4.0.1", "''"])
def test_refused_api_versions(version: str) -> None:
    error = refused(one_operator("", f"api-version: {version}\nname: demo\n"))

    assert error.code == ErrorCode.PIPELINE_LOAD_ERROR
    assert error.diagnostics[0].line == 1


def test_operator_may_name_its_own_api_version() -> None:
    loaded = load_pipeline(one_operator("  api-version: 0.6.0\n  models: [{name: m}]\n"))

    assert loaded.warnings == ()
    assert loaded.pipeline.operators[0].api_version == "0.6.0"


def test_requests_accept_quoted_digits_and_refuse_other_text() -> None:
    loaded = load_pipeline(one_operator("  requests: {cpu: '4', gpu: 0x1, memory: 2_048}\n"))
    error = refused(one_operator("  requests: {gpu: yes}\n"))

    requests = loaded.pipeline.operators[0].requests
    assert (requests.cpu, requests.gpu, requests.memory) == (4, 1, 2048)
    assert "must be a whole number, not the boolean 'yes'" in error.messages[0]


def test_image_tag_and_digest_in_the_image_name() -> None:
    def container(text: str) -> Container:
        files = {"p.yml": HEAD + f"operators:\n- name: op\n  container: {text}\n"}
        return load_pipeline(files).pipeline.operators[0].container

    assert container("{image: 'localhost:5000/clara/reader'}").reference == (
        "localhost:5000/clara/reader:latest"
    )
    assert container("{image: 'reader:1.2'}") == Container("reader", "1.2")
    assert container("{image: 'reader@sha256:abc'}").reference == "reader@sha256:abc"
    assert container("{image: reader, tag: 1.0}").tag == "1.0"


def test_command_as_one_text_is_split_with_a_warning() -> None:
    loaded = load_pipeline(
        one_operator("", HEAD.replace("demo", "cmd")).copy()
        | {
            "p.yml": HEAD + "operators:\n- name: op\n  container:\n    image: x\n"
            "    command: python main.py --label 'left lung'\n"
        }
    )

    assert loaded.pipeline.operators[0].container.command == (
        "python", "main.py", "--label", "left lung",
    )  # fmt: skip
    assert "should be a list" in loaded.warnings[0].message


def test_variables_keep_number_text_and_warn_on_null() -> None:
    loaded = load_pipeline(
        one_operator("  variables: {TRACE: 2, RATIO: 0.50, ON: true, EMPTY: }\n")
    )

    assert loaded.pipeline.operators[0].variables == {
        "TRACE": "2", "RATIO": "0.50", "ON": "true", "EMPTY": "",
    }  # fmt: skip
    assert "EMPTY has no value" in loaded.warnings[0].message


def test_empty_optional_sections_mean_none() -> None:
    loaded = load_pipeline(one_operator("  input:\n  output:\n  requests:\n  variables:\n"))

    operator = loaded.pipeline.operators[0]
    assert (operator.inputs, operator.outputs, operator.variables) == ((), (), {})


def test_paths_are_normalized_and_compared_normalized() -> None:
    loaded = load_pipeline(one_operator("  input: [{path: '//in/./data/'}]\n"))
    error = refused(one_operator("  input: [{path: /in}, {path: '/in/.'}]\n"))

    assert loaded.pipeline.operators[0].inputs[0].path == "/in/data"
    assert "is also the path of its input #1" in error.messages[0]


def test_unnamed_single_output_is_read_without_name() -> None:
    files = {
        "p.yml": HEAD + "operators:\n"
        "- {name: a, container: {image: x}, output: [{path: /out}]}\n"
        "- {name: b, container: {image: x}, input: [{from: A, path: /in}]}\n"
    }

    link = load_pipeline(files).pipeline.operators[1].inputs[0]

    assert (link.from_operator, link.output_name) == ("a", None)


def test_name_on_a_single_unnamed_output_is_refused() -> None:
    files = {
        "p.yml": HEAD + "operators:\n"
        "- {name: a, container: {image: x}, output: [{path: /out}]}\n"
        "- {name: b, container: {image: x}, input: [{from: a, name: out, path: /in}]}\n"
    }

    assert "its only output has no name; remove `name`" in refused(files).messages[0]


def test_reading_from_an_operator_without_outputs_is_refused() -> None:
    files = {
        "p.yml": HEAD + "operators:\n- {name: a, container: {image: x}}\n"
        "- {name: b, container: {image: x}, input: [{from: a, path: /in}]}\n"
    }

    assert "which declares no outputs" in refused(files).messages[0]


def test_operator_timeout_longer_than_the_pipeline_warns() -> None:
    loaded = load_pipeline(one_operator("  timeout: 900\n", HEAD + "timeout: 300\n"))

    assert "the job's timeout ends it first" in loaded.warnings[0].message
    assert loaded.pipeline.stage_timeout("op") == 900


def test_default_timeouts() -> None:
    pipeline = load_pipeline(one_operator("")).pipeline

    assert (pipeline.timeout, pipeline.job_timeout, pipeline.stage_timeout("OP")) == (
        None,
        600,
        600,
    )


def test_custom_yaml_tags_are_read_as_text_with_a_warning() -> None:
    loaded = load_pipeline(one_operator("  description: !note hello\n"))

    assert loaded.pipeline.operators[0].description == "hello"
    assert "YAML tag !note is ignored" in loaded.warnings[0].message


def test_pipelines_hash_compare_and_pickle_by_value() -> None:
    files = one_operator("  variables: {A: b}\n")

    first, second = load_pipeline(files).pipeline, load_pipeline(files).pipeline

    assert first == second and hash(first) == hash(second)
    assert pickle.loads(pickle.dumps(first)) == first
