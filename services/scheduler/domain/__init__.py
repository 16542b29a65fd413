"""The scheduler's pure domain: job life-cycle, priority queue, resource ledger, DAG progress.

No I/O, no clock, no adapters: time arrives as a parameter, and everything the scheduler must
persist has a plain-data form, so these rules are tested fast and exhaustively on their own.
"""

from .progress import JobProgress
from .queue import JobQueue, QueueWeights
from .resources import (
    Allocation,
    Capacity,
    FreeResources,
    Request,
    ResourceLedger,
    job_peak_request,
)
from .states import (
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
    "describe",
    "job_peak_request",
    "next_phase",
]
