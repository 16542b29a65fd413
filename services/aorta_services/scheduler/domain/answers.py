"""The Jobs answers: Clara response messages built from job records, pure.

Times are sent twice, as Clara did: `Timestamp` fields (whole seconds since 0001-01-01 UTC;
0 for "not set") and the deprecated `timestamp_*` strings (`YYYY-MM-DD HH:MM:SSZ`, empty for
"not set"). Every answer carries the job, payload and pipeline ids, which NVIDIA's client
refuses to do without, and every streamed message carries a header.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aorta.api import common_pb2, jobs_pb2
from aorta.timestamps import to_clara_seconds, to_clara_string
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.listing import JobListing
from aorta_services.scheduler.domain.states import JobPhase

StatusResponse = jobs_pb2.JobsStatusResponse
ListResponse = jobs_pb2.JobsListResponse

MAX_LOG_CHUNK_LINES = 500
MAX_LOG_CHUNK_BYTES = 256 * 1024
"""ReadLogs sends a message when either bound is reached: well under one bus message."""
MAX_LOG_LINE_BYTES = 16 * 1024
"""A longer log line is cut (and marked) so that one line always fits a message."""


def header() -> common_pb2.ResponseHeader:
    return common_pb2.ResponseHeader(code=0)


def ident(value: str) -> common_pb2.Identifier:
    return common_pb2.Identifier(value=value)


def moment(seconds: float | None) -> datetime | None:
    """Unix seconds as an aware UTC datetime (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def timestamp(seconds: float | None) -> common_pb2.Timestamp:
    """A Clara `Timestamp`: seconds since year 1, 0 when not set."""
    return common_pb2.Timestamp(value=to_clara_seconds(moment(seconds)))


def clara_string(seconds: float | None) -> str:
    """The deprecated string form; empty when not set."""
    return to_clara_string(moment(seconds))


def created(job_id: str, payload_id: str) -> bytes:
    return jobs_pb2.JobsCreateResponse(
        header=header(), job_id=ident(job_id), payload_id=ident(payload_id)
    ).SerializeToString()


def started(record: JobRecord) -> bytes:
    return jobs_pb2.JobsStartResponse(
        header=header(),
        state=int(record.phase.state),  # type: ignore[arg-type]
        status=int(record.phase.status),  # type: ignore[arg-type]
        priority=int(record.priority),  # type: ignore[arg-type]
    ).SerializeToString()


def canceled(record: JobRecord) -> bytes:
    return jobs_pb2.JobsCancelResponse(
        header=header(),
        job_id=ident(record.id),
        job_state=int(record.phase.state),  # type: ignore[arg-type]
        job_status=int(record.phase.status),  # type: ignore[arg-type]
    ).SerializeToString()


def _described(record: JobRecord | JobListing) -> dict[str, Any]:
    """The fields `Jobs.Status` and a `Jobs.List` item share: the ids, state, status and
    priority, and both forms of each time."""
    return {
        "job_id": ident(record.id),
        "pipeline_id": ident(record.pipeline_id),
        "payload_id": ident(record.payload_id),
        "state": int(record.phase.state),
        "status": int(record.phase.status),
        "priority": int(record.priority),
        "timestamp_created": clara_string(record.created),
        "timestamp_started": clara_string(record.started),
        "timestamp_stopped": clara_string(record.stopped),
        "created": timestamp(record.created),
        "started": timestamp(record.started),
        "stopped": timestamp(record.stopped),
    }


def stopped_by_job_line(operator: str, status: str) -> str:
    """The header line naming an operator that its job's stop stopped, and the job's status
    (`operator writer CANCELED`): Aorta's clients show that status in place of Clara's
    FAULTED."""
    return f"operator {operator} {status}"


def payload_removed_line(record: JobRecord) -> str:
    """The header line (code 0) of a job whose payload the retention policy removed."""
    removed = datetime.fromtimestamp(record.payload_removed or 0.0, UTC)
    return f"payload {record.payload_id} was removed by retention at {to_clara_string(removed)}"


def status(record: JobRecord) -> StatusResponse:
    """`Jobs.Status`: the job, each operator with its status and times, the DAG, messages.

    An operator stopped because its job was canceled or terminated is FAULTED on Clara's wire;
    the header names it with the job's status (`stopped_by_job_line`; code 0, so Clara's
    clients, which read messages only on failure, see nothing new), and so it names a payload
    the retention policy removed (`payload_removed_line`).
    """
    stopped_as = record.phase.status.name
    response = StatusResponse(
        header=header(), name=record.name, messages=list(record.messages), **_described(record)
    )
    if record.phase in (JobPhase.CANCELED, JobPhase.TERMINATED):
        response.header.messages.extend(
            stopped_by_job_line(name, stopped_as) for name in record.job_progress().stopped_by_job()
        )
    if record.payload_removed is not None:
        response.header.messages.append(payload_removed_line(record))
    response.metadata.update(record.metadata)
    statuses = record.statuses()
    for operator in record.operators:
        response.operator_details.add(
            name=operator.name,
            status=int(statuses[operator.name]),
            created=timestamp(record.created),
            started=timestamp(operator.started),
            stopped=timestamp(operator.stopped),
        )
    for item in record.progress["operators"]:
        node = response.dag.add(name=item["name"])
        for upstream in item["upstream"]:
            node.input_dependencies.add(name=upstream)
            node.order_dependencies.add(name=upstream)
    return response


def list_item(record: JobListing) -> ListResponse:
    """One `Jobs.List` message: one job, with both forms of each time."""
    details = ListResponse.JobDetails(job_name=record.name, **_described(record))
    details.metadata.update(record.metadata)
    return ListResponse(header=header(), job_details=details)


def empty_list() -> ListResponse:
    """The one message `List` sends when no job matches: a header and no details (NVIDIA's
    client skips an item without a job id)."""
    return ListResponse(header=header())


def metadata_added(record: JobRecord) -> bytes:
    response = jobs_pb2.JobsAddMetadataResponse(header=header(), job_id=ident(record.id))
    response.metadata.update(record.metadata)
    return response.SerializeToString()


def metadata_removed(record: JobRecord) -> bytes:
    response = jobs_pb2.JobsRemoveMetadataResponse(header=header(), job_id=ident(record.id))
    response.metadata.update(record.metadata)
    return response.SerializeToString()


async def log_messages(
    job_id: str, operator: str, lines: AsyncIterable[str]
) -> AsyncIterator[jobs_pb2.JobsReadLogsResponse]:
    """`lines` as ReadLogs messages of at most `MAX_LOG_CHUNK_LINES` lines and about
    `MAX_LOG_CHUNK_BYTES` bytes each. At least one message is produced, empty for no lines,
    so the client always receives a header."""
    chunk: list[str] = []
    size = 0
    sent = False
    async for raw in lines:
        line = cut_line(raw)
        length = len(line.encode("utf-8", "surrogatepass"))
        if chunk and (len(chunk) >= MAX_LOG_CHUNK_LINES or size + length > MAX_LOG_CHUNK_BYTES):
            yield _log_message(job_id, operator, chunk)
            sent = True
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk or not sent:
        yield _log_message(job_id, operator, chunk)


def cut_line(line: str) -> str:
    """`line` without its line ending, cut to `MAX_LOG_LINE_BYTES` bytes (marked when cut)."""
    text = line.rstrip("\r\n")
    data = text.encode("utf-8", "replace")
    if len(data) <= MAX_LOG_LINE_BYTES:
        return data.decode("utf-8")
    return data[: MAX_LOG_LINE_BYTES - 20].decode("utf-8", "ignore") + " [line cut]"


def _log_message(job_id: str, operator: str, lines: list[str]) -> jobs_pb2.JobsReadLogsResponse:
    return jobs_pb2.JobsReadLogsResponse(
        header=header(), job_id=ident(job_id), operator_name=operator, logs=lines
    )
