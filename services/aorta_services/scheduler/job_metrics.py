"""The scheduler's Prometheus metrics: what its events say happened, and what the store holds.

Counts follow the job events as they are published (`JobEvents.flush` calls `published`):
`aorta_jobs_created_total` on `job.created`, `aorta_job_transitions_total{state,status}` on
every job event that enters a state (created, queued, started, stopped, with the Clara state
and status the event carries), and `aorta_queue_wait_seconds` on `job.started`, from the job's
`Jobs.Start` to its admission. Since events are published at least once, a replay after a crash
may count one twice (one process counts an event once, even when a writer's flush and the
leader's replay publish it at the same moment); a change whose event the bus did not take yet
is counted when it does.

Levels are counted in the store by the leader (`JobGauges`): every few seconds while it leads,
`aorta_jobs{phase}`, `aorta_queue_depth{priority}` and `aorta_events_pending`, so every replica
but the leader reports none and a new leader reports the same figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aorta.errors import AortaError
from aorta.logger import get_logger
from aorta.observability import metrics
from aorta.tasks import cancel_and_wait
from aorta_services.scheduler.domain import JobPhase
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.states import JobPriority
from aorta_services.scheduler.repository import JobRepository

log = get_logger(__name__)

GAUGES_EVERY = 5.0
"""Seconds between two counts of the store's jobs by the leader."""

_JOB_EVENT = "org.aorta.job."
_ENTERS_STATE = frozenset({"created", "queued", "started", "stopped"})
_PRIORITIES = tuple(p for p in JobPriority if p is not JobPriority.UNKNOWN)


def published(document: Mapping[str, Any], record: JobRecord) -> None:
    """Counts the job event `document` of `record`, just published (module docstring)."""
    if not metrics.recording():
        return
    kind = str(document.get("type", ""))
    if not kind.startswith(_JOB_EVENT):
        return
    event = kind.removeprefix(_JOB_EVENT)
    if event not in _ENTERS_STATE:
        return
    data = document.get("data") or {}
    metrics.JOB_TRANSITIONS.labels(str(data.get("state")), str(data.get("status"))).inc()
    if event == "created":
        metrics.JOBS_CREATED.inc()
    elif event == "started" and record.started is not None and record.enqueued is not None:
        metrics.QUEUE_WAIT_SECONDS.observe(max(0.0, record.started - record.enqueued))


class JobGauges:
    """The leader's counts of the store's jobs (module docstring). `start` begins counting
    every `every` seconds; `stop` ends it and clears the gauges, since another replica leads."""

    def __init__(self, repository: JobRepository, every: float = GAUGES_EVERY) -> None:
        self._repository = repository
        self._every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if metrics.recording() and self._task is None:
            self._task = asyncio.create_task(self._count_forever(), name="aorta.scheduler.gauges")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
            metrics.JOBS.clear()
            metrics.QUEUE_DEPTH.clear()
            metrics.EVENTS_PENDING.set(0)

    async def count(self) -> None:
        """Counts once; store errors raise."""
        repository = self._repository
        for phase in JobPhase:
            metrics.JOBS.labels(phase.value).set(await repository.count(phase=phase))
        for priority in _PRIORITIES:
            queued = await repository.count(phase=JobPhase.QUEUED, priority=priority)
            metrics.QUEUE_DEPTH.labels(priority.name.lower()).set(queued)
        metrics.EVENTS_PENDING.set(await repository.pending_event_count())

    async def _count_forever(self) -> None:
        while True:
            try:
                await self.count()
            except AortaError as error:
                log.warning("scheduler.gauges_not_counted", error=str(error))
            await asyncio.sleep(self._every)
