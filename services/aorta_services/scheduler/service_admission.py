"""What the leader's engine asks about pipeline services while it admits and finishes jobs.

The engine keeps one `ServiceAdmission`: it remembers which services each queued job needs
(read once from the job's definition), faults a job whose services could never fit the node,
holds a job back while its services do not fit now (the job's wait reason says so), reserves
their resources when the job is chosen, has them started before the job is written RUNNING, and
takes a stopped job off their users. The services themselves are the `ServiceKeeper`'s; a
platform without one (no `ServiceParts`) faults every job that declares a service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from aorta.errors import AortaError, Invalid, NotFound
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta.pipeline_spec import Pipeline
from aorta_services.scheduler.domain import Request, ResourceLedger
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.services import (
    DeclaredService,
    declared_services,
    never_fits,
    total_request,
    waiting_reason,
)
from aorta_services.scheduler.domain.waiting import WaitReason, waiting_for_service
from aorta_services.scheduler.pipeline_services import ServiceKeeper
from aorta_services.scheduler.repository import JobRepository

log = get_logger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


class ServiceAdmission:
    """See the module docstring. Runs on the leader's event loop only."""

    def __init__(
        self,
        keeper: ServiceKeeper | None,
        ledger: ResourceLedger,
        repository: JobRepository,
        spawn: Spawn,
    ) -> None:
        self.keeper = keeper
        self._ledger = ledger
        self._repository = repository
        self._spawn = spawn
        self._needs: dict[JobId, tuple[DeclaredService, ...]] = {}
        self._waiting: dict[JobId, str] = {}

    async def takeover(self) -> None:
        """At takeover: adopts the services still running (`ServiceKeeper.adopt`)."""
        if self.keeper is not None:
            await self.keeper.adopt()

    async def close(self) -> None:
        if self.keeper is not None:
            await self.keeper.close()

    def deadlines(self) -> list[float]:
        """When an idle service is next due to stop (none, or one time)."""
        deadline = self.keeper.next_deadline() if self.keeper is not None else None
        return [] if deadline is None else [deadline]

    async def sweep(self) -> None:
        """Stops the services due to stop, keeping those a queued job needs."""
        if self.keeper is not None:
            queued = [s.service_id for needs in self._needs.values() for s in needs]
            await self.keeper.sweep(queued)

    async def resync(self) -> None:
        if self.keeper is not None:
            await self.keeper.resync()

    async def learn(self, record: JobRecord, peak: Request) -> str | None:
        """Remembers the services a queued job needs; why the job could never run on this
        node with them beside its most demanding operator (`peak`), else None."""
        needs = await self._declared(record)
        if needs:
            impossible = never_fits(self._ledger.capacity, needs, peak)
            if impossible is not None:
                return impossible
        self._needs[record.id] = needs
        return None

    def forget(self, job_id: JobId) -> None:
        """The job left the queue."""
        self._needs.pop(job_id, None)
        self._waiting.pop(job_id, None)

    def fits(self, job_id: JobId, peak: Request) -> bool:
        """Whether the job's most demanding operator and its services not running yet fit
        the node now; a job its services keep waiting says so in the log once."""
        if not self._ledger.fits(peak):
            return False
        needs = self._needs.get(job_id, ())
        if self.keeper is None or not needs:
            return True
        if self._ledger.fits(total_request([peak, self.keeper.pending(needs)])):
            return True
        reason = waiting_reason(needs)
        if self._waiting.get(job_id) != reason:
            self._waiting[job_id] = reason
            log.info("job.waiting", job_id=job_id, reason=reason)
        return False

    def admit(self, job_id: JobId) -> None:
        """The queue chose the job: its services' resources are reserved now, so the next
        choice of the same pass sees them taken."""
        needs = self._needs.pop(job_id, ())
        self._waiting.pop(job_id, None)
        if self.keeper is not None:
            self.keeper.reserve(needs)

    def admissions_done(self) -> None:
        """Admissions ended: reservations of services no admission started are given back."""
        if self.keeper is not None:
            self.keeper.release_unstarted()

    async def ensure(self, record: JobRecord, pipeline: Pipeline) -> str | None:
        """Has every service the job declares started and ready; why the job must fault when
        one cannot be (its last log lines included), else None."""
        services = declared_services(pipeline)
        if not services:
            return None
        if self.keeper is None:
            return "this scheduler runs no pipeline services"
        try:
            await self.keeper.ensure(record.id, record.pipeline_id, services, record.owner)
        except AortaError as error:
            return "; ".join(error.messages)
        return None

    def waits(self) -> dict[JobId, WaitReason]:
        """The queued jobs whose pipeline services do not fit the node yet (`fits`)."""
        return {
            job_id: waiting_for_service(
                ", ".join(service.spec.name for service in self._needs.get(job_id, ())),
                "no room on the node to start it yet",
            )
            for job_id in self._waiting
        }

    def job_ended(self, job_id: JobId) -> None:
        """Takes a stopped job off its services' users, in a task (the pass goes on)."""
        if self.keeper is not None:
            self._spawn(self.keeper.job_ended(job_id), f"aorta.scheduler.left.{job_id}")

    async def _declared(self, record: JobRecord) -> tuple[DeclaredService, ...]:
        """The services a queued job's operators declare (none when its definition cannot
        be read: admission faults it then)."""
        known = self._needs.get(record.id)
        if known is not None:
            return known
        try:
            definition = await self._repository.definition(record.id)
            return declared_services(definition.resolved(record.variables))
        except (Invalid, NotFound):
            return ()
