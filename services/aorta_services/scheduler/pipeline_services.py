"""The leader's pipeline services: started before the jobs that need them, shared, stopped idle.

One `ServiceKeeper` lives with each `Engine`. The store's `services` collection is the truth
(`service_records`); the keeper caches it, and makes the executor's `ServiceRunner` match it:

- admission: a queued job's services count in its admission (`pending`), are reserved on the
  node with it (`reserve`), then `ensure`d before the job is written RUNNING: each is started
  (once, however many jobs wait for it) unless it is READY already, and the job joins its
  users. A service that exits or never becomes ready raises `ServiceFailed` (`failure_told`),
  and the engine faults the jobs that waited on it;
- operator runs: `connect` hands an operator the connection variables and data-folder mounts
  of the services it declares, starting a service again if it went away meanwhile;
- stop: a service stops when idle for the idle period (`AORTA_SERVICE_IDLE_SECONDS`), when every
  pipeline that declared it is removed, or when Clara.Stop asked (`stop_requested`, written by
  any replica); its node resources are given back;
- takeover: `adopt` keeps the live records whose service the runner still runs (restoring their
  allocation) and stops what the runner runs that no record knows, so a new leader never starts
  a duplicate.

Lifecycle events are CloudEvents `service.started`, `service.ready`, `service.stopped` and
`service.failed` on `aorta.events.service.<service id>.<event>`, staged in the service's record
in the write that makes the change and published after it (`aorta.outbox`: at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from aorta.bus import CloudEvent, make_event
from aorta.errors import AortaError, Conflict, NotFound
from aorta.executors.services import ServiceFailed, ServiceMount, ServiceRunner
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta.outbox import Outbox
from aorta.pipeline_spec import Pipeline
from aorta_services.scheduler.domain import Request, ResourceLedger
from aorta_services.scheduler.domain.service_access import failure_told
from aorta_services.scheduler.domain.services import (
    DeclaredService,
    ServiceRecord,
    ServiceState,
    joined,
    launch_of,
    left,
    operator_connections,
    service_owner,
    services_of_operator,
    stop_due,
    total_request,
)
from aorta_services.scheduler.service_records import ServiceRepository
from aorta_services.scheduler.service_settings import ServiceSettings

log = get_logger(__name__)

SOURCE = "scheduler"
NO_RUNNER = (
    "this platform's executor runs no pipeline services; run the pipeline on an executor "
    "that does (local, container or kubernetes)"
)

PipelineExists = Callable[[str], Awaitable[bool]]
"""Whether a pipeline id still names a pipeline (asked of the pipelines service)."""
JobStopped = Callable[[str], Awaitable[bool]]
"""Whether a job has stopped or is gone (asked of the job store)."""


@dataclass(frozen=True)
class ServiceParts:
    """What the keeper needs beyond the engine's ledger and clock."""

    repository: ServiceRepository
    runner: ServiceRunner | None
    settings: ServiceSettings
    outbox: Outbox
    pipeline_exists: PipelineExists
    job_stopped: JobStopped
    grace: float = 15.0


