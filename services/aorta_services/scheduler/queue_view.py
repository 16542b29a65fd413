"""`aorta.v1.Jobs/Queue` (`SCHEDULER_QUEUE`): the queued jobs in admission order with why each
waits; any replica answers it from the store (`domain.queue_answer`).

Every role may read the queue: a viewer and an admin see every job; a `user` sees its own in
full and another user's only as a place, a priority and an enqueue time, as `Jobs.List`
shows a user its own jobs only (`aorta.auth.ownership.listed_owner`), and its own jobs'
reasons name other users' jobs without their ids (`domain.wait_privacy`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from aorta.api import aorta_jobs_pb2
from aorta.auth.ownership import listed_owner
from aorta.bus import Request
from aorta.errors import Invalid
from aorta_services.scheduler.domain import JobPhase, JobQueue, requests
from aorta_services.scheduler.domain.queue_answer import admission_order, entries
from aorta_services.scheduler.domain.wait_privacy import reason_jobs
from aorta_services.scheduler.repository import JobRepository
from aorta_services.scheduler.settings import SchedulerSettings


class JobQueueView:
    """Serves `SCHEDULER_QUEUE` over one repository with the scheduler's queue settings."""

    def __init__(
        self,
        repository: JobRepository,
        settings: SchedulerSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._settings = settings
        self._clock = clock

    async def queue(self, request: Request) -> AsyncIterator[bytes]:
        """One `JobsQueueResponse` per queued job, in admission order (module docstring)."""
        requests.parse(request.data, aorta_jobs_pb2.JobsQueueRequest)
        records = await self._repository.in_phase(JobPhase.QUEUED)
        last = await self._repository.last_admitted()
        rotation = last.rotation if last is not None and last.rotation is not None else 0
        now = self._clock()
        ordered = admission_order(records, self._empty_queue(rotation), now)
        viewer = listed_owner()
        owners: dict[str, str] = {}
        if viewer is not None:
            owners = {record.id: record.owner for record in ordered}
            # Jobs holding GPUs run: their owners are not among the queued records.
            named = set().union(
                *(
                    reason_jobs(r.waiting.job)
                    for r in ordered
                    if r.owner == viewer and r.waiting.job
                )
            )
            owners |= await self._repository.owners(named - owners.keys())
        for message in entries(ordered, now, viewer=viewer, owners=owners):
            yield message.SerializeToString()

    def _empty_queue(self, rotation: int) -> JobQueue:
        settings = self._settings
        try:
            return JobQueue(
                settings.weights,
                aging_seconds=settings.aging,
                hold_after_seconds=settings.hold_after,
                rotation=rotation,
            )
        except Invalid:
            # A rotation stored under other weights: the order of the weighted classes may
            # differ from the leader's until its next admission, never FIFO order or the rest.
            return JobQueue(
                settings.weights,
                aging_seconds=settings.aging,
                hold_after_seconds=settings.hold_after,
            )
