"""resolve_parameters: Jobs.Start variables fill the pipeline's placeholders, checked again."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.errors import ErrorCode
from aorta.pipeline_spec import DefinitionError, Pipeline, load_pipeline, resolve_parameters

CORPUS = Path(__file__).resolve().parents[2] / "pipelines"


def templated() -> Pipeline:
    return load_pipeline({"templated.yml": (CORPUS / "templated.yml").read_text()}).pipeline


def refused(pipeline: Pipeline, values: dict[str, str]) -> DefinitionError:
    with pytest.raises(DefinitionError) as raised:
        resolve_parameters(pipeline, values)
    assert raised.value.code == ErrorCode.JOB_VARIABLES_INVALID
    return raised.value


def small(parameters: str, body: str) -> Pipeline:
    text = (
        f"api-version: 0.4.0\nname: small\nparameters: {parameters}\noperators:\n"
        f"- name: op\n  container: {{image: x}}\n{body}"
    )
    return load_pipeline({"p.yml": text}).pipeline


def test_defaults_fill_every_placeholder() -> None:
    pipeline = templated()
    assert pipeline.placeholders == frozenset(
        {"TAG", "REGISTRY", "GPUS", "LABEL", "PACS", "OUTPUT-FOLDER"}
    )

    resolved = resolve_parameters(pipeline, {})

    reader, segmentation, register = resolved.operators
    assert reader.container.reference == "nvcr.io/nvidia/clara/dicom-reader:0.8.1-2108.1"
    assert reader.outputs[0].path == "/output"
    assert segmentation.container.image == "nvcr.io/nvidia/clara/ai-spleen"
    assert segmentation.container.command == ("python", "app.py", "--label", "spleen")
    assert segmentation.requests.gpu == 1
    assert segmentation.variables == {"TARGET": "spleen", "PRICE": "$spleen"}
    assert register.container.command[-1] == '["MYPACS"]'
    assert resolved.placeholders == frozenset()
    assert resolved.parameters == pipeline.parameters
    assert resolved.topological_order() == pipeline.topological_order()


def test_variables_override_defaults_ignoring_case() -> None:
    resolved = resolve_parameters(templated(), {"label": "liver", "Gpus": "2", "TAG": "dev"})

    segmentation = resolved.operator("segmentation")
    assert segmentation.container.reference == "nvcr.io/nvidia/clara/ai-liver:dev"
    assert segmentation.requests.gpu == 2
    assert segmentation.variables["TARGET"] == "liver"


def test_values_are_not_scanned_again() -> None:
    resolved = resolve_parameters(templated(), {"PACS": "${{ TAG }}"})

    assert resolved.operator("register-dicom-output").container.command[-1] == '["${{ TAG }}"]'


def test_undeclared_variable_is_refused_naming_the_declared_ones() -> None:
    error = refused(templated(), {"COLOUR": "red", "LABEL": "liver"})

    (diagnostic,) = error.diagnostics
    assert "variable 'COLOUR' is not a parameter of pipeline 'templated-segmentation'" in (
        diagnostic.message
    )
    assert "TAG, REGISTRY, GPUS, LABEL, PACS, OUTPUT-FOLDER" in diagnostic.message
    assert (diagnostic.file, diagnostic.line) == ("templated.yml", 5)


def test_a_variable_given_twice_is_refused() -> None:
    error = refused(templated(), {"LABEL": "a", "label": "b"})

    assert "given twice" in error.messages[0]


def test_a_placeholder_without_default_or_value_is_refused() -> None:
    pipeline = small("{LABEL: }", "  variables: {TARGET: '${{ LABEL }}'}\n")

    error = refused(pipeline, {})
    resolved = resolve_parameters(pipeline, {"LABEL": "liver"})

    assert "${{ LABEL }} has no value: parameter 'LABEL' has no default" in error.messages[0]
    assert error.diagnostics[0].line == 7
    assert resolved.operators[0].variables == {"TARGET": "liver"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (
            "two",
            "`requests.gpu` of operator 'segmentation' must be a whole number, not the text "
            "'two' (from '${{ GPUS }}')",
        ),
        ("-1", "must be at least 0, not -1"),
        ("1.5", "must be a whole number"),
    ],
)
def test_whole_number_fields_are_checked_after_substitution(value: str, fragment: str) -> None:
    error = refused(templated(), {"GPUS": value})

    assert fragment in error.messages[0]
    assert error.diagnostics[0].line == 27


def test_timeout_is_checked_after_substitution() -> None:
    pipeline = small("{T: '60'}", "  timeout: ${{ T }}\n")

    assert resolve_parameters(pipeline, {}).operators[0].timeout == 60
    assert "must be at most 1800, not 4000" in refused(pipeline, {"T": "4000"}).messages[0]


def test_paths_are_checked_after_substitution() -> None:
    relative = refused(templated(), {"OUTPUT-FOLDER": "out"})
    clash = refused(templated(), {"OUTPUT-FOLDER": "/input/"})

    assert "path 'out' (from '${{ OUTPUT-FOLDER }}') of output #1" in relative.messages[0]
    assert "is also the path of its input #1" in clash.messages[0]


def test_load_warns_when_the_defaults_alone_cannot_start_a_job() -> None:
    text = (
        "api-version: 0.4.0\nname: bad-default\nparameters: {CPU: lots}\noperators:\n"
        "- name: op\n  container: {image: x}\n  requests: {cpu: '${{ CPU }}'}\n"
    )

    loaded = load_pipeline({"p.yml": text})

    (warning,) = loaded.warnings
    assert warning.message.startswith("with the default parameter values: `requests.cpu`")
    assert warning.line == 7
    assert resolve_parameters(loaded.pipeline, {"cpu": "3"}).operators[0].requests.cpu == 3


def test_a_pipeline_without_parameters_resolves_to_itself() -> None:
    pipeline = load_pipeline({"p.yml": (CORPUS / "hello-world.yml").read_text()}).pipeline

    assert resolve_parameters(pipeline, {}) == pipeline
    assert "its parameters: none" in refused(pipeline, {"X": "1"}).messages[0]


def test_a_pipeline_built_in_code_resolves_when_it_has_no_placeholders() -> None:
    pipeline = Pipeline("coded", "0.4.0", ())

    assert resolve_parameters(pipeline, {}) is pipeline


def test_variables_cannot_blow_the_definition_up() -> None:
    pipeline = small("{A: x}", "  variables: {V: '" + "${{ A }}" * 1000 + "'}\n")

    error = refused(pipeline, {"A": "y" * 10_000})

    assert "adds more than 8388608 characters" in error.messages[0]
