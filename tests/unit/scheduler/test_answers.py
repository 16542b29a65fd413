"""Status and List messages (both timestamp forms, ids, DAG), and ReadLogs chunking."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from aorta.api import jobs_pb2
from aorta.executors import RunOutcome, RunReason
from aorta.ids import JobId, PayloadId, PipelineId
from aorta.pipeline_spec import load_pipeline
from aorta.timestamps import to_clara_string
from aorta_services.scheduler.domain import Allocation, JobPhase, JobPriority, answers, transitions
from aorta_services.scheduler.domain.definition import operator_records, progress_of
from aorta_services.scheduler.domain.job_record import JobRecord

DIAMOND = """\
api-version: 0.4.0
name: diamond
operators:
- {name: a, container: {image: x}, input: [{path: /in}], output: [{path: /out}]}
- {name: b, container: {image: x}, input: [{from: a, path: /in}], output: [{path: /out}]}
- {name: c, container: {image: x}, input: [{from: a, path: /in}], output: [{path: /out}]}
- name: d
  container: {image: x}
  input: [{from: b, path: /b}, {from: c, path: /c}]
  output: [{path: /out}]
"""

CREATED = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
# Seconds from 0001-01-01 to 2024-03-01T12:00:00Z, worked out independently of the code.
CREATED_CLARA = (datetime(2024, 3, 1, 12, tzinfo=UTC) - datetime(1, 1, 1, tzinfo=UTC)).days * 86400
CREATED_CLARA += 12 * 3600


def running_record() -> JobRecord:
    pipeline = load_pipeline({"d.yaml": DIAMOND}).pipeline
    record = JobRecord(
        id=JobId("0123456789abcdef0123456789abcdef"),
        name="diamond-job",
        pipeline_id=PipelineId("11111111111111111111111111111111"),
        pipeline_name="diamond",
        payload_id=PayloadId("22222222222222222222222222222222"),
        priority=JobPriority.HIGHER,
        phase=JobPhase.RUNNING,
        created=CREATED,
        started=CREATED + 5,
        progress=progress_of(pipeline).to_document(),
        operators=operator_records(pipeline, default_timeout=600, max_timeout=1800),
        metadata={"site": "north"},
    )
    allocation = Allocation(gpus=(), cpu=2, memory_mb=1024)
    record = transitions.start_operator(
        record, "a", attempt=1, run_id="r-a", allocation=allocation, now=CREATED + 6
    )
    done = RunOutcome("r-a", RunReason.COMPLETED, 0)
    return transitions.finish_operator(
        record, "a", attempt=1, outcome=done, reason="", now=CREATED + 7
    )


def test_status_carries_ids_states_and_both_time_forms() -> None:
    status = answers.status(running_record())
    assert status.header.code == 0
    assert status.job_id.value == "0123456789abcdef0123456789abcdef"
    assert status.pipeline_id.value == "11111111111111111111111111111111"
    assert status.payload_id.value == "22222222222222222222222222222222"
    assert (status.state, status.status) == (
        jobs_pb2.JOB_STATE_RUNNING,
        jobs_pb2.JOB_STATUS_HEALTHY,
    )
    assert status.priority == jobs_pb2.JOB_PRIORITY_HIGHER
    assert status.name == "diamond-job"
    assert status.created.value == CREATED_CLARA
    assert status.started.value == CREATED_CLARA + 5
    assert status.stopped.value == 0
    assert status.timestamp_created == "2024-03-01 12:00:00Z"
    assert status.timestamp_started == "2024-03-01 12:00:05Z"
    assert status.timestamp_stopped == ""
    assert dict(status.metadata) == {"site": "north"}


def test_status_lists_every_operator_with_its_status_and_times() -> None:
    details = {d.name: d for d in answers.status(running_record()).operator_details}
    assert list(details) == ["a", "b", "c", "d"]
    assert details["a"].status == jobs_pb2.JOB_OPERATOR_STATUS_COMPLETED
    assert (details["a"].started.value, details["a"].stopped.value) == (
        CREATED_CLARA + 6,
        CREATED_CLARA + 7,
    )
    assert details["d"].status == jobs_pb2.JOB_OPERATOR_STATUS_PENDING
    assert details["d"].started.value == 0
    assert all(d.created.value == CREATED_CLARA for d in details.values())


def test_status_dag_names_what_each_operator_waits_for() -> None:
    dag = {node.name: node for node in answers.status(running_record()).dag}
    assert [n.name for n in dag["d"].input_dependencies] == ["b", "c"]
    assert [n.name for n in dag["d"].order_dependencies] == ["b", "c"]
    assert [n.name for n in dag["b"].input_dependencies] == ["a"]
    assert list(dag["a"].input_dependencies) == []


def test_a_stopped_job_reports_its_messages_and_stop_time() -> None:
    record = transitions.cancel(running_record(), "operator asked", now=CREATED + 60)
    status = answers.status(record)
    assert (status.state, status.status) == (
        jobs_pb2.JOB_STATE_STOPPED,
        jobs_pb2.JOB_STATUS_CANCELED,
    )
    assert list(status.messages) == ["canceled: operator asked"]
    assert status.stopped.value == CREATED_CLARA + 60
    assert status.timestamp_stopped == "2024-03-01 12:01:00Z"


def test_operators_a_stop_stopped_are_named_in_the_header_with_the_jobs_status() -> None:
    allocation = Allocation(gpus=(), cpu=2, memory_mb=1024)
    record = transitions.start_operator(
        running_record(), "b", attempt=1, run_id="r-b", allocation=allocation, now=CREATED + 8
    )
    assert list(answers.status(record).header.messages) == []
    record = transitions.cancel(record, "", now=CREATED + 9)
    stopped = RunOutcome("r-b", RunReason.CANCELLED, None)
    record = transitions.finish_operator(
        record, "b", attempt=1, outcome=stopped, reason="stopped", now=CREATED + 10
    )
    status = answers.status(record)
    assert status.header.code == 0
    assert list(status.header.messages) == ["operator b CANCELED"]
    details = {d.name: d.status for d in status.operator_details}
    assert details["b"] == jobs_pb2.JOB_OPERATOR_STATUS_FAULTED


def test_list_items_carry_ids_and_both_time_forms() -> None:
    item = answers.list_item(running_record())
    assert item.header.code == 0
    details = item.job_details
    assert details.job_id.value and details.payload_id.value and details.pipeline_id.value
    assert details.job_name == "diamond-job"
    assert details.created.value == CREATED_CLARA
    assert details.timestamp_created == "2024-03-01 12:00:00Z"
    assert details.timestamp_stopped == ""
    assert dict(details.metadata) == {"site": "north"}


def test_an_empty_list_still_carries_a_header() -> None:
    empty = answers.empty_list()
    assert empty.HasField("header") and not empty.HasField("job_details")


async def from_list(lines: Iterable[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def chunks(lines: Iterable[str]) -> list[jobs_pb2.JobsReadLogsResponse]:
    return [m async for m in answers.log_messages("j", "op", from_list(lines))]


async def test_logs_are_sent_in_bounded_chunks_in_order() -> None:
    lines = [f"line {n}\n" for n in range(1200)]
    messages = await chunks(lines)
    assert [len(m.logs) for m in messages] == [500, 500, 200]
    assert [line for m in messages for line in m.logs] == [f"line {n}" for n in range(1200)]
    assert all(m.header.code == 0 and m.operator_name == "op" for m in messages)


async def test_no_lines_still_give_one_message() -> None:
    messages = await chunks([])
    assert len(messages) == 1 and list(messages[0].logs) == []


async def test_huge_lines_are_cut_and_bytes_bound_a_chunk() -> None:
    huge = "x" * (answers.MAX_LOG_LINE_BYTES * 2)
    messages = await chunks([huge] * 40)
    assert all(line.endswith("[line cut]") for m in messages for line in m.logs)
    assert all(m.ByteSize() <= answers.MAX_LOG_CHUNK_BYTES + 4096 for m in messages)
    assert sum(len(m.logs) for m in messages) == 40


def test_clara_strings_are_utc() -> None:
    assert answers.clara_string(None) == ""
    assert answers.timestamp(None).value == 0
    record = replace(running_record(), stopped=CREATED + 3600)
    assert answers.list_item(record).job_details.timestamp_stopped == "2024-03-01 13:00:00Z"


def test_clara_strings_have_four_digits_of_year_and_the_whole_utc_second() -> None:
    """Clara's `YYYY-MM-DD HH:MM:SSZ` at the edges: its Python client parses the year as
    exactly four digits, so a year below 1000 is zero-padded."""
    assert answers.clara_string(-62_135_596_800.0) == "0001-01-01 00:00:00Z"
    assert answers.clara_string(-30_610_224_001.0) == "0999-12-31 23:59:59Z"
    assert answers.clara_string(253_402_300_799.0) == "9999-12-31 23:59:59Z"
    assert answers.clara_string(CREATED + 0.999999) == "2024-03-01 12:00:00Z"
    assert answers.clara_string(0) == "1970-01-01 00:00:00Z"
    india = timezone(timedelta(hours=5, minutes=30))
    assert to_clara_string(datetime(2024, 3, 1, 17, 30, tzinfo=india)) == "2024-03-01 12:00:00Z"
    assert to_clara_string(datetime(5, 1, 1, 3, tzinfo=india)) == "0004-12-31 21:30:00Z"
