"""The fake Jobs service, and the life a started job goes through one `Status` call at a time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from aorta.api import aorta_jobs_pb2, aorta_jobs_pb2_grpc, jobs_pb2, jobs_pb2_grpc, payloads_pb2
from aorta.errors import ErrorCode
from aorta.ids import new_id
from aorta.timestamps import to_clara_seconds, utcnow
from tests.integration.cli.fake_state import OP, Job, Operator, Payload, State, failed, ident


def advance(state: State, job: Job) -> None:
    """One step: PENDING -> RUNNING, then each operator RUNNING for `steps_per_operator` polls
    and COMPLETED (FAULTED when in `faults`), then STOPPED. A completed operator writes
    `/operators/<op>/summary.txt`; the first also writes each input reversed beside it."""
    if not job.queued or job.state == jobs_pb2.JOB_STATE_STOPPED:
        return
    now, names = utcnow(), list(job.operators)
    if job.state == jobs_pb2.JOB_STATE_PENDING:
        job.state, job.started = jobs_pb2.JOB_STATE_RUNNING, now
        _begin(job, 0, now)
        return
    name = names[job.current]
    operator = job.operators[name]
    job.progress += 1
    operator.logs.append(f"{name}: step {job.progress}")
    if job.progress < state.steps_per_operator:
        return
    operator.stopped = now
    if name in state.faults:
        operator.status = OP.Value("JOB_OPERATOR_STATUS_FAULTED")
        operator.logs.append(f"{name}: error: the model rejected the input")
        job.state, job.status, job.stopped = (
            jobs_pb2.JOB_STATE_STOPPED,
            jobs_pb2.JOB_STATUS_FAULTED,
            now,
        )
        return
    operator.status = OP.Value("JOB_OPERATOR_STATUS_COMPLETED")
    operator.logs.append(f"{name}: done")
    files = state.payloads[job.payload_id].files
    inputs = {k: v for k, v in files.items() if k.startswith("/input/")}
    if job.current == 0:
        for key, data in inputs.items():
            files[f"/operators/{name}/{key.removeprefix('/input/')}"] = data[::-1]
    files[f"/operators/{name}/summary.txt"] = f"{name}: {len(inputs)} inputs\n".encode()
    if job.current + 1 < len(names):
        _begin(job, job.current + 1, now)
    else:
        job.state, job.stopped = jobs_pb2.JOB_STATE_STOPPED, now


def _begin(job: Job, index: int, now: datetime) -> None:
    name = list(job.operators)[index]
    job.current, job.progress = index, 0
    operator = job.operators[name]
    operator.status, operator.started = OP.Value("JOB_OPERATOR_STATUS_RUNNING"), now
    operator.logs.append(f"{name}: starting")


class FakeJobs(jobs_pb2_grpc.JobsServicer):
    def __init__(self, state: State) -> None:
        self.state = state

    def _job(self, job_id: str, response_class: type[Any]) -> tuple[Job | None, Any]:
        job = self.state.jobs.get(job_id)
        if job is None:
            return None, failed(response_class, ErrorCode.JOB_NOT_FOUND, f"job {job_id} not found")
        return job, None

    def Create(self, request: Any, context: Any) -> Any:
        with self.state.lock:
            pipeline = self.state.pipelines.get(request.pipeline_id.value)
            if pipeline is None:
                return failed(
                    jobs_pb2.JobsCreateResponse,
                    ErrorCode.PIPELINE_NOT_FOUND,
                    f"pipeline {request.pipeline_id.value} does not exist",
                )
            operators = {name: Operator() for name in pipeline.upstream}
            job = Job(new_id(), request.name, pipeline, new_id(), request.priority, operators)
            self.state.jobs[job.job_id] = job
            self.state.payloads[job.payload_id] = Payload(
                job.payload_id, payloads_pb2.PAYLOAD_TYPE_PIPELINE, job.job_id
            )
            return jobs_pb2.JobsCreateResponse(
                job_id=ident(job.job_id), payload_id=ident(job.payload_id)
            )

    def Start(self, request: Any, context: Any) -> Any:
        with self.state.lock:
            job, error = self._job(request.job_id.value, jobs_pb2.JobsStartResponse)
            if job is None:
                return error
            if job.queued or job.state != jobs_pb2.JOB_STATE_PENDING:
                return failed(
                    jobs_pb2.JobsStartResponse,
                    ErrorCode.JOB_STATE_CONFLICT,
                    "the job was already started",
                )
            job.queued = True
            job.variables = [(v.name, v.value) for v in request.Variables]
            self.state.payloads[job.payload_id].read_only = True
            return jobs_pb2.JobsStartResponse(
                state=job.state, status=job.status, priority=job.priority
            )

    def Status(self, request: Any, context: Any) -> Any:
        with self.state.lock:
            job, error = self._job(request.job_id.value, jobs_pb2.JobsStatusResponse)
            if job is None:
                return error
            advance(self.state, job)
            response = jobs_pb2.JobsStatusResponse(
                job_id=ident(job.job_id),
                pipeline_id=ident(job.pipeline.pipeline_id),
                payload_id=ident(job.payload_id),
                state=job.state,
                status=job.status,
                name=job.name,
                priority=job.priority,
            )
            response.created.value = to_clara_seconds(job.created)
            response.started.value = to_clara_seconds(job.started)
            response.stopped.value = to_clara_seconds(job.stopped)
            for name, operator in job.operators.items():
                detail = response.operator_details.add(name=name, status=operator.status)
                detail.started.value = to_clara_seconds(operator.started)
                detail.stopped.value = to_clara_seconds(operator.stopped)
                # Flat form: one node per operator naming its direct upstreams.
                node = response.dag.add(name=name)
                for up in job.pipeline.upstream[name]:
                    node.input_dependencies.add(name=up)
            return response

    def List(self, request: Any, context: Any) -> Iterator[Any]:
        wanted = request.filter
        with self.state.lock:
            found = sorted(self.state.jobs.values(), key=lambda j: j.created, reverse=True)
        pipelines = {p.value for p in wanted.pipeline_id}
        for job in found:
            if (
                (wanted.has_state and job.state not in wanted.has_state)
                or (wanted.has_status and job.status not in wanted.has_status)
                or (pipelines and job.pipeline.pipeline_id not in pipelines)
                or to_clara_seconds(job.created) < wanted.created_after.value
            ):
                continue
            details = jobs_pb2.JobsListResponse.JobDetails(
                job_id=ident(job.job_id),
                payload_id=ident(job.payload_id),
                pipeline_id=ident(job.pipeline.pipeline_id),
                job_name=job.name,
                state=job.state,
                status=job.status,
                priority=job.priority,
            )
            details.created.value = to_clara_seconds(job.created)
            details.started.value = to_clara_seconds(job.started)
            details.stopped.value = to_clara_seconds(job.stopped)
            yield jobs_pb2.JobsListResponse(job_details=details)

    def Cancel(self, request: Any, context: Any) -> Any:
        with self.state.lock:
            job, error = self._job(request.job_id.value, jobs_pb2.JobsCancelResponse)
            if job is None:
                return error
            job.state, job.status, job.stopped = (
                jobs_pb2.JOB_STATE_STOPPED,
                jobs_pb2.JOB_STATUS_CANCELED,
                utcnow(),
            )
            return jobs_pb2.JobsCancelResponse(
                job_id=ident(job.job_id), job_state=job.state, job_status=job.status
            )

    def ReadLogs(self, request: Any, context: Any) -> Iterator[Any]:
        with self.state.lock:
            job, error = self._job(request.job_id.value, jobs_pb2.JobsReadLogsResponse)
            if job is None:
                yield error
                return
            operator = job.operators.get(request.operator_name)
            if operator is None:
                yield failed(
                    jobs_pb2.JobsReadLogsResponse,
                    ErrorCode.JOB_OPERATOR_NOT_FOUND,
                    f"job {job.job_id} has no operator {request.operator_name!r}",
                )
                return
            lines = list(operator.logs)
        # Two lines per message, so the client has to join them.
        for start in range(0, max(len(lines), 1), 2):
            yield jobs_pb2.JobsReadLogsResponse(
                job_id=ident(job.job_id),
                operator_name=request.operator_name,
                logs=lines[start : start + 2],
            )


class FakeAortaJobs(aorta_jobs_pb2_grpc.JobsServicer):
    """Aorta's own `aorta.v1.Jobs`: Delete, which takes a stopped job with its payload and logs."""

    def __init__(self, state: State) -> None:
        self.state = state

    def Delete(self, request: Any, context: Any) -> Any:
        with self.state.lock:
            job = self.state.jobs.get(request.job_id.value)
            if job is None:
                return failed(
                    aorta_jobs_pb2.JobsDeleteResponse,
                    ErrorCode.JOB_NOT_FOUND,
                    f"job {request.job_id.value} not found",
                )
            if job.state != jobs_pb2.JOB_STATE_STOPPED:
                return failed(
                    aorta_jobs_pb2.JobsDeleteResponse,
                    ErrorCode.JOB_STATE_CONFLICT,
                    f"job {job.job_id} is not stopped: cancel it first",
                )
            del self.state.jobs[job.job_id]
            removed = self.state.payloads.pop(job.payload_id, None)
            return aorta_jobs_pb2.JobsDeleteResponse(
                job_id=ident(job.job_id),
                payload_id=ident(removed.payload_id if removed else ""),
                logs_removed=sum(1 for operator in job.operators.values() if operator.logs),
            )
