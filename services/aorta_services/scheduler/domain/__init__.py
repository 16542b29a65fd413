"""The scheduler's pure domain: job life-cycle, priority queue, resource ledger, DAG progress.

No I/O, no clock, no adapters: time arrives as a parameter, and everything the scheduler must
persist has a plain-data form, so these rules are tested fast and exhaustively on their own.
"""

from aorta_services.scheduler.domain.progress import JobProgress
from aorta_services.scheduler.domain.queue import JobQueue, QueueWeights
from aorta_services.scheduler.domain.resources import (
    Allocation,
    Capacity,
    FreeResources,
    Request,
    ResourceLedger,
    Shortfall,
    job_peak_request,
)
from aorta_services.scheduler.domain.states import (
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

__all__ = [
    "TRANSITIONS",
    "Allocation",
    "Capacity",
    "FreeResources",
    "JobEvent",
    "JobPhase",
    "JobPriority",
    "JobProgress",
    "JobQueue",
    "JobState",
    "JobStatus",
    "OperatorStatus",
    "QueueWeights",
    "Request",
    "ResourceLedger",
    "Shortfall",
    "describe",
    "job_peak_request",
    "next_phase",
]
