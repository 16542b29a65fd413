"""The changes of a job record's wait reasons (`domain.waiting`), as pure functions.

A reason is kept only while it can be true: a job's own while it is queued, an operator's while
its job runs and the operator is PENDING. A change that comes too late (the job was admitted,
the operator started, the job stopped) leaves the record as it is, so the repository writes
nothing; the transitions that end a wait clear its reason themselves.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.states import JobPhase, OperatorStatus
from aorta_services.scheduler.domain.waiting import WaitReason


def with_job_wait(record: JobRecord, reason: WaitReason | None) -> JobRecord:
    """`record` with `reason` as the queued job's own (None: no reason); unchanged unless
    the job is queued."""
    if record.phase is not JobPhase.QUEUED or record.waiting.job == reason:
        return record
    return replace(record, waiting=record.waiting.with_job(reason))


def with_operator_wait(record: JobRecord, name: str, reason: WaitReason | None) -> JobRecord:
    """`record` with `reason` for operator `name` (None: no reason); unchanged unless the job
    runs and the operator is PENDING."""
    if record.phase is not JobPhase.RUNNING or record.waiting.operators.get(name) == reason:
        return record
    statuses = record.statuses()
    if statuses.get(name) is not OperatorStatus.PENDING:
        return record
    return replace(record, waiting=record.waiting.with_operator(name, reason))


def current_waits(record: JobRecord, now: float) -> dict[str, Any]:
    """What a client is shown of the record's reasons at `now` (`WaitReason.view`): the
    job's own while it is queued, and each PENDING operator's while it runs, by name; only
    the keys that apply."""
    shown: dict[str, Any] = {}
    job = record.waiting.job
    if record.phase is JobPhase.QUEUED and job is not None:
        shown["job"] = job.view(now)
    if record.phase is JobPhase.RUNNING and record.waiting.operators:
        statuses = record.statuses()
        operators = {
            name: reason.view(now)
            for name, reason in record.waiting.operators.items()
            if statuses.get(name) is OperatorStatus.PENDING
        }
        if operators:
            shown["operators"] = operators
    return shown
