"""The job document's transitions: each refuses what it must, so a stale writer changes nothing."""

from __future__ import annotations

import json
from functools import partial

import pytest

from aorta.bus import CloudEvent
from aorta.errors import Conflict, ErrorCode, Invalid
from aorta.executors import RunOutcome, RunReason
from aorta.ids import JobId, PayloadId, PipelineId
from aorta.pipeline_spec import load_pipeline
from aorta_services.scheduler.domain import (
    Allocation,
    JobPhase,
    JobPriority,
    OperatorStatus,
    transitions,
)
from aorta_services.scheduler.domain.definition import operator_records, progress_of
from aorta_services.scheduler.domain.job_record import JobRecord, TritonUris
from aorta_services.scheduler.events import job_event, operator_event, staged

FORK = """\
api-version: 0.4.0
name: fork
operators:
- {name: a, container: {image: x}, input: [{path: /in}], output: [{path: /out}]}
- {name: b, container: {image: x}, input: [{path: /in}], output: [{path: /out}]}
- {name: c, container: {image: x}, input: [{from: a, path: /a}], output: [{path: /out}]}
"""
ALLOCATION = Allocation(gpus=(), cpu=2, memory_mb=1024)
OK = RunOutcome("r", RunReason.COMPLETED, 0)
FAILED = RunOutcome("r", RunReason.FAILED, 3, "exit code 3; last lines: boom")


def created(job_id: str = "0123456789abcdef0123456789abcdef") -> JobRecord:
    pipeline = load_pipeline({"f.yaml": FORK}).pipeline
    return JobRecord(
        id=JobId(job_id),
        name="fork-job",
        pipeline_id=PipelineId("11111111111111111111111111111111"),
        pipeline_name="fork",
        payload_id=PayloadId("22222222222222222222222222222222"),
        priority=JobPriority.NORMAL,
        phase=JobPhase.CREATED,
        created=100.0,
        progress=progress_of(pipeline).to_document(),
        operators=operator_records(pipeline, default_timeout=600, max_timeout=1800),
        released=True,
    )


def queued() -> JobRecord:
    record = created()
    return transitions.queue(
        record,
        variables={"x": "1"},
        operators=record.operators,
        progress=record.progress,
        models=("spleen",),
        timeout=600,
        now=110.0,
    )


def running() -> JobRecord:
    return transitions.admit(queued(), now=120.0, rotation=3, triton=TritonUris("g", "h"))


def start(record: JobRecord, name: str, attempt: int = 1) -> JobRecord:
    return transitions.start_operator(
        record, name, attempt=attempt, run_id=f"{name}-{attempt}", allocation=ALLOCATION, now=130.0
    )


def finish(record: JobRecord, name: str, outcome: RunOutcome, attempt: int = 1) -> JobRecord:
    reason = "" if outcome.succeeded else transitions.failure_reason(name, outcome, 600)
    return transitions.finish_operator(
        record, name, attempt=attempt, outcome=outcome, reason=reason, now=140.0
    )


def conflict(call: object) -> Conflict:
    with pytest.raises(Conflict) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code == ErrorCode.JOB_STATE_CONFLICT
    return caught.value


def test_start_queues_a_created_job_once() -> None:
    record = queued()
    assert record.phase is JobPhase.QUEUED
    assert (record.enqueued, record.released, record.models) == (110.0, False, ("spleen",))
    assert "PENDING (started, queued)" in str(
        conflict(
            lambda: transitions.queue(
                record,
                variables={},
                operators=record.operators,
                progress=record.progress,
                models=(),
                timeout=1,
                now=1.0,
            )
        )
    )


def test_an_unplaceable_job_is_faulted_with_nothing_to_release() -> None:
    record = transitions.fault_unplaceable(queued(), "operator 'a' requests 1 GPU", now=111.0)
    assert record.phase is JobPhase.FAULTED
    assert record.released and record.stopped == 111.0
    assert record.messages == ("the job can never run on this node: operator 'a' requests 1 GPU",)


