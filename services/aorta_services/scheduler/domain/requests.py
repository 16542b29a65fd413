"""The Jobs requests, parsed and checked before any work is done: pure.

The bus carries the Clara request messages themselves (serialized protobuf), as the gateway
received them. Every check raises `Invalid` with the Clara code a client expects:
JOB_ID_INVALID (-0x2000) for a malformed job id, PIPELINE_ID_INVALID / PAYLOAD_ID_INVALID for
the other ids, JOB_NAME_INVALID (-0x2100) for a missing or malformed name, METADATA_INVALID
for metadata that breaks Clara's rules, JOB_VARIABLES_INVALID for `Variables` named twice, and
JOB_REQUEST_INVALID for anything else (an unknown priority, state or status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from aorta import ids
from aorta.api import jobs_pb2
from aorta.errors import ErrorCode, Invalid
from aorta.ids import JobId, PayloadId, PipelineId
from aorta.metadata import add_metadata
from aorta.operator_env import validate_name
from aorta.timestamps import UNIX_EPOCH_IN_CLARA_SECONDS
from aorta_services.scheduler.domain import JobPriority, JobState, JobStatus

M = TypeVar("M", bound=Message)

MAX_REASON_CHARS = 1000
"""Longer cancel reasons are cut, so one client cannot bloat every Status answer."""


@dataclass(frozen=True)
class CreateCommand:
    pipeline_id: PipelineId
    name: str
    priority: JobPriority
    input_payloads: tuple[PayloadId, ...]
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class StartCommand:
    job_id: JobId
    variables: Mapping[str, str]


@dataclass(frozen=True)
class CancelCommand:
    job_id: JobId
    reason: str


def parse(body: bytes, message_class: type[M]) -> M:
    """A Clara request message; `Invalid` when the bytes are not one."""
    try:
        return message_class.FromString(body)
    except DecodeError:
        raise Invalid(
            f"the request is not a valid {message_class.DESCRIPTOR.full_name} message",
            code=ErrorCode.JOB_REQUEST_INVALID,
        ) from None


def job_id_of(message: Any) -> JobId:
    """The request's `job_id`, checked (JOB_ID_INVALID when malformed or missing)."""
    return ids.job_id(message.job_id.value)


def parse_create(body: bytes) -> CreateCommand:
    message = parse(body, jobs_pb2.JobsCreateRequest)
    name = message.name
    if not name:
        raise Invalid("a job needs a name", code=ErrorCode.JOB_NAME_INVALID)
    try:
        validate_name(name, what="job name")
    except Invalid as error:
        raise Invalid(*error.messages, code=ErrorCode.JOB_NAME_INVALID) from None
    return CreateCommand(
        pipeline_id=ids.pipeline_id(message.pipeline_id.value),
        name=name,
        priority=priority_of(message.priority),
        input_payloads=tuple(ids.payload_id(item.value) for item in message.input_payloads),
        metadata=add_metadata({}, list(message.metadata.items())),
    )


def priority_of(value: int) -> JobPriority:
    """Clara's priority: UNKNOWN (not given) is NORMAL; values beyond IMMEDIATE are refused."""
    if value == JobPriority.UNKNOWN:
        return JobPriority.NORMAL
    try:
        return JobPriority(value)
    except ValueError:
        raise Invalid(
            f"job priority {value} is not one of LOWER (1), NORMAL (2), HIGHER (3) or "
            "IMMEDIATE (4)",
            code=ErrorCode.JOB_REQUEST_INVALID,
        ) from None


def parse_start(body: bytes) -> StartCommand:
    message = parse(body, jobs_pb2.JobsStartRequest)
    job_id = job_id_of(message)
    variables: dict[str, str] = {}
    for item in message.Variables:
        if item.name in variables:
            raise Invalid(
                f"variable {item.name!r} is given twice", code=ErrorCode.JOB_VARIABLES_INVALID
            )
        variables[item.name] = item.value
    return StartCommand(job_id=job_id, variables=variables)


def parse_cancel(body: bytes) -> CancelCommand:
    message = parse(body, jobs_pb2.JobsCancelRequest)
    reason = " ".join(message.reason.split())
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    return CancelCommand(job_id=job_id_of(message), reason=reason)


def list_filter(message: jobs_pb2.JobsListRequest) -> dict[str, Any]:
    """The store filter for a `JobsListRequest.filter` (empty: every job).

    States and statuses must be Clara's values; times are Clara seconds (values <= 0: not
    set). `created_after` keeps jobs created after that second, `completed_before` jobs that
    stopped before it (a job still running never matches).
    """
    if not message.HasField("filter"):
        return {}
    given = message.filter
    conditions: dict[str, Any] = {}
    states = [_enum(JobState, value, "state") for value in given.has_state]
    if states:
        conditions["state"] = {"$in": states}
    statuses = [_enum(JobStatus, value, "status") for value in given.has_status]
    if statuses:
        conditions["status"] = {"$in": statuses}
    pipelines = [ids.pipeline_id(item.value) for item in given.pipeline_id]
    if pipelines:
        conditions["pipeline_id"] = {"$in": pipelines}
    if given.created_after.value > 0:
        conditions["created"] = {"$gt": unix_seconds(given.created_after.value)}
    if given.completed_before.value > 0:
        conditions["stopped"] = {"$lt": unix_seconds(given.completed_before.value)}
    return conditions


def unix_seconds(clara_seconds: int) -> float:
    """A Clara `Timestamp.value` (seconds since year 1) as Unix seconds."""
    return float(clara_seconds - UNIX_EPOCH_IN_CLARA_SECONDS)


def _enum(kind: type[JobState] | type[JobStatus], value: int, what: str) -> int:
    try:
        return int(kind(value))
    except ValueError:
        known = ", ".join(f"{member.name} ({int(member)})" for member in kind)
        raise Invalid(
            f"job {what} {value} in the filter is not one of {known}",
            code=ErrorCode.JOB_REQUEST_INVALID,
        ) from None
