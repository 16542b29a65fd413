"""How one attempt of one operator becomes an `OperatorRun` for the executor: pure.

- `run_id` is `<job id>-<operator>-<attempt>`: deterministic, so a scheduler that restarts asks
  the executor about the very run it started (job ids are 32 hex characters and the attempt is
  the last `-` field, so the id reads back unambiguously).
- Inputs: an input without `from` reads the payload's `input/` folder (entry `payload`); one
  with `from` (and `name`) reads that upstream output's folder, under the entry name
  `aorta.operator_env.input_entry_name` gives it. Outputs go to the operator's output folders
  (`aorta.payload_layout`), named by `output_entry_name`.
- Timeout: the one the job's record holds for the operator (`definition.stage_timeout`: the
  operator's own, else the pipeline's, else the scheduler's default; capped).
- Environment: the operator's `variables`, and, for an operator that lists `models`, the job's
  Triton addresses as `NVIDIA_TRITON_GRPCURI` / `NVIDIA_TRITON_HTTPURI`. The executor adds the
  job, stage and path variables itself (`aorta.operator_env`).
- Pull secrets: the pipeline's `pull-secrets`, for an executor that pulls images.
"""

from __future__ import annotations

from aorta import operator_env, payload_layout
from aorta.errors import ErrorCode, Invalid
from aorta.executors import OperatorRun, Resources, VolumeBinding
from aorta.pipeline_spec import InputSpec, Operator, OutputSpec, Pipeline
from aorta_services.scheduler.domain import Allocation
from aorta_services.scheduler.domain.job_record import JobRecord, TritonUris


def run_id(job_id: str, operator: str, attempt: int) -> str:
    """The executor's id of one attempt of one operator of one job."""
    return f"{job_id}-{operator}-{attempt}"


def check_runnable(pipeline: Pipeline) -> None:
    """Raises `Invalid` when an operator cannot run here: an input or output without a path
    (Clara's shared-memory types, which need Fast I/O)."""
    for operator in pipeline.operators:
        specs: list[InputSpec | OutputSpec] = [*operator.inputs, *operator.outputs]
        for spec in specs:
            if spec.path is None:
                raise Invalid(
                    f"operator {operator.name!r} has an input or output without a path "
                    f"(type {spec.type}); shared-memory (Fast I/O) data is not supported",
                    code=ErrorCode.JOB_REQUEST_INVALID,
                )


def build_run(
    record: JobRecord,
    pipeline: Pipeline,
    operator_name: str,
    *,
    attempt: int,
    allocation: Allocation,
) -> OperatorRun:
    """The run of attempt `attempt` of operator `operator_name` of the job `record`.

    `pipeline` is the job's pipeline with its parameters resolved (the job's record holds the
    request and timeout Start derived from it); `allocation` what the node gave this attempt.
    Raises `NotFound` (JOB_OPERATOR_NOT_FOUND) for an unknown operator and `Invalid` for an
    input or output the executor could not bind.
    """
    operator = pipeline.operator(operator_name)
    payload = record.payload_id
    inputs = tuple(
        VolumeBinding(
            entry_name=operator_env.input_entry_name(spec.from_operator, spec.output_name),
            path=_path(spec.path, operator),
            blob_prefix=payload_layout.input_prefix(payload)
            if spec.from_operator is None
            else payload_layout.operator_output_prefix(
                payload, spec.from_operator, spec.output_name
            ),
        )
        for spec in operator.inputs
    )
    outputs = tuple(
        VolumeBinding(
            entry_name=operator_env.output_entry_name(operator.name, spec.name),
            path=_path(spec.path, operator),
            blob_prefix=payload_layout.operator_output_prefix(payload, operator.name, spec.name),
        )
        for spec in operator.outputs
    )
    request = record.operator(operator.name).request
    return OperatorRun(
        run_id=run_id(record.id, operator.name, attempt),
        job_id=record.id,
        job_name=record.name,
        payload_id=payload,
        operator=operator.name,
        attempt=attempt,
        image=operator.container.image,
        tag=operator.container.tag,
        command=operator.container.command,
        inputs=inputs,
        outputs=outputs,
        resources=Resources(
            cpu=request.cpu,
            gpu=request.gpu,
            memory_mb=request.memory_mb,
            gpu_devices=allocation.gpus,
        ),
        timeout=float(record.operator(operator.name).timeout),
        log_key=payload_layout.operator_log_key(record.id, operator.name),
        environment=environment(operator, record.triton),
        pull_secrets=pipeline.pull_secrets,
    )


def environment(operator: Operator, triton: TritonUris | None) -> dict[str, str]:
    """The operator's variables, plus the Triton addresses when it lists models."""
    variables = dict(operator.variables)
    if operator.models and triton is not None:
        variables[operator_env.TRITON_GRPC_URI] = triton.grpc_uri
        variables[operator_env.TRITON_HTTP_URI] = triton.http_uri
    return variables


def _path(path: str | None, operator: Operator) -> str:
    if path is None:
        raise Invalid(
            f"operator {operator.name!r} has an input or output without a path",
            code=ErrorCode.JOB_REQUEST_INVALID,
        )
    return path
