"""How an operator attempt becomes an OperatorRun: bindings, entry names, timeouts, environment."""

from __future__ import annotations

import pytest

from aorta.errors import ErrorCode, Invalid
from aorta.executors import VolumeBinding
from aorta.ids import JobId, PayloadId, PipelineId
from aorta.pipeline_spec import Pipeline, load_pipeline
from aorta_services.scheduler.domain import Allocation, JobPhase, JobPriority, Request
from aorta_services.scheduler.domain.definition import (
    Definition,
    job_timeout,
    models_of,
    operator_records,
    progress_of,
)
from aorta_services.scheduler.domain.job_record import JobRecord, TritonUris
from aorta_services.scheduler.domain.runs import build_run, check_runnable, run_id

JOB = JobId("0123456789abcdef0123456789abcdef")
PAYLOAD = PayloadId("fedcba9876543210fedcba9876543210")

TWO = """\
api-version: 0.4.0
name: two-operators
timeout: 900
operators:
- name: operator1
  container: {image: example/op1, tag: "1.2", command: [python, -u, main.py]}
  input: [{path: /pipeline_input}]
  output: [{name: segmentation-output, path: /output}]
  requests: {cpu: 1, gpu: 1, memory: 2048}
  variables: {CLARA_TRACE: "2"}
  models: [{name: spleen}]
- name: operator2
  container: {image: example/op2}
  input:
  - {from: operator1, name: segmentation-output, path: /input}
  - {from: reader, path: /raw}
  output: [{name: final-output, path: /output}]
  timeout: 1500
- name: reader
  container: {image: example/reader}
  input: [{path: /in}]
  output: [{path: /out}]
  timeout: 20
"""


def record_for(text: str, *, default: int = 600, maximum: int = 1800) -> tuple[JobRecord, Pipeline]:
    pipeline = load_pipeline({"p.yaml": text}).pipeline
    record = JobRecord(
        id=JOB,
        name="spleen-job",
        pipeline_id=PipelineId("11111111111111111111111111111111"),
        pipeline_name=pipeline.name,
        payload_id=PAYLOAD,
        priority=JobPriority.NORMAL,
        phase=JobPhase.RUNNING,
        created=0.0,
        progress=progress_of(pipeline).to_document(),
        operators=operator_records(pipeline, default_timeout=default, max_timeout=maximum),
        triton=TritonUris("triton:8001", "triton:8000"),
    )
    return record, pipeline


GPU0 = Allocation(gpus=(0,), cpu=1, memory_mb=2048)


def test_run_ids_are_deterministic() -> None:
    assert run_id(JOB, "operator1", 3) == f"{JOB}-operator1-3"


def test_the_first_operator_reads_the_payload_input_and_writes_its_named_output() -> None:
    record, pipeline = record_for(TWO)
    run = build_run(record, pipeline, "operator1", attempt=2, allocation=GPU0)
    assert run.run_id == f"{JOB}-operator1-2"
    assert (run.job_id, run.job_name, run.payload_id, run.attempt) == (
        JOB,
        "spleen-job",
        PAYLOAD,
        2,
    )
    assert (run.image, run.tag, run.command) == ("example/op1", "1.2", ("python", "-u", "main.py"))
    assert run.inputs == (
        VolumeBinding("payload", "/pipeline_input", f"payloads/{PAYLOAD}/input/"),
    )
    assert run.outputs == (
        VolumeBinding(
            "operator1/segmentation-output",
            "/output",
            f"payloads/{PAYLOAD}/operators/operator1/segmentation-output/",
        ),
    )
    assert (run.resources.cpu, run.resources.gpu, run.resources.memory_mb) == (1, 1, 2048)
    assert run.resources.gpu_devices == (0,)
    assert run.log_key == f"logs/{JOB}/operator1.log"