def test_admission_records_when_and_the_rotation() -> None:
    record = running()
    assert (record.phase, record.started, record.rotation) == (JobPhase.RUNNING, 120.0, 3)
    conflict(lambda: transitions.admit(record, now=1.0, rotation=0, triton=None))


def test_an_operator_starts_only_when_ready_and_at_the_next_attempt() -> None:
    record = running()
    conflict(lambda: start(record, "c"))  # upstream a not completed
    conflict(lambda: start(record, "a", attempt=2))  # attempt 1 comes first
    record = start(record, "a")
    assert record.operator("a").attempt == 1 and record.operator("a").run_id == "a-1"
    assert record.operator("a").allocation == ALLOCATION
    conflict(lambda: start(record, "a"))  # a second start of attempt 1 loses


def test_a_running_operator_may_be_rerun_as_the_next_attempt() -> None:
    record = start(running(), "a")
    record = start(record, "a", attempt=2)
    assert record.statuses()["a"] is OperatorStatus.RUNNING
    assert record.operator("a").attempt == 2
    conflict(lambda: finish(record, "a", OK, attempt=1))  # the old attempt's report is stale
    record = finish(record, "a", OK, attempt=2)
    assert record.statuses()["a"] is OperatorStatus.COMPLETED
    assert record.operator("a").allocation is None


def test_the_first_failure_is_the_jobs_message_and_the_job_faults_when_nothing_runs() -> None:
    record = start(start(running(), "a"), "b")
    record = finish(record, "a", FAILED)
    assert record.messages == (
        "operator 'a' failed with exit code 3: exit code 3; last lines: boom",
    )
    conflict(lambda: transitions.finish(record, now=150.0))  # b still runs
    stopped = RunOutcome("r", RunReason.CANCELLED, 143, "stopped")
    record = transitions.finish_operator(
        record, "b", attempt=1, outcome=stopped, reason="operator 'b' was stopped", now=141.0
    )
    assert len(record.messages) == 1
    record = transitions.finish(record, now=150.0)
    assert (record.phase, record.stopped, record.released) == (JobPhase.FAULTED, 150.0, False)
    assert record.statuses() == {
        "a": OperatorStatus.FAULTED,
        "b": OperatorStatus.FAULTED,
        "c": OperatorStatus.PENDING,
    }


def test_a_job_whose_operators_completed_succeeds() -> None:
    record = running()
    for name in ("a", "b", "c"):
        record = finish(start(record, name), name, OK)
    assert transitions.finish(record, now=150.0).phase is JobPhase.SUCCEEDED


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            RunOutcome("r", RunReason.TIMEOUT, 137, "killed"),
            "operator 'a' timed out after 30 s: killed",
        ),
        (
            RunOutcome("r", RunReason.START_FAILED, None, "no such file"),
            "could not start: no such file",
        ),
        (RunOutcome("r", RunReason.LOST, None), "was lost by the executor"),
        (RunOutcome("r", RunReason.FAILED, 2), "operator 'a' failed with exit code 2"),
    ],
)
def test_failure_reasons_say_what_happened(reason: RunOutcome, expected: str) -> None:
    assert expected in transitions.failure_reason("a", reason, 30)


def test_cancel_stops_created_queued_and_running_jobs_once() -> None:
    canceled = transitions.cancel(created(), "no longer needed", now=200.0)
    assert (canceled.phase, canceled.released) == (JobPhase.CANCELED, True)
    assert canceled.messages == ("canceled: no longer needed",)
    assert transitions.cancel(queued(), "", now=200.0).messages == ("canceled",)
    assert not transitions.cancel(queued(), "", now=200.0).released
    record = transitions.cancel(start(running(), "a"), "stop", now=200.0)
    assert record.phase is JobPhase.CANCELED
    assert record.job_progress().canceled and record.job_progress().ready() == []
    assert "STOPPED (CANCELED)" in str(conflict(lambda: transitions.cancel(record, "", now=1.0)))


