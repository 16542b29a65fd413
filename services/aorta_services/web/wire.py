"""The JSON the console's API answers with, made from the platform's messages (pure, no I/O).

Enums are their names without Clara's prefix (`JOB_STATE_RUNNING` is `RUNNING`), times are
RFC 3339 UTC strings (null when Clara's timestamp is unset), ids are plain strings, and DAGs
are `{"nodes": [...], "edges": [{"from", "to", "kind"}]}` whatever shape the platform sent.
The names are those of openapi.json's schemas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aorta.api import (
    aorta_jobs_pb2,
    clara_pb2,
    common_pb2,
    jobs_pb2,
    models_pb2,
    payloads_pb2,
    pipelines_pb2,
)
from aorta.payload_names import checksums
from aorta.timestamps import from_clara_seconds, to_iso
from aorta.wait_reasons import parse_line

Json = dict[str, Any]

PRIORITIES = ("LOWER", "NORMAL", "HIGHER", "IMMEDIATE")


def enum_name(value: int, names: Any, prefix: str) -> str:
    """`value`'s name in the enum `names` without `prefix`; UNKNOWN for a value it lacks."""
    try:
        return str(names.Name(value)).removeprefix(prefix)
    except ValueError:
        return "UNKNOWN"


def state_name(value: int) -> str:
    return enum_name(value, jobs_pb2.JobState, "JOB_STATE_")


def status_name(value: int) -> str:
    return enum_name(value, jobs_pb2.JobStatus, "JOB_STATUS_")


def priority_name(value: int) -> str:
    return enum_name(value, jobs_pb2.JobPriority, "JOB_PRIORITY_")


def operator_status_name(value: int) -> str:
    return enum_name(value, jobs_pb2.JobOperatorStatus, "JOB_OPERATOR_STATUS_")


def moment(stamp: common_pb2.Timestamp) -> datetime | None:
    return from_clara_seconds(stamp.value)


def iso(stamp: common_pb2.Timestamp) -> str | None:
    found = moment(stamp)
    return to_iso(found) if found else None


def unix_iso(seconds: float | None) -> str | None:
    """A Unix time (the timeline's) as RFC 3339; None for an absent one."""
    if seconds is None:
        return None
    return to_iso(datetime.fromtimestamp(seconds, UTC))


def duration(
    started: common_pb2.Timestamp, stopped: common_pb2.Timestamp, now: datetime
) -> float | None:
    """Seconds from start to stop (to `now` while running); None before the start."""
    began = moment(started)
    if began is None:
        return None
    ended = moment(stopped) or now
    return max(0.0, (ended - began).total_seconds())


def job_summary(details: jobs_pb2.JobsListResponse.JobDetails, now: datetime) -> Json:
    """A `JobSummary` of one `Jobs.List` entry (its waiting reason is added by the caller)."""
    return {
        "job_id": details.job_id.value,
        "payload_id": details.payload_id.value,
        "pipeline_id": details.pipeline_id.value,
        "name": details.job_name,
        "state": state_name(details.state),
        "status": status_name(details.status),
        "priority": priority_name(details.priority),
        "created": iso(details.created),
        "started": iso(details.started),
        "stopped": iso(details.stopped),
        "duration_seconds": duration(details.started, details.stopped, now),
        "metadata": dict(details.metadata),
        "waiting_reason": None,
    }


