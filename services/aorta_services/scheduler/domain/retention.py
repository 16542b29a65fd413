"""What the retention policy removes, given the stopped jobs and a clock: pure, no I/O.

The leader sweeps stopped jobs that gave back what they held (`released`) against the policy
(`RetentionPolicy`, from the `AORTA_RETENTION_*` settings) and removes what `plan` names:

- a stopped job older than its limit goes whole, with its logs and its PIPELINE payload (as
  `aorta.v1.Jobs/Delete` removes it): `jobs_days` after it stopped, or `failed_jobs_days` for
  a FAULTED job, so failures can be kept longer to be looked into;
- a stopped job's payload alone goes `payloads_days` after the job stopped (its record and
  logs stay until the job's own limit); a FAULTED job's payload stays as long as the job, since
  it is what a failure is examined with;
- while the payloads of the stopped jobs left hold more than `max_bytes`, the oldest go first
  (the payloads of jobs that did not fail before any failed job's), until they fit.

Age is counted from when the job stopped. A limit of None keeps forever. Nothing else is ever
removed: jobs still created, queued or running, REUSABLE payloads and models go only by an
explicit delete.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aorta.ids import JobId
from aorta_services.scheduler.domain.states import JobPhase

DAY = 86_400.0
"""Seconds in a day, the unit of the age limits."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How long stopped jobs and their payloads are kept, and how many payload bytes at most.
    None keeps forever (no limit); `failed_jobs_days` None means the same as `jobs_days`."""

    jobs_days: float | None = None
    failed_jobs_days: float | None = None
    payloads_days: float | None = None
    max_bytes: int | None = None

    @property
    def active(self) -> bool:
        """Whether any limit is set (with none, the leader never sweeps)."""
        return any(
            limit is not None
            for limit in (self.jobs_days, self.failed_jobs_days, self.payloads_days, self.max_bytes)
        )

    def job_days(self, failed: bool) -> float | None:
        """The age limit of a stopped job, by whether it failed."""
        if failed and self.failed_jobs_days is not None:
            return self.failed_jobs_days
        return self.jobs_days


@dataclass(frozen=True)
class StoppedJob:
    """What the policy needs of a stopped job: when it stopped, whether it failed, whether its
    payload is still there (`payload_bytes` its size, 0 when gone or not measured)."""

    id: JobId
    phase: JobPhase
    stopped: float
    payload_kept: bool = True
    payload_bytes: int = 0

    @property
    def failed(self) -> bool:
        return self.phase is JobPhase.FAULTED


class Removal(enum.Enum):
    """What goes: the whole job (record, logs, payload) or its payload alone."""

    JOB = "job"
    PAYLOAD = "payload"


class Limit(enum.Enum):
    """Which limit of the policy asks for a removal, named as its `AORTA_RETENTION_*` setting:
    a few values, unlike the reason's text, so metrics can be labelled with it."""

    JOBS_DAYS = "jobs_days"
    FAILED_JOBS_DAYS = "failed_jobs_days"
    PAYLOADS_DAYS = "payloads_days"
    MAX_GIB = "max_gib"


@dataclass(frozen=True)
class RetentionStep:
    """One removal the policy asks for, with the reason recorded beside it and the limit that
    asks for it."""

    job_id: JobId
    removal: Removal
    reason: str
    limit: Limit


def plan(policy: RetentionPolicy, jobs: Iterable[StoppedJob], now: float) -> list[RetentionStep]:
    """Every removal `policy` asks for among the stopped `jobs` at time `now` (module
    docstring): the jobs past their age first, then payloads past theirs, then the oldest
    payloads over the byte limit."""
    steps: list[RetentionStep] = []
    kept: list[StoppedJob] = []
    for job in jobs:
        step = _aged(policy, job, now)
        if step is not None:
            steps.append(step)
        elif job.payload_kept:
            kept.append(job)
    steps.extend(_over_limit(policy, kept))
    return steps


def _aged(policy: RetentionPolicy, job: StoppedJob, now: float) -> RetentionStep | None:
    age = now - job.stopped
    limit = policy.job_days(job.failed)
    if limit is not None and age >= limit * DAY:
        by_failure = job.failed and policy.failed_jobs_days is not None
        kind = "failed job" if by_failure else "job"
        return RetentionStep(
            job.id,
            Removal.JOB,
            f"the {kind} stopped {_days(age)} ago; kept {_days(limit * DAY)}",
            Limit.FAILED_JOBS_DAYS if by_failure else Limit.JOBS_DAYS,
        )
    payload_limit = policy.payloads_days
    if payload_limit is None or not job.payload_kept or job.failed or age < payload_limit * DAY:
        return None
    return RetentionStep(
        job.id,
        Removal.PAYLOAD,
        f"its job stopped {_days(age)} ago; payloads kept {_days(payload_limit * DAY)}",
        Limit.PAYLOADS_DAYS,
    )


def _over_limit(policy: RetentionPolicy, kept: Sequence[StoppedJob]) -> list[RetentionStep]:
    limit = policy.max_bytes
    if limit is None:
        return []
    total = sum(job.payload_bytes for job in kept)
    steps: list[RetentionStep] = []
    for job in sorted(kept, key=lambda job: (job.failed, job.stopped, job.id)):
        if total <= limit:
            break
        if job.payload_bytes == 0:
            continue
        steps.append(
            RetentionStep(
                job.id,
                Removal.PAYLOAD,
                f"the stopped jobs' payloads hold {total} bytes, over the limit of {limit}",
                Limit.MAX_GIB,
            )
        )
        total -= job.payload_bytes
    return steps


def _days(seconds: float) -> str:
    days = seconds / DAY
    return f"{days:g} days" if days != 1 else "1 day"
