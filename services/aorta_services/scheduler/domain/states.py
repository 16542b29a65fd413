"""Job and operator states as Clara numbers them, and the job life-cycle as explicit transitions.

The four enums carry Clara's wire values (docs/clara-compatibility.md, "Job states and
priorities"), so the gateway maps them one to one onto `JOB_STATE_*`, `JOB_STATUS_*`,
`JOB_PRIORITY_*` and `JOB_OPERATOR_STATUS_*`. Clara's (state, status) pair cannot tell a created
job from a started, queued one (both are PENDING/HEALTHY), so the life-cycle is modelled as a
`JobPhase`, which names exactly one (state, status, queued) triple, and `next_phase` is the whole
transition table: what it does not list is a `Conflict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum
from types import MappingProxyType

from aorta.errors import Conflict, ErrorCode


class JobState(IntEnum):
    """Clara `JobState`: where a job is in its life."""

    UNKNOWN = 0
    PENDING = 1
    RUNNING = 2
    STOPPED = 3


class JobStatus(IntEnum):
    """Clara `JobStatus`: how a job is faring, or how it ended once STOPPED."""

    UNKNOWN = 0
    HEALTHY = 1
    FAULTED = 2
    CANCELED = 3
    EVICTED = 4
    TERMINATED = 5


class JobPriority(IntEnum):
    """Clara `JobPriority`. UNKNOWN means "not given"; the service stores NORMAL for it."""

    UNKNOWN = 0
    LOWER = 1
    NORMAL = 2
    HIGHER = 3
    IMMEDIATE = 4


class OperatorStatus(IntEnum):
    """Clara `JobOperatorStatus`: one operator of one job."""

    UNKNOWN = 0
    PENDING = 1
    RUNNING = 2
    COMPLETED = 3
    FAULTED = 4


class JobEvent(StrEnum):
    """What can happen to a job; the value is the name used in logs and events."""

    START = "start"
    """`Jobs.Start`: the job enters the queue."""
    ADMIT = "admit"
    """The queue chose the job and its resources fit: it runs."""
    SUCCEED = "succeed"
    """Every operator completed."""
    FAULT = "fault"
    """An operator failed or timed out, or the job can never fit on this node."""
    CANCEL = "cancel"
    """`Jobs.Cancel`."""
    TERMINATE = "terminate"
    """The pipeline timeout expired, or the platform was stopped (`Clara.Stop`)."""
    EVICT = "evict"
    """A restarted scheduler found the job running and could not resume it."""


class JobPhase(StrEnum):
    """One step of a job's life; the value is what the state store keeps."""

    CREATED = "created"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAULTED = "faulted"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    EVICTED = "evicted"

    @property
    def state(self) -> JobState:
        """The Clara state reported for this phase."""
        return _CLARA[self][0]

    @property
    def status(self) -> JobStatus:
        """The Clara status reported for this phase."""
        return _CLARA[self][1]

    @property
    def queued(self) -> bool:
        """True while the job waits in the scheduler's queue (started, still PENDING)."""
        return self is JobPhase.QUEUED

    @property
    def stopped(self) -> bool:
        """True once the job has ended; no event is legal any more."""
        return _CLARA[self][0] is JobState.STOPPED


_CLARA: Mapping[JobPhase, tuple[JobState, JobStatus]] = {
    JobPhase.CREATED: (JobState.PENDING, JobStatus.HEALTHY),
    JobPhase.QUEUED: (JobState.PENDING, JobStatus.HEALTHY),
    JobPhase.RUNNING: (JobState.RUNNING, JobStatus.HEALTHY),
    JobPhase.SUCCEEDED: (JobState.STOPPED, JobStatus.HEALTHY),
    JobPhase.FAULTED: (JobState.STOPPED, JobStatus.FAULTED),
    JobPhase.CANCELED: (JobState.STOPPED, JobStatus.CANCELED),
    JobPhase.TERMINATED: (JobState.STOPPED, JobStatus.TERMINATED),
    JobPhase.EVICTED: (JobState.STOPPED, JobStatus.EVICTED),
}

TRANSITIONS: Mapping[tuple[JobPhase, JobEvent], JobPhase] = MappingProxyType(
    {
        (JobPhase.CREATED, JobEvent.START): JobPhase.QUEUED,
        (JobPhase.CREATED, JobEvent.CANCEL): JobPhase.CANCELED,
        (JobPhase.QUEUED, JobEvent.ADMIT): JobPhase.RUNNING,
        (JobPhase.QUEUED, JobEvent.CANCEL): JobPhase.CANCELED,
        # A job whose operators can never fit on this node is faulted from the queue at once.
        (JobPhase.QUEUED, JobEvent.FAULT): JobPhase.FAULTED,
        # Clara.Stop halts queued jobs too, so none starts after the platform was stopped.
        (JobPhase.QUEUED, JobEvent.TERMINATE): JobPhase.TERMINATED,
        (JobPhase.RUNNING, JobEvent.SUCCEED): JobPhase.SUCCEEDED,
        (JobPhase.RUNNING, JobEvent.FAULT): JobPhase.FAULTED,
        (JobPhase.RUNNING, JobEvent.CANCEL): JobPhase.CANCELED,
        (JobPhase.RUNNING, JobEvent.TERMINATE): JobPhase.TERMINATED,
        (JobPhase.RUNNING, JobEvent.EVICT): JobPhase.EVICTED,
    }
)
"""Every legal (phase, event) pair and the phase it leads to; any other pair is a Conflict."""

_VERBS: Mapping[JobEvent, str] = {
    JobEvent.START: "be started",
    JobEvent.ADMIT: "be admitted",
    JobEvent.SUCCEED: "succeed",
    JobEvent.FAULT: "fault",
    JobEvent.CANCEL: "be canceled",
    JobEvent.TERMINATE: "be terminated",
    JobEvent.EVICT: "be evicted",
}

_HINTS: Mapping[JobEvent, str] = {
    JobEvent.START: "a job can be started once, while it is PENDING and not yet started",
    JobEvent.CANCEL: "only PENDING or RUNNING jobs can be canceled",
}


def describe(phase: JobPhase) -> str:
    """The phase as a person reads it in a message, in Clara's words."""
    if phase is JobPhase.CREATED:
        return "PENDING (not started)"
    if phase is JobPhase.QUEUED:
        return "PENDING (started, queued)"
    if phase.stopped:
        return f"STOPPED ({phase.status.name})"
    return phase.state.name


def next_phase(phase: JobPhase, event: JobEvent, *, job_id: str | None = None) -> JobPhase:
    """The phase a job in `phase` moves to when `event` happens.

    Total over every (phase, event) pair: a pair missing from `TRANSITIONS` raises `Conflict`
    with code JOB_STATE_CONFLICT and a message naming the job (when `job_id` is given), what was
    attempted and the phase it is in. Pure; the caller stores the result.
    """
    following = TRANSITIONS.get((phase, event))
    if following is not None:
        return following
    subject = f"job {job_id}" if job_id else "the job"
    message = f"{subject} cannot {_VERBS[event]}: it is {describe(phase)}"
    hint = _HINTS.get(event)
    raise Conflict(
        f"{message}; {hint}" if hint else message,
        code=ErrorCode.JOB_STATE_CONFLICT,
    )