def test_terminate_and_fault_end_queued_and_running_jobs() -> None:
    assert transitions.terminate(queued(), "Clara.Stop", now=1.0).phase is JobPhase.TERMINATED
    assert transitions.terminate(running(), "late", now=1.0).messages == ("terminated: late",)
    conflict(lambda: transitions.terminate(created(), "x", now=1.0))
    assert transitions.fault(running(), "no Triton", now=1.0).messages == ("no Triton",)


def test_abandoned_runs_of_a_stopping_job_fault_and_release_follows() -> None:
    record = start(running(), "a")
    conflict(lambda: transitions.abandon_operator(record, "a", "gone", now=1.0))
    record = transitions.cancel(record, "", now=2.0)
    record = transitions.abandon_operator(record, "a", "gone", now=3.0)
    assert record.statuses()["a"] is OperatorStatus.FAULTED
    assert transitions.release(record).released
    conflict(lambda: transitions.release(running()))


def test_records_round_trip_through_their_document() -> None:
    record = finish(start(running(), "a"), "a", FAILED)
    document = record.to_document()
    assert JobRecord.from_document(document) == record
    assert document["state"] == 2 and document["status"] == 1 and document["phase"] == "running"


def test_the_outbox_round_trips_and_an_old_document_has_none() -> None:
    record = staged(partial(transitions.cancel, reason="", now=1.0), job_event("stopped"))(queued())
    document = record.to_document()
    assert document["outbox_pending"] is True
    assert JobRecord.from_document(document) == record
    assert JobRecord.from_document(document).outbox == record.outbox
    old = running().to_document()
    del old["outbox"], old["outbox_pending"]
    assert JobRecord.from_document(old).outbox == ()
    assert running().to_document()["outbox_pending"] is False


def test_a_staged_change_stores_its_event_as_published_with_its_id() -> None:
    record = staged(
        lambda r: start(r, "a"), operator_event("a", "started", status=OperatorStatus.RUNNING)
    )(running())
    [document] = record.outbox
    event = CloudEvent.from_json(json.dumps(document).encode())
    assert event.id == document["id"] and event.subject == record.id
    assert event.nats_subject == f"aorta.events.job.{record.id}.operator.started"
    assert event.data == {"job_id": record.id, "operator": "a", "attempt": 1, "status": "RUNNING"}
    both = staged(lambda r: finish(r, "a", OK), job_event("stopped"))(record)
    assert [e["type"] for e in both.outbox] == [
        "org.aorta.job.operator.started",
        "org.aorta.job.stopped",
    ]
    assert both.without_events({document["id"]}).outbox == both.outbox[1:]


def test_a_refused_change_stages_no_event() -> None:
    record = running()
    conflict(lambda: staged(transitions.release, job_event("stopped"))(record))
    assert record.outbox == ()


def test_a_malformed_document_is_a_store_error() -> None:
    document = running().to_document()
    del document["operators"]
    with pytest.raises(Invalid) as caught:
        JobRecord.from_document(document)
    assert caught.value.code == ErrorCode.JOB_STORE_ERROR


def test_an_operator_a_cancel_stopped_is_recorded_as_stopped_by_the_job() -> None:
    cancelled = RunOutcome("r", RunReason.CANCELLED, None, "stopped")
    sigterm = RunOutcome("r", RunReason.FAILED, 143, "exit code 143")
    record = start(start(running(), "a"), "b")
    record = finish(record, "b", FAILED)
    record = transitions.cancel(record, "", now=150.0)
    record = finish(record, "a", sigterm)
    progress = record.job_progress()
    assert progress.stopped_by_job() == ["a"]
    assert JobRecord.from_document(record.to_document()) == record
    other = transitions.cancel(start(running(), "a"), "", now=150.0)
    assert finish(other, "a", cancelled).job_progress().stopped_by_job() == ["a"]
    abandoned = transitions.abandon_operator(other, "a", "gone", now=151.0)
    assert abandoned.job_progress().stopped_by_job() == ["a"]
    assert finish(start(running(), "a"), "a", FAILED).job_progress().stopped_by_job() == []
