"""The job life-cycle: Clara's enum values, and every (phase, event) pair legal or not."""

from __future__ import annotations

import itertools

import pytest

from aorta.errors import Conflict, ErrorCode
from aorta_services.scheduler.domain import (
    TRANSITIONS,
    JobEvent,
    JobPhase,
    JobPriority,
    JobState,
    JobStatus,
    OperatorStatus,
    describe,
    next_phase,
)

P, E = JobPhase, JobEvent

# Written out independently of the module, so a changed table fails here.
LEGAL = {
    (P.CREATED, E.START): P.QUEUED,
    (P.CREATED, E.CANCEL): P.CANCELED,
    (P.QUEUED, E.ADMIT): P.RUNNING,
    (P.QUEUED, E.CANCEL): P.CANCELED,
    (P.QUEUED, E.FAULT): P.FAULTED,
    (P.QUEUED, E.TERMINATE): P.TERMINATED,
    (P.RUNNING, E.SUCCEED): P.SUCCEEDED,
    (P.RUNNING, E.FAULT): P.FAULTED,
    (P.RUNNING, E.CANCEL): P.CANCELED,
    (P.RUNNING, E.TERMINATE): P.TERMINATED,
    (P.RUNNING, E.EVICT): P.EVICTED,
}

ALL_PAIRS = list(itertools.product(JobPhase, JobEvent))


def test_enum_values_are_clara_wire_values() -> None:
    assert {m.name: m.value for m in JobState} == {
        "UNKNOWN": 0,
        "PENDING": 1,
        "RUNNING": 2,
        "STOPPED": 3,
    }
    assert {m.name: m.value for m in JobStatus} == {
        "UNKNOWN": 0,
        "HEALTHY": 1,
        "FAULTED": 2,
        "CANCELED": 3,
        "EVICTED": 4,
        "TERMINATED": 5,
    }
    assert {m.name: m.value for m in JobPriority} == {
        "UNKNOWN": 0,
        "LOWER": 1,
        "NORMAL": 2,
        "HIGHER": 3,
        "IMMEDIATE": 4,
    }
    assert {m.name: m.value for m in OperatorStatus} == {
        "UNKNOWN": 0,
        "PENDING": 1,
        "RUNNING": 2,
        "COMPLETED": 3,
        "FAULTED": 4,
    }


@pytest.mark.parametrize(
    ("phase", "state", "status", "queued", "stopped"),
    [
        (P.CREATED, JobState.PENDING, JobStatus.HEALTHY, False, False),
        (P.QUEUED, JobState.PENDING, JobStatus.HEALTHY, True, False),
        (P.RUNNING, JobState.RUNNING, JobStatus.HEALTHY, False, False),
        (P.SUCCEEDED, JobState.STOPPED, JobStatus.HEALTHY, False, True),
        (P.FAULTED, JobState.STOPPED, JobStatus.FAULTED, False, True),
        (P.CANCELED, JobState.STOPPED, JobStatus.CANCELED, False, True),
        (P.TERMINATED, JobState.STOPPED, JobStatus.TERMINATED, False, True),
        (P.EVICTED, JobState.STOPPED, JobStatus.EVICTED, False, True),
    ],
)
def test_each_phase_reports_one_clara_triple(
    phase: JobPhase, state: JobState, status: JobStatus, queued: bool, stopped: bool
) -> None:
    assert (phase.state, phase.status, phase.queued, phase.stopped) == (
        state,
        status,
        queued,
        stopped,
    )


def test_the_published_table_is_exactly_the_legal_pairs() -> None:
    assert dict(TRANSITIONS) == LEGAL


@pytest.mark.parametrize(("phase", "event"), [pair for pair in ALL_PAIRS if pair in LEGAL])
def test_legal_transition(phase: JobPhase, event: JobEvent) -> None:
    assert next_phase(phase, event) is LEGAL[(phase, event)]


@pytest.mark.parametrize(("phase", "event"), [pair for pair in ALL_PAIRS if pair not in LEGAL])
def test_illegal_transition_is_a_state_conflict(phase: JobPhase, event: JobEvent) -> None:
    with pytest.raises(Conflict) as caught:
        next_phase(phase, event, job_id="0123456789abcdef0123456789abcdef")
    assert caught.value.code == ErrorCode.JOB_STATE_CONFLICT
    message = str(caught.value)
    assert message.startswith("job 0123456789abcdef0123456789abcdef cannot ")
    assert describe(phase) in message


def test_no_event_leaves_a_stopped_phase() -> None:
    for phase in JobPhase:
        if phase.stopped:
            assert not [event for event in JobEvent if (phase, event) in TRANSITIONS]


def test_the_happy_path_ends_stopped_healthy() -> None:
    phase = P.CREATED
    for event in (E.START, E.ADMIT, E.SUCCEED):
        phase = next_phase(phase, event)
    assert (phase.state, phase.status) == (JobState.STOPPED, JobStatus.HEALTHY)


def test_starting_twice_says_it_was_already_started() -> None:
    with pytest.raises(Conflict) as caught:
        next_phase(P.QUEUED, E.START, job_id="abc")
    assert str(caught.value) == (
        "job abc cannot be started: it is PENDING (started, queued); "
        "a job can be started once, while it is PENDING and not yet started"
    )


def test_starting_a_stopped_job_names_how_it_ended() -> None:
    with pytest.raises(Conflict, match=r"cannot be started: it is STOPPED \(CANCELED\)"):
        next_phase(P.CANCELED, E.START)


def test_canceling_a_stopped_job_says_what_can_be_canceled() -> None:
    with pytest.raises(Conflict) as caught:
        next_phase(P.SUCCEEDED, E.CANCEL)
    assert str(caught.value) == (
        "the job cannot be canceled: it is STOPPED (HEALTHY); "
        "only PENDING or RUNNING jobs can be canceled"
    )
