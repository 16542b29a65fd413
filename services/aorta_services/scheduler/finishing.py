"""The leader's pass ending jobs: those past their deadline, and those whose runs all ended.

Part of the engine's pass (`engine`, steps 2 and 3): a RUNNING job past its deadline (job
timeout + grace) is terminated; a job that runs nothing any more is finished (RUNNING ->
SUCCEEDED / FAULTED) when its progress has an outcome, its orphans abandoned when it is
stopping, and once stopped it leaves the leader's jobs and has its payload lock and Triton
server released (`release`). A write that loses a race asks for a resync (`resync`), which
reads the job afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from aorta.errors import Conflict
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta_services.scheduler.active import ActiveJob
from aorta_services.scheduler.domain import JobPhase, OperatorStatus, transitions
from aorta_services.scheduler.events import job_event, operator_event, staged
from aorta_services.scheduler.operator_runs import EngineParts, with_retries
from aorta_services.scheduler.release import Releaser
from aorta_services.scheduler.service_admission import ServiceAdmission

log = get_logger(__name__)


class JobFinishing:
    """Terminates and finishes the leader's jobs (`active`, shared with the engine)."""

    def __init__(
        self,
        parts: EngineParts,
        active: dict[JobId, ActiveJob],
        releaser: Releaser,
        services: ServiceAdmission,
        resync: Callable[[], None],
    ) -> None:
        self._parts = parts
        self._active = active
        self._releaser = releaser
        self._services = services
        self._resync = resync

    async def enforce_deadlines(self, now: float) -> None:
        """Terminates every RUNNING job past its deadline; its runs are stopped by its next
        steps (`operator_runs`)."""
        for job in list(self._active.values()):
            if job.record.phase is not JobPhase.RUNNING or now < job.deadline:
                continue
            reason = f"the job ran past its timeout of {job.record.timeout} s"
            terminated = partial(transitions.terminate, reason=reason, now=now)
            try:
                record = await self._parts.repository.modify(
                    job.id, staged(terminated, job_event("stopped"))
                )
            except Conflict:
                self._resync()
                continue
            job.update(record)
            log.info("job.timed_out", job_id=job.id, timeout=record.timeout)
            await self._parts.events.flush(record)

    async def finish_jobs(self) -> None:
        """Finishes each job that runs nothing and has an outcome; releases each stopped one."""
        for job in list(self._active.values()):
            if job.handles:
                continue
            if job.stop.is_set():
                await self._abandon_orphans(job)
            record = job.record
            if record.phase is JobPhase.RUNNING:
                if job.progress().outcome() is None:
                    continue
                now = self._parts.clock()
                finished = staged(partial(transitions.finish, now=now), job_event("stopped"))
                try:
                    record = await self._parts.events.modify(job.id, finished, known=record)
                except Conflict:
                    self._resync()
                    continue
                job.update(record)
                log.info("job.stopped", job_id=job.id, status=record.phase.status.name)
                # The release's write, coming next, removes the published event.
                await self._parts.events.flush(record, later=True)
            if record.phase.stopped:
                del self._active[job.id]
                self._releaser.release(record)
                self._services.job_ended(record.id)

    async def _abandon_orphans(self, job: ActiveJob) -> None:
        """Operators RUNNING in the store that run nowhere, of a job that is stopping."""
        for name in job.progress().running():
            reason = f"operator {name!r} was stopped: {job.stop_reason}"
            abandoned = staged(
                partial(
                    transitions.abandon_operator, name=name, reason=reason, now=self._parts.clock()
                ),
                operator_event(name, "stopped", status=OperatorStatus.FAULTED, reason=reason),
            )
            record = await with_retries(partial(self._parts.repository.modify, job.id, abandoned))
            job.update(record)
            await self._parts.events.flush(record)
        job.orphans.clear()
