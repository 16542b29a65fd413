"""Every definition of the corpus loads with the DAG it describes (its broken and warned cases:
`test_corpus_refused`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from aorta.pipeline_spec import Container, DagNode, JobDagNode, load_pipeline
from tests.unit.pipeline_spec.corpus import CORPUS, read_case


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