class ServiceKeeper:
    """See the module docstring. Runs on the leader's event loop only."""

    def __init__(
        self, parts: ServiceParts, ledger: ResourceLedger, clock: Callable[[], float]
    ) -> None:
        self._parts = parts
        self._ledger = ledger
        self._clock = clock
        self._records: dict[str, ServiceRecord] = {}
        self._starting: dict[str, asyncio.Task[ServiceRecord]] = {}
        self._stopping: dict[str, asyncio.Event] = {}

    # Admission -------------------------------------------------------------------------

    def pending(self, services: Iterable[DeclaredService]) -> Request:
        """What starting `services` would take now: those not holding resources yet."""
        held = self._ledger.allocations()
        return total_request(s.request for s in services if service_owner(s.service_id) not in held)

    def reserve(self, services: Iterable[DeclaredService]) -> None:
        """Charges to the node the services not holding resources yet (`Conflict` when one
        does not fit now: check `pending` first)."""
        held = self._ledger.allocations()
        for service in services:
            owner = service_owner(service.service_id)
            if owner not in held:
                self._ledger.allocate(owner, service.request)

    async def ensure(
        self, job_id: JobId, pipeline_id: str, services: Sequence[DeclaredService], owner: str
    ) -> None:
        """Makes every one of `services` READY with `job_id` (created by `owner`) among its
        users; `ServiceFailed` (`failure_told`) when one exits or is not ready in time. The job
        is a user of each service from here on, even when one failed: `job_ended` takes it off."""
        for service in services:
            await self._ensure_one(job_id, pipeline_id, service, owner)

    async def connect(
        self, job_id: JobId, pipeline_id: str, pipeline: Pipeline, operator: str
    ) -> tuple[dict[str, str], tuple[ServiceMount, ...]]:
        """The connection variables and mounts of the services `operator` declares, each
        ensured READY first (it may have stopped since the job was admitted)."""
        services = services_of_operator(pipeline, operator)
        if not services:
            return {}, ()
        self.reserve_if_fits(services)
        records = [await self._ensure_one(job_id, pipeline_id, s) for s in services]
        return operator_connections(records)

    def release_unstarted(self) -> None:
        """Gives back reservations of services that are neither live nor starting (their job
        was not admitted after all)."""
        for owner in self._ledger.allocations():
            sid = owner.removeprefix("service/")
            if sid != owner and sid not in self._records and sid not in self._starting:
                self._ledger.release(owner)

    def reserve_if_fits(self, services: Sequence[DeclaredService]) -> None:
        """`reserve` when the services fit now; else nothing (`ensure` then fails them)."""
        if self._ledger.fits(self.pending(services)):
            self.reserve(services)

    async def _ensure_one(
        self, job_id: JobId, pipeline_id: str, service: DeclaredService, owner: str | None = None
    ) -> ServiceRecord:
        sid = service.service_id
        now = self._clock()
        record = await self._parts.repository.put(
            sid,
            partial(joined, job_id=job_id, pipeline_id=pipeline_id, now=now, owner=owner),
            lambda: ServiceRecord.first(service, now=now),
        )
        self._records[sid] = record
        if record.state is ServiceState.READY and sid not in self._starting:
            runner = self._parts.runner
            # A service that exited since it was ready is started again, not handed out.
            if runner is not None and sid in await runner.running():
                return record
        task = self._starting.get(sid)
        if task is None:
            task = asyncio.create_task(self._start(service), name=f"aorta.service.start.{sid}")
            self._starting[sid] = task
            task.add_done_callback(lambda _: self._starting.pop(sid, None))
        return await asyncio.shield(task)

    async def _start(self, service: DeclaredService) -> ServiceRecord:
        sid = service.service_id
        name = service.spec.name
        runner = self._parts.runner
        stopping = self._stopping.get(sid)
        if stopping is not None:
            # A stop of this very service is under way: start it afresh once it ended.
            await stopping.wait()
        if runner is None:
            raise await self._failed(service, NO_RUNNER)
        owner = service_owner(sid)
        allocation = self._ledger.allocations().get(owner)
        if allocation is None:
            if not self._ledger.fits(service.request):
                raise await self._failed(
                    service, f"service {name!r} does not fit on the node now", release=False
                )
            allocation = self._ledger.allocate(owner, service.request)
        record = await self._write(
            sid,
            lambda r: replace(
                r,
                state=ServiceState.STARTING,
                allocation=allocation,
                message="",
                stop_requested=False,
            ),
            event="started",
        )
        log.info("service.starting", service_id=sid, service=name, users=list(record.users))
        launch = launch_of(service, allocation, ready_timeout=self._parts.settings.ready_timeout)
        try:
            endpoint = await runner.ensure(launch)
        except AortaError as error:
            raise await self._failed(service, *error.messages) from error
        record = await self._write(
            sid,
            lambda r: replace(
                r,
                state=ServiceState.READY,
                environment=dict(endpoint.environment),
                mounts=endpoint.mounts,
                last_used=self._clock(),
            ),
            event="ready",
        )
        log.info("service.ready", service_id=sid, service=name, address=record.address)
        return record

    async def _failed(
        self, service: DeclaredService, *messages: str, release: bool = True
    ) -> ServiceFailed:
        """Records the failure and frees its resources; the error its jobs get (`failure_told`)."""
        sid = service.service_id
        if release:
            self._ledger.release(service_owner(sid))
        text = f"service {service.spec.name!r} failed: {'; '.join(messages)}"
        record = self._records.get(sid)
        with contextlib.suppress(AortaError):
            record = await self._write(
                sid,
                lambda r: replace(r, state=ServiceState.FAILED, allocation=None, message=text),
                event="failed",
            )
        log.warning("service.failed", service_id=sid, reason=text)
        return ServiceFailed(failure_told(record, service.spec.name, messages))

    # Users and stops -------------------------------------------------------------------

    async def job_ended(self, job_id: str) -> None:
        """Takes a stopped job off the users of every service; the last one leaving starts
        the idle period. Never raises but `CancelledError` (the next resync tries again)."""
        now = self._clock()
        for sid, record in list(self._records.items()):
            if job_id not in record.users:
                continue
            try:
                self._records[sid] = await self._write(
                    sid, partial(left, job_ids=[job_id], now=now)
                )
            except AortaError as error:
                log.warning("service.user_not_removed", service_id=sid, error=str(error))

    def next_deadline(self) -> float | None:
        """When the next idle service is due to stop (for the engine's wake-up)."""
        idle = self._parts.settings.idle_seconds
        times = [
            since + idle for r in self._records.values() if (since := r.idle_since()) is not None
        ]
        return min(times, default=None)

    async def sweep(self, queued: Iterable[str] = ()) -> None:
        """Stops every live service that is due to (`stop_due`); an idle one that a queued
        job needs (`queued`: service ids) stays, unless Clara.Stop asked."""
        now = self._clock()
        needed = set(queued)
        for record in list(self._records.values()):
            why = stop_due(record, now=now, idle_seconds=self._parts.settings.idle_seconds)
            if why is not None and record.id in needed and not record.stop_requested:
                continue
            if why is not None and record.id not in self._starting:
                await self._stop(record, why)

    async def resync(self) -> None:
        """Re-reads the store (Clara.Stop may have asked for stops on any replica), takes
        stopped jobs off users, and stops idle services whose pipelines are all removed."""
        records = {r.id: r for r in await self._parts.repository.live()}
        for sid in [sid for sid in self._records if sid not in records]:
            self._records.pop(sid)
        self._records.update(records)
        now = self._clock()
        for record in list(self._records.values()):
            gone = [user for user in record.users if await self._parts.job_stopped(user)]
            if gone:
                record = await self._write(record.id, partial(left, job_ids=gone, now=now))
            if record.idle_since() is not None and record.pipelines:
                exists = [await self._parts.pipeline_exists(p) for p in record.pipelines]
                if not any(exists) and record.id not in self._starting:
                    await self._stop(record, "every pipeline that declared it was removed")

    async def adopt(self) -> None:
        """At takeover: keeps the live services the runner still runs (their resources held
        again), records the others as stopped, and stops what runs with no record."""
        runner = self._parts.runner
        running = set(await runner.running()) if runner is not None else set()
        records = await self._parts.repository.live()
        for record in records:
            if record.id in running and record.allocation is not None:
                with contextlib.suppress(Conflict):
                    self._ledger.restore(service_owner(record.id), record.allocation)
                self._records[record.id] = record
                log.info("service.adopted", service_id=record.id, service=record.name)
            else:
                self._records[record.id] = await self._write(
                    record.id,
                    lambda r: replace(
                        r, state=ServiceState.STOPPED, allocation=None, message="not running"
                    ),
                )
        known = {record.id for record in records}
        for sid in running - known:
            assert runner is not None
            log.info("service.orphan_stopped", service_id=sid)
            await runner.stop(sid, grace=self._parts.grace)

    async def _stop(self, record: ServiceRecord, why: str) -> None:
        sid = record.id
        if sid in self._stopping:
            return
        self._stopping[sid] = asyncio.Event()
        try:
            await self._write(sid, lambda r: replace(r, state=ServiceState.STOPPING))
            if self._parts.runner is not None:
                await self._parts.runner.stop(sid, grace=self._parts.grace)
            self._ledger.release(service_owner(sid))
            await self._write(
                sid,
                lambda r: replace(
                    r,
                    state=ServiceState.STOPPED,
                    allocation=None,
                    environment={},
                    mounts=(),
                    message=why,
                    stop_requested=False,
                ),
                event="stopped",
            )
            self._records.pop(sid, None)
            log.info("service.stopped", service_id=sid, service=record.name, why=why)
        finally:
            self._stopping.pop(sid).set()

    async def close(self) -> None:
        """Ends the start tasks in flight (the runner keeps its services)."""
        tasks = list(self._starting.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # Store and events ------------------------------------------------------------------

    async def _write(
        self,
        sid: str,
        change: Callable[[ServiceRecord], ServiceRecord],
        *,
        event: str | None = None,
    ) -> ServiceRecord:
        """`change` of the record `sid`, with the lifecycle `event` (if any) staged in the
        same write and published after it."""
        repository = self._parts.repository
        if event is None:
            record = await repository.modify(sid, change)
        else:
            document = await repository.modify_staged(
                sid, change, partial(service_event, event=event)
            )
            await self._parts.outbox.flush(repository.collection, document)
            record = ServiceRecord.from_document(document)
        if record.state.live:
            self._records[sid] = record
        return record


def service_event(record: ServiceRecord, *, event: str) -> CloudEvent:
    """`service.<event>` for the record as changed."""
    data = {
        "service_id": record.id,
        "name": record.name,
        "image": record.image,
        "tag": record.tag,
        "state": record.state.name,
        "users": list(record.users),
        "address": record.address,
    }
    if record.message:
        data["message"] = record.message
    return make_event(SOURCE, "service", record.id, event, data)


async def stop_all(repository: ServiceRepository) -> int:
    """Clara.Stop's part (any replica): asks the leader to stop every live service; returns
    how many were asked."""
    asked = 0
    for record in await repository.live():
        with contextlib.suppress(NotFound):
            await repository.modify(record.id, lambda r: replace(r, stop_requested=True))
            asked += 1
    return asked