def test_an_operator_with_models_gets_the_triton_addresses_beside_its_variables() -> None:
    record, pipeline = record_for(TWO)
    run = build_run(record, pipeline, "operator1", attempt=1, allocation=GPU0)
    assert dict(run.environment) == {
        "CLARA_TRACE": "2",
        "NVIDIA_TRITON_GRPCURI": "triton:8001",
        "NVIDIA_TRITON_HTTPURI": "triton:8000",
    }
    reader = build_run(record, pipeline, "reader", attempt=1, allocation=GPU0)
    assert dict(reader.environment) == {}


def test_inputs_from_upstream_operators_use_their_output_folders_and_entry_names() -> None:
    record, pipeline = record_for(TWO)
    run = build_run(record, pipeline, "operator2", attempt=1, allocation=GPU0)
    assert run.inputs == (
        VolumeBinding(
            "operator1/segmentation-output",
            "/input",
            f"payloads/{PAYLOAD}/operators/operator1/segmentation-output/",
        ),
        VolumeBinding("reader", "/raw", f"payloads/{PAYLOAD}/operators/reader/"),
    )
    reader = build_run(record, pipeline, "reader", attempt=1, allocation=GPU0)
    assert reader.outputs == (
        VolumeBinding("reader", "/out", f"payloads/{PAYLOAD}/operators/reader/"),
    )


def test_timeouts_are_the_operators_else_the_pipelines_capped_at_the_maximum() -> None:
    record, pipeline = record_for(TWO, default=600, maximum=1200)
    timeouts = {op.name: op.timeout for op in record.operators}
    assert timeouts == {"operator1": 900, "operator2": 1200, "reader": 20}
    run = build_run(record, pipeline, "reader", attempt=1, allocation=GPU0)
    assert run.timeout == 20.0
    assert job_timeout(pipeline, default=600, maximum=1800) == 900
    assert job_timeout(pipeline, default=600, maximum=800) == 800


def test_without_any_timeout_the_default_applies() -> None:
    plain = TWO.replace("timeout: 900\n", "").replace("  timeout: 1500\n", "")
    record, pipeline = record_for(plain, default=45, maximum=1800)
    assert {op.name: op.timeout for op in record.operators} == {
        "operator1": 45,
        "operator2": 45,
        "reader": 20,
    }
    assert job_timeout(pipeline, default=45, maximum=1800) == 45


def test_records_hold_requests_in_topological_order_and_models_once() -> None:
    record, pipeline = record_for(TWO)
    assert [op.name for op in record.operators] == ["operator1", "reader", "operator2"]
    assert record.operator("operator1").request == Request(cpu=1, gpu=1, memory_mb=2048)
    assert record.operator("reader").request == Request(cpu=2, gpu=0, memory_mb=1024)
    assert models_of(pipeline) == ("spleen",)


def test_placeholders_count_as_defaults_until_the_variables_resolve_them() -> None:
    text = """\
api-version: 0.4.0
name: templated
parameters: {GPUS: "1", SECONDS: "30"}
timeout: ${{ SECONDS }}
operators:
- name: only
  container: {image: x}
  requests: {gpu: "${{ GPUS }}"}
  output: [{path: /out}]
"""
    definition = Definition(root="t.yaml", files=(("t.yaml", text),))
    provisional = operator_records(definition.pipeline(), default_timeout=600, max_timeout=1800)
    assert (provisional[0].request.gpu, provisional[0].timeout) == (0, 600)
    resolved = definition.resolved({"GPUS": "2", "SECONDS": "40"})
    final = operator_records(resolved, default_timeout=600, max_timeout=1800)
    assert (final[0].request.gpu, final[0].timeout) == (2, 40)


def test_shared_memory_data_cannot_run_here() -> None:
    text = """\
api-version: 0.5.0
name: fastio
operators:
- name: producer
  container: {image: x}
  output: [{name: tensor, type: array, element-type: float32, shape: [4]}]
"""
    pipeline = load_pipeline({"f.yaml": text}).pipeline
    with pytest.raises(Invalid, match="shared-memory") as caught:
        check_runnable(pipeline)
    assert caught.value.code == ErrorCode.JOB_REQUEST_INVALID