def waiting_reasons(messages: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """Why a job waits (its own reason, else its waiting operators'), and each waiting
    operator's reason, from the `waiting:` lines of its `Jobs.Status` messages."""
    own: str | None = None
    operators: dict[str, str] = {}
    for line in messages:
        parsed = parse_line(line)
        if parsed is None:
            continue
        operator, words = parsed
        if operator:
            operators[operator] = words
        else:
            own = words
    if own is None and operators:
        own = "; ".join(f"{name}: {words}" for name, words in operators.items())
    return own, operators


def job(status: jobs_pb2.JobsStatusResponse, now: datetime) -> Json:
    """A `Job` of one `Jobs.Status` answer: the summary, operators, DAG and messages."""
    operators = {
        operator.name: operator_status_name(operator.status) for operator in status.operator_details
    }
    graph = job_dag(status.dag, operators)
    reason, operator_reasons = waiting_reasons(status.messages)
    return {
        "job_id": status.job_id.value,
        "payload_id": status.payload_id.value,
        "pipeline_id": status.pipeline_id.value,
        "name": status.name,
        "state": state_name(status.state),
        "status": status_name(status.status),
        "priority": priority_name(status.priority),
        "created": iso(status.created),
        "started": iso(status.started),
        "stopped": iso(status.stopped),
        "duration_seconds": duration(status.started, status.stopped, now),
        "metadata": dict(status.metadata),
        "waiting_reason": reason,
        "operators": [
            {
                "name": operator.name,
                "status": operator_status_name(operator.status),
                "created": iso(operator.created),
                "started": iso(operator.started),
                "stopped": iso(operator.stopped),
                "waiting_reason": operator_reasons.get(operator.name),
            }
            for operator in status.operator_details
        ],
        "dag": graph,
        "messages": list(status.messages),
    }


class _Graph:
    """Nodes in the order first seen, and edges without repeats."""

    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.edges: list[tuple[str, str, str]] = []

    def add(self, name: str) -> None:
        if name not in self.nodes:
            self.nodes.append(name)

    def link(self, upstream: str, downstream: str, kind: str) -> None:
        self.add(upstream)
        self.add(downstream)
        if (upstream, downstream, kind) not in self.edges:
            self.edges.append((upstream, downstream, kind))

    def document(self, statuses: Mapping[str, str] | None = None) -> Json:
        nodes: list[Json] = []
        for name in self.nodes:
            node: Json = {"name": name}
            if statuses is not None:
                node["status"] = statuses.get(name, "UNKNOWN")
            nodes.append(node)
        edges = [{"from": up, "to": down, "kind": kind} for up, down, kind in self.edges]
        return {"nodes": nodes, "edges": edges}


def job_dag(
    roots: Iterable[jobs_pb2.JobsStatusResponse.JobDagNode], statuses: Mapping[str, str]
) -> Json:
    """A job's DAG (dependencies point upstream, flat or nested), each node with its operator's
    status; operators the DAG does not name are lone nodes."""
    graph = _Graph()

    def visit(node: jobs_pb2.JobsStatusResponse.JobDagNode) -> None:
        graph.add(node.name)
        for upstream in node.input_dependencies:
            graph.link(upstream.name, node.name, "input")
            visit(upstream)
        for upstream in node.order_dependencies:
            graph.link(upstream.name, node.name, "order")
            visit(upstream)

    for root in roots:
        visit(root)
    for name in statuses:
        graph.add(name)
    return graph.document(statuses)


def pipeline_dag(roots: Iterable[pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode]) -> Json:
    """A pipeline's DAG (`next` points downstream)."""
    graph = _Graph()

    def visit(node: pipelines_pb2.PipelinesDetailsResponse.PipelineDagNode) -> None:
        graph.add(node.name)
        for following in node.next:
            graph.link(node.name, following.name, "input")
            visit(following)

    for root in roots:
        visit(root)
    return graph.document()


def pipeline_summary(details: pipelines_pb2.PipelinesListResponse.PipelineDetails) -> Json:
    return {
        "pipeline_id": details.pipeline_id.value,
        "name": details.name,
        "metadata": dict(details.metadata),
    }


def pipeline(answers: Sequence[pipelines_pb2.PipelinesDetailsResponse], pipeline_id: str) -> Json:
    """A `Pipeline` of the messages of `Pipelines.Details` (one per file, the DAG on the
    first)."""
    first = answers[0] if answers else pipelines_pb2.PipelinesDetailsResponse()
    return {
        "pipeline_id": first.pipeline_id.value or pipeline_id,
        "name": first.name,
        "metadata": dict(first.metadata),
        "files": [
            {"path": answer.definition.path, "content": answer.definition.content}
            for answer in answers
            if answer.definition.path or answer.definition.content
        ],
        "dag": pipeline_dag(first.dag),
    }


def job_state(job_id: str, state: int, status: int, priority: int | None = None) -> Json:
    """A `JobState`: what a start or a cancel left the job in."""
    document: Json = {"job_id": job_id, "state": state_name(state), "status": status_name(status)}
    if priority is not None:
        document["priority"] = priority_name(priority)
    return document


def payload_file(details: payloads_pb2.PayloadFileDetails, sha256: str | None) -> Json:
    return {"name": details.name, "size": details.size, "mode": details.mode, "sha256": sha256}


def payload(answers: Sequence[payloads_pb2.PayloadsDetailsResponse], payload_id: str) -> Json:
    """A `Payload` of the messages of `Payloads.Details` (one per file)."""
    first = answers[0] if answers else payloads_pb2.PayloadsDetailsResponse()
    files = []
    for answer in answers:
        if answer.file.name:
            digest = checksums(answer.header.messages).get(answer.file.name)
            files.append(payload_file(answer.file, digest))
    return {
        "payload_id": first.payload_id.value or payload_id,
        "type": enum_name(first.type, payloads_pb2.PayloadType, "PAYLOAD_TYPE_"),
        "job_id": first.job_id.value or None,
        "metadata": dict(first.metadata),
        "files": files,
    }


def model(details: models_pb2.ModelDetails) -> Json:
    return {
        "model_id": details.model_id.value,
        "name": details.name,
        "type": enum_name(details.type, models_pb2.ModelType, "MODEL_TYPE_"),
        "metadata": dict(details.metadata),
    }


def gpu_sample(gpu: clara_pb2.ClaraUtilizationResponse.GpuUtilization, *, processes: bool) -> Json:
    """A `GpuSample`; with `processes`, the processes that use the GPU."""
    sample: Json = {
        "node_id": gpu.node_id,
        "pcie_id": gpu.pcie_id,
        "time": iso(gpu.timestamp),
        "compute_utilization": round(gpu.compute_utilization, 3),
        "memory_used": gpu.memory_used,
        "memory_free": gpu.memory_free,
        "memory_utilization": round(gpu.memory_utilization, 3),
    }
    if processes:
        sample["processes"] = [
            {"name": process.name, "job_id": process.job_id.value or None}
            for process in gpu.process_details
        ]
    return sample


_STAGES = (
    ("ready", "admitted", "wait"),
    ("admitted", "staging", "admit"),
    ("staging", "running", "fetch"),
    ("running", "exited", "run"),
    ("exited", "stored", "push"),
)


def timeline(answer: aorta_jobs_pb2.JobsTimelineResponse | None, job_id: str) -> Json:
    """A `Timeline`: each operator's stages of every attempt, from `aorta.v1.Jobs/Timeline`
    (None: the platform keeps no timeline, which is said with `available` false)."""
    if answer is None:
        return {"job_id": job_id, "available": False, "operators": []}
    operators: dict[str, list[Json]] = {}
    for attempt in answer.attempts:
        stages = operators.setdefault(attempt.operator, [])
        for begin, end, name in _STAGES:
            if attempt.HasField(begin):  # type: ignore[arg-type]
                start = getattr(attempt, begin)
                stop = getattr(attempt, end) if attempt.HasField(end) else None  # type: ignore[arg-type]
                label = name if attempt.attempt <= 1 else f"{name} #{attempt.attempt}"
                stages.append({"name": label, "start": unix_iso(start), "end": unix_iso(stop)})
    return {
        "job_id": answer.job_id.value or job_id,
        "available": True,
        "operators": [{"name": name, "stages": stages} for name, stages in operators.items()],
    }
