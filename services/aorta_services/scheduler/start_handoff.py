"""How a Start tells the leader about the job it queued: by handing the leading engine the
job's record when this replica leads, by a nudge otherwise.

A nudge makes the leader resync, which reads and decodes every queued job; with hundreds
queued, that was a large part of each Start's cost on the leader. The hand-off gives the
engine the record Start wrote instead (`Engine.queued`, which says when it is taken). A
replica that did not lead before the write, or whose engine changed during it (the lease
was lost, or lost and won again), nudges as before: a new engine's first resync may have read
the store before the job was queued.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.engine import Engine

QueuedNotice = Callable[[JobRecord], Awaitable[None]]
"""Tells the leader about a job Start queued, given the record as written."""


class StartHandoff:
    """Prepares, before Start's write, how the leader will hear about the queued job."""

    def __init__(
        self, engine: Callable[[], Engine | None], notify: Callable[[], Awaitable[None]]
    ) -> None:
        """`engine`: this replica's engine while it leads; `notify`: the nudge."""
        self._engine = engine
        self._notify = notify

    def prepare(self) -> QueuedNotice:
        """Called before the write that queues the job; the notice to call after it."""
        before = self._engine()
        if before is None:
            return self._nudge
        resyncs_begun = before.resyncs_begun

        async def hand_over(record: JobRecord) -> None:
            if self._engine() is before:
                before.queued(record, resyncs_begun=resyncs_begun)
            else:
                await self._notify()

        return hand_over

    async def _nudge(self, record: JobRecord) -> None:
        await self._notify()
