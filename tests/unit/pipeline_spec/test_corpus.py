"""Every definition of the corpus loads with the DAG it describes; every broken one fails where
its `# expect:` line says, with the code and message it names; every one with keys the language
does not know loads with exactly the warnings its `# warn:` lines name, where they name them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from aorta.errors import ErrorCode
from aorta.pipeline_spec import Container, DagNode, DefinitionError, JobDagNode, load_pipeline
from aorta.pipeline_spec import yaml_nodes as yaml_nodes

CORPUS = Path(__file__).resolve().parents[2] / "pipelines"
INVALID = CORPUS / "invalid"
WARNED = CORPUS / "warned"
EXPECT = re.compile(r"^# expect: (\w+) (?:(\S+\.yml):)?(\d+)(?::(\d+))? (.+)$", re.MULTILINE)
WARN = re.compile(r"^# warn: (\d+):(\d+) (.+)$", re.MULTILINE)
TYPOS = (
    "typo-operators.yml", "typo-api-version.yml", "typo-operator-container.yml",
    "typo-container-command.yml", "input-under-container.yml", "command-beside-container.yml",
    "typo-command-beside-container.yml",
    "typo-input.yml", "typo-output.yml", "typo-requests.yml", "typo-models.yml",
    "typo-service.yml", "typo-connections.yml", "typo-http-connection.yml",
    "typo-volume-connection.yml", "typo-import", "misspelt-key.yml",
)  # fmt: skip
"""One typo or misplaced key per mapping of the language (the issue's cases among them)."""


@pytest.fixture(params=["libyaml", "python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with libyaml's event parser and again with PyYAML's own."""
    if request.param == "python":
        monkeypatch.setattr(yaml_nodes, "_LOADER", yaml.SafeLoader)
    elif not yaml.__with_libyaml__:
        pytest.fail("PyYAML was built without libyaml; the project pins a wheel that has it")
    return str(request.param)


def read_case(folder: Path, name: str, root: str | None) -> tuple[dict[str, str], str]:
    """The files of one case as Pipelines.Create would send them, and its root file."""
    path = folder / name
    if path.is_file():
        return {path.name: path.read_text()}, path.name
    files = {p.relative_to(path).as_posix(): p.read_text() for p in sorted(path.rglob("*.yml"))}
    return files, root or "pipeline.yml"


@dataclass(frozen=True)
class Shape:
    """What a corpus pipeline must look like once loaded."""

    order: tuple[str, ...]
    upstream: dict[str, set[str]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    root: str | None = None


SEGMENTATION_AND_REGISTER = {
    "dicom-writer": {"liver-tumor-segmentation"},
    "liver-tumor-segmentation": {"dicom-reader"},
    "register-dicom-output": {"dicom-writer"},
    "register-volume-images-for-rendering": {"liver-tumor-segmentation"},
}
DEPRECATED = "deprecated since Clara 0.7.1"

SHAPES: dict[str, Shape] = {
    "two-operator.yml": Shape(("operator1", "operator2"), {"operator2": {"operator1"}}),
    "liver-tumor-segmentation.yml": Shape(
        (
            "dicom-reader",
            "liver-tumor-segmentation",
            "dicom-writer",
            "register-dicom-output",
            "register-volume-images-for-rendering",
        ),
        SEGMENTATION_AND_REGISTER,
        (DEPRECATED,),
    ),
    "covid19.yml": Shape(
        (
            "dicom-reader",
            "lung-segmentation",
            "classification-covid-19",
            "dicom-writer",
            "register-dicom-output",
            "register-volume-images-for-rendering",
        ),
        {
            "lung-segmentation": {"dicom-reader"},
            "classification-covid-19": {"lung-segmentation", "dicom-reader"},
            "dicom-writer": {"lung-segmentation"},
            "register-dicom-output": {"dicom-writer"},
            "register-volume-images-for-rendering": {"lung-segmentation"},
        },
    ),
    "spleen-model-repository.yml": Shape(
        (
            "dicom-reader",
            "spleen-segmentation",
            "dicom-writer",
            "register-volume-images-for-rendering",
        ),
        {
            "spleen-segmentation": {"dicom-reader"},
            "dicom-writer": {"spleen-segmentation"},
            "register-volume-images-for-rendering": {"spleen-segmentation"},
        },
    ),
    "cpost-null.yml": Shape(
        ("null-reader", "null-inference", "null-writer"),
        {"null-inference": {"null-reader"}, "null-writer": {"null-inference"}},
    ),
    "lung-lesion.yml": Shape(
        ("dicom-reader", "lesion-segmentation", "dicom-seg-writer"),
        {"lesion-segmentation": {"dicom-reader"}, "dicom-seg-writer": {"lesion-segmentation"}},
        (DEPRECATED, "`hostVolumePath` is not supported"),
    ),
    "hello-world.yml": Shape(("whalesay",)),
    "fastio-typed-0.5.yml": Shape(
        ("volume-loader", "segmentation", "mask-writer"),
        {"segmentation": {"volume-loader"}, "mask-writer": {"segmentation", "volume-loader"}},
    ),
    "typed-models-0.6.yml": Shape(("producer", "consumer"), {"consumer": {"producer"}}),
    "templated.yml": Shape(
        ("dicom-reader", "segmentation", "register-dicom-output"),
        {"segmentation": {"dicom-reader"}, "register-dicom-output": {"segmentation"}},
    ),
    "diamond.yml": Shape(
        ("split", "left-branch", "right-branch", "merge"),
        {
            "left-branch": {"split"},
            "right-branch": {"split"},
            "merge": {"left-branch", "right-branch", "split"},
        },
    ),
    "timeouts.yml": Shape(("reconstruction", "quick-check"), {"quick-check": {"reconstruction"}}),
    "demo-seg-skeleton.yml": Shape(
        ("reader", "infer", "writer"), {"infer": {"reader"}, "writer": {"infer"}}
    ),
    "anchors-and-merge-keys.yml": Shape(("reader", "second-reader"), {"second-reader": {"reader"}}),
    "argo-0.3.yml": Shape(("converter", "ai"), {"ai": {"converter"}}, ("Argo orchestration",)),
    "model-repository-0.8.yml": Shape(
        ("dicom-reader", "chestxray-classification"),
        {"chestxray-classification": {"dicom-reader"}},
        ("read by the rules of 0.7.0",),
    ),
    "multi-liver": Shape(
        (
            "dicom-reader",
            "liver-segmentation",
            "register-dicom-output",
            "register-volume-images-for-rendering",
        ),
        {
            "liver-segmentation": {"dicom-reader"},
            "register-dicom-output": {"liver-segmentation"},
            "register-volume-images-for-rendering": {"liver-segmentation"},
        },
        (DEPRECATED,),
    ),
    "multi-chain": Shape(
        ("ingest", "stage-1", "stage-2", "stage-3"),
        {"stage-1": {"ingest"}, "stage-2": {"stage-1"}, "stage-3": {"stage-2"}},
        root="pipelines/main.yml",
    ),
}


def test_the_corpus_is_large_and_every_case_has_a_shape() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.name not in ("invalid", "warned")}
    assert on_disk == set(SHAPES)
    assert len(on_disk) >= 15


@pytest.mark.parametrize("case", sorted(SHAPES))
@pytest.mark.usefixtures("parser")
def test_corpus_definition_loads_with_its_dag(case: str) -> None:
    shape = SHAPES[case]
    files, root = read_case(CORPUS, case, shape.root)

    loaded = load_pipeline(files, root=root)

    pipeline = loaded.pipeline
    assert pipeline.topological_order() == shape.order
    assert sorted(op.name for op in pipeline.operators) == sorted(shape.order)
    for operator in pipeline.operators:
        assert pipeline.upstream(operator.name) == shape.upstream.get(operator.name, set())
    assert pipeline.roots() == tuple(n for n in shape.order if n not in shape.upstream)
    assert len(loaded.warnings) == len(shape.warnings), loaded.warnings
    for fragment in shape.warnings:
        assert any(fragment in warning.message for warning in loaded.warnings), fragment


def test_two_operator_example_reads_as_the_driver_guide_describes() -> None:
    files, root = read_case(CORPUS, "two-operator.yml", None)

    pipeline = load_pipeline(files, root=root).pipeline

    first, second = pipeline.operators
    assert first.inputs[0].path == "/pipeline_input" and first.inputs[0].from_operator is None
    assert (first.outputs[0].name, first.outputs[0].path) == ("segmentation-output", "/output")
    link = second.inputs[0]
    assert (link.from_operator, link.output_name, link.path) == (
        "operator1",
        "segmentation-output",
        "/input",
    )
    assert pipeline.dag_nodes() == (DagNode("operator1", (DagNode("operator2"),)),)
    assert pipeline.job_dag() == (
        JobDagNode("operator1"),
        JobDagNode("operator2", ("operator1",), ("operator1",)),
    )


def test_covid_fan_in_node_appears_under_each_parent() -> None:
    files, root = read_case(CORPUS, "covid19.yml", None)

    (reader,) = load_pipeline(files, root=root).pipeline.dag_nodes()

    lung = next(node for node in reader.next if node.name == "lung-segmentation")
    under_reader = [node.name for node in reader.next]
    assert under_reader == ["lung-segmentation", "classification-covid-19"]
    assert [node.name for node in lung.next] == [
        "classification-covid-19",
        "dicom-writer",
        "register-volume-images-for-rendering",
    ]


def test_lung_lesion_keeps_its_service_and_the_tag_written_in_the_image() -> None:
    files, root = read_case(CORPUS, "lung-lesion.yml", None)

    pipeline = load_pipeline(files, root=root).pipeline

    reader = pipeline.operator("dicom-reader").container
    assert (reader.image, reader.tag) == ("nvcr.io/nvidia/clara/dicom-reader", "0.7.3-2011.5")
    (triton,) = pipeline.operator("lesion-segmentation").services
    assert triton.container.command == ("tritonserver", "--model-repository=/clara/common/models")
    assert triton.connections.http[0].name == "NVIDIA_CLARA_TRTISURI"
    assert triton.connections.http[0].port == 8000
    assert triton.connections.volume[0].path == "/clara/common/models"
    assert pipeline.operator("dicom-seg-writer").variables == {"NVIDIA_SEG_LABELS": '["lesion"]'}


def test_cpost_null_pipeline_values() -> None:
    files, root = read_case(CORPUS, "cpost-null.yml", None)

    pipeline = load_pipeline(files, root=root).pipeline

    inference = pipeline.operator("NULL-INFERENCE")
    assert inference.requests.gpu == 1 and inference.requests.cpu == 2
    assert inference.requests.memory == 1024
    assert inference.variables == {"CLARA_TRACE": "2"}
    assert inference.inputs[0].path == "/input"
    assert pipeline.orchestrator == "Clara"


def test_typed_pipeline_stores_long_type_names() -> None:
    files, root = read_case(CORPUS, "fastio-typed-0.5.yml", None)

    pipeline = load_pipeline(files, root=root).pipeline

    volume = pipeline.operator("volume-loader").outputs[0]
    assert (volume.type, volume.element_type, volume.shape) == ("array", "float32", (-1, 512, 512))
    count = pipeline.operator("segmentation").outputs[1]
    assert (count.type, count.path) == ("uint32", None)


def test_models_and_typed_streams_of_0_6() -> None:
    files, root = read_case(CORPUS, "typed-models-0.6.yml", None)

    consumer = load_pipeline(files, root=root).pipeline.operator("consumer")

    assert consumer.models == ("segmentation_liver_v1", "segmentation_liver_v2")
    assert consumer.inputs[1].element_type == "NIfTI"


def test_multi_file_imports_fill_args_and_replace_overridden_keys_whole() -> None:
    files, root = read_case(CORPUS, "multi-liver", None)

    pipeline = load_pipeline(files, root=root).pipeline

    reader = pipeline.operator("dicom-reader")
    assert reader.container.tag == "${{ VERSION }}"
    assert pipeline.placeholders == frozenset({"VERSION"})
    segmentation = pipeline.operator("liver-segmentation")
    assert segmentation.container.image == "clara/ai-liver"
    assert (segmentation.requests.cpu, segmentation.requests.gpu) == (2, 1)
    assert segmentation.requests.memory == 16384
    assert [service.name for service in segmentation.services] == ["trtis-liver"]
    render = pipeline.operator("register-volume-images-for-rendering")
    assert render.container.command == (
        "python",
        "register.py",
        "--agent",
        "renderserver",
        "--data",
        "[]",
    )
    assert render.inputs[0].output_name == "rendering"


def test_multi_file_shorthand_imports_from_a_sibling_folder() -> None:
    files, root = read_case(CORPUS, "multi-chain", "pipelines/main.yml")

    pipeline = load_pipeline(files, root=root).pipeline

    assert pipeline.operator("stage-1").requests.cpu == 2
    last = pipeline.operator("stage-3")
    assert last.requests.cpu == 8
    assert last.container == Container(
        "tools/stage-final", "${{ IMAGE-TAG }}", ("stage", "--final")
    )


def test_anchors_and_merge_keys() -> None:
    files, root = read_case(CORPUS, "anchors-and-merge-keys.yml", None)

    pipeline = load_pipeline(files, root=root).pipeline

    first, second = pipeline.operators
    assert first.container == second.container
    assert (second.requests.cpu, second.requests.memory) == (1, 4096)


def test_timeouts() -> None:
    files, root = read_case(CORPUS, "timeouts.yml", None)

    pipeline = load_pipeline(files, root=root).pipeline

    assert pipeline.job_timeout == 1800
    assert pipeline.stage_timeout("reconstruction") == 1500
    assert pipeline.stage_timeout("quick-check") == 1800


def _invalid_cases() -> list[str]:
    return sorted(p.name for p in INVALID.iterdir())


def test_the_invalid_corpus_covers_the_required_failures() -> None:
    required = {
        "cycle.yml", "dangling-from.yml", "dangling-name.yml", "duplicate-operator-names.yml",
        "duplicate-output-names.yml", "missing-input-name.yml", "relative-path.yml",
        "bad-name-chars.yml", "name-too-long.yml", "negative-requests.yml",
        "unknown-version.yml", "malformed-yaml.yml", "non-mapping-root.yml",
        "duplicate-keys.yml", "import-cycle", "missing-import", "deep-nesting.yml",
        "alias-bomb.yml", *TYPOS,
    }  # fmt: skip
    assert required <= set(_invalid_cases())


@pytest.mark.parametrize("case", _invalid_cases())
@pytest.mark.usefixtures("parser")
def test_invalid_definition_is_refused_where_its_expect_line_says(case: str) -> None:
    files, root = read_case(INVALID, case, None)
    expected = EXPECT.search(files[root])
    assert expected is not None, f"{case} has no '# expect:' line"
    code, file, line, column, fragment = expected.groups()

    with pytest.raises(DefinitionError) as raised:
        load_pipeline(files, root=root)

    assert raised.value.code == ErrorCode[code]
    matching = [d for d in raised.value.diagnostics if fragment in d.message]
    assert matching, raised.value.messages
    assert (matching[0].file, matching[0].line) == (file or root, int(line))
    if column is not None:
        assert matching[0].column == int(column)
    assert any(fragment in message for message in raised.value.messages)


@pytest.mark.parametrize("case", TYPOS)
def test_a_typo_is_the_only_error_even_where_it_leaves_a_required_key_missing(case: str) -> None:
    files, root = read_case(INVALID, case, None)

    with pytest.raises(DefinitionError) as raised:
        load_pipeline(files, root=root)

    (only,) = raised.value.diagnostics
    assert "is missing" not in only.message
    assert "did you mean `" in only.message or " belongs to " in only.message


@pytest.mark.parametrize("case", sorted(p.name for p in WARNED.iterdir()))
@pytest.mark.usefixtures("parser")
def test_far_off_unknown_keys_are_only_warnings_where_the_warn_lines_say(case: str) -> None:
    files, root = read_case(WARNED, case, None)
    expected = WARN.findall(files[root])
    assert expected, f"{case} has no '# warn:' line"

    loaded = load_pipeline(files, root=root)

    found = sorted((w.line, w.column, w.message) for w in loaded.warnings)
    assert len(found) == len(expected), found
    for line, column, fragment in expected:
        assert any(
            (at_line, at_column) == (int(line), int(column)) and fragment in message
            for at_line, at_column, message in found
        ), (line, column, fragment, found)
