"""A job's timeline: what the transitions record of each attempt, how it reads back (old
records included), and the `aorta.v1.Jobs/Timeline` answer made of it."""

from __future__ import annotations

from aorta.executors import RunOutcome, RunReason, RunTimes
from aorta_services.scheduler.domain import transitions
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.timeline import AttemptTimes, JobTrace, ready_time
from aorta_services.scheduler.domain.timeline_answer import timeline
from tests.unit.scheduler.test_transitions import ALLOCATION, created, running

TIMES = RunTimes(staging=131.0, running=132.5, exited=140.0, stored=140.75)


def started(record: JobRecord, name: str, now: float, attempt: int = 1) -> JobRecord:
    return transitions.start_operator(
        record,
        name,
        attempt=attempt,
        run_id=f"{name}-{attempt}",
        allocation=ALLOCATION,
        now=now,
        executor="local",
    )


def ended(record: JobRecord, name: str, outcome: RunOutcome, now: float) -> JobRecord:
    attempt = record.operator(name).attempt
    return transitions.finish_operator(
        record, name, attempt=attempt, outcome=outcome, reason="", now=now
    )


def test_an_attempt_records_ready_admitted_and_the_executor_stages() -> None:
    record = started(running(), "a", now=130.0)
    (times,) = record.operator("a").timeline
    assert times == AttemptTimes(1, executor="local", ready=120.0, admitted=130.0)
    outcome = RunOutcome("a-1", RunReason.COMPLETED, 0, times=TIMES)
    record = ended(record, "a", outcome, now=141.0)
    (times,) = record.operator("a").timeline
    assert times.outcome == "completed"
    assert (times.staging, times.running, times.exited, times.stored) == (131, 132.5, 140, 140.75)
    assert times.ended == 141.0
    assert times.durations() == {"staging": 1.5, "running": 7.5, "storing": 0.75}
    assert times.wall() == 10.75


def test_a_downstream_operator_is_ready_when_its_upstream_ended() -> None:
    record = started(running(), "a", now=130.0)
    record = ended(record, "a", RunOutcome("a-1", RunReason.COMPLETED, 0, times=TIMES), now=141.0)
    record = started(record, "c", now=142.0)
    (times,) = record.operator("c").timeline
    assert times.ready == 141.0
    assert ready_time(None, [None]) is None
    assert ready_time(120.0, [141.0, 135.0]) == 141.0


def test_every_attempt_is_kept_and_a_lost_run_is_recorded_as_lost() -> None:
    # The executor lost attempt 1: the operator stays RUNNING in the store and runs again.
    record = started(running(), "a", now=130.0)
    record = transitions.start_operator(
        record, "a", attempt=2, run_id="a-2", allocation=ALLOCATION, now=132.0
    )
    first, second = record.operator("a").timeline
    assert (first.attempt, first.outcome, first.ended, first.stages()) == (1, "lost", 132.0, {})
    assert (second.attempt, second.admitted, second.outcome) == (2, 132.0, "")
    assert second.wall() is None


def test_a_stage_the_executor_did_not_see_is_left_out() -> None:
    times = AttemptTimes(1, admitted=10.0, staging=10.5, running=None, exited=12.0, stored=13.0)
    assert times.stages() == {"storing": (12.0, 13.0)}


def test_records_round_trip_and_old_ones_read_without_timelines() -> None:
    record = started(running(), "a", now=130.0)
    record = transitions.admit(
        transitions.queue(
            created(),
            variables={},
            operators=created().operators,
            progress=created().progress,
            models=("m",),
            timeout=60,
            now=110.0,
            trace=JobTrace("ab" * 16, "cd" * 8, "ef" * 8),
        ),
        now=120.0,
        rotation=0,
        triton=None,
        triton_wait=(111.0, 119.5),
    )
    again = JobRecord.from_document({**record.to_document(), "version": 0})
    assert again == record
    assert again.trace == JobTrace("ab" * 16, "cd" * 8, "ef" * 8, 111.0, 119.5)

    old = record.to_document()
    del old["trace"]
    for operator in old["operators"]:
        del operator["timeline"]
    legacy = JobRecord.from_document(old)
    assert legacy.trace == JobTrace()
    assert all(op.timeline == () for op in legacy.operators)


def test_the_timeline_answer_carries_every_time_and_leaves_the_missing_unset() -> None:
    record = started(running(), "a", now=130.0)
    record = ended(record, "a", RunOutcome("a-1", RunReason.COMPLETED, 0, times=TIMES), now=141.0)
    record = started(record, "b", now=131.0)
    answer = timeline(record)
    assert answer.job_id.value == record.id and answer.name == "fork-job"
    assert (answer.enqueued, answer.admitted) == (110.0, 120.0)
    assert not answer.HasField("stopped") and not answer.HasField("triton_requested")
    first, second = answer.attempts
    assert (first.operator, first.attempt, first.executor, first.outcome) == (
        "a",
        1,
        "local",
        "completed",
    )
    assert (first.ready, first.admitted, first.staging, first.running) == (120, 130, 131, 132.5)
    assert (first.exited, first.stored) == (140.0, 140.75)
    assert second.operator == "b" and second.admitted == 131.0
    assert not second.HasField("staging") and second.outcome == ""
