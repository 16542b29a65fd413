"""What a stopped job gives back: its Triton server and its payload lock, once, in the background.

A job that stopped holds its payload read-only and in use (locked at Start) and, if it listed
models, a Triton server. The leader gives both back, then marks the job `released`; a release
that fails (a service unavailable) leaves the job unreleased, and the leader's next resync
tries again, so nothing stays held after a crash or an outage either. The release's write
starts from the leader's copy of the job and removes the events the leader published and left
staged (`JobEvents.modify`): the job's `stopped` among them.
"""

from __future__ import annotations

from aorta.errors import AortaError
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta.observability import tracing
from aorta_services.scheduler import observations
from aorta_services.scheduler.domain import transitions
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.events import JobEvents
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.reconcile import Spawn

log = get_logger(__name__)


class Releaser:
    """Releases stopped jobs, at most one task per job at a time."""

    def __init__(self, events: JobEvents, peers: Peers, spawn: Spawn) -> None:
        self._events = events
        self._peers = peers
        self._spawn = spawn
        self.busy: set[JobId] = set()

    def release(self, record: JobRecord) -> None:
        """Starts releasing `record` unless it is released or being released already."""
        if record.released or record.id in self.busy:
            return
        self.busy.add(record.id)
        self._spawn(self._release(record), f"aorta.scheduler.release.{record.id}")

    async def _release(self, record: JobRecord) -> None:
        try:
            # The requests join the job's trace, under its span (emitted once released).
            with tracing.job_parent(record.trace.trace_id, record.trace.span_id):
                if record.models:
                    await self._peers.release_triton(record.id)
                if record.enqueued is not None:
                    await self._peers.release_payload(record.payload_id, record.id)
            released = await self._events.modify(record.id, transitions.release, known=record)
            log.info("job.released", job_id=record.id)
            observations.job_stopped(released)
        except AortaError as error:
            log.warning("job.release_failed", job_id=record.id, error=str(error))
        finally:
            self.busy.discard(record.id)
