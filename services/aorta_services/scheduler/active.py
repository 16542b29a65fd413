"""What the leader holds in memory about a job it runs: its latest record and its live runs.

The store stays the truth; an `ActiveJob` is the leader's cache of it plus what only the leader
knows: which operator runs it is watching (`handles`), which operators the store calls RUNNING
but that run nowhere any more (`orphans`, re-run after a crash), and the event that stops every
run of the job (`stop`: canceled, terminated, timed out, or an operator failed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aorta.ids import JobId
from aorta.pipeline_spec import Pipeline
from aorta_services.scheduler.domain import JobPhase, JobProgress
from aorta_services.scheduler.domain.job_record import JobRecord


def owner(job_id: str, operator: str) -> str:
    """The resource ledger's owner name for one operator of one job."""
    return f"{job_id}/{operator}"


def admission_owner(job_id: str) -> str:
    """The ledger's owner of the reservation a job holds while it is being admitted."""
    return f"{job_id}/:admission"


@dataclass
class RunHandle:
    """One run the leader watches: its attempt and the task that waits for it."""

    operator: str
    attempt: int
    run_id: str
    task: asyncio.Task[None] | None = None


@dataclass
class ActiveJob:
    """A job the leader runs (RUNNING, or stopped with runs still to end).

    `pipeline` (resolved) is what new runs are built from; None for a stopped job whose
    remaining runs are only waited for.
    """

    record: JobRecord
    pipeline: Pipeline | None
    deadline: float
    handles: dict[str, RunHandle] = field(default_factory=dict)
    orphans: set[str] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str = ""

    @property
    def id(self) -> JobId:
        return self.record.id

    def update(self, record: JobRecord) -> None:
        """Keeps the newest of the records seen (writes may be reported out of order)."""
        if record.version >= self.record.version:
            self.record = record
        if record.phase.stopped and not self.stop.is_set():
            self.halt(_why_stopped(record.phase))

    def halt(self, reason: str) -> None:
        """Stops every run of the job (once); `reason` is what the stopped runs report."""
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()

    def progress(self) -> JobProgress:
        return self.record.job_progress()

    def launchable(self) -> list[str]:
        """Operators to start now if the node has room: ready ones, and orphans to re-run."""
        if self.stop.is_set() or self.record.phase is not JobPhase.RUNNING:
            return []
        ready = [op for op in self.progress().ready() if op not in self.handles]
        return ready + sorted(op for op in self.orphans if op not in self.handles)


def _why_stopped(phase: JobPhase) -> str:
    if phase is JobPhase.CANCELED:
        return "the job was canceled"
    if phase is JobPhase.TERMINATED:
        return "the job was terminated"
    return f"the job stopped ({phase.status.name})"
