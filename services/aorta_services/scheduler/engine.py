"""The leader's scheduler: admits queued jobs and runs their operators, level-triggered.

One `Engine` exists per replica while it holds the lease. Its main task runs *passes*; a pass
is woken by any change (a replica's nudge after Start, Cancel or Clara.Stop; a run that
ended; an admission that finished) and at least every `resync` seconds, and it:

1. (when asked to, and periodically) re-reads the store: queued jobs into the `JobQueue`,
   RUNNING jobs it does not run yet adopted (see `reconcile`), stopped jobs that still hold
   runs halted, stopped jobs not yet released cleaned up, events still pending in job
   documents published (`events`);
2. terminates RUNNING jobs past their deadline (job timeout + grace);
3. finishes jobs whose runs all ended: RUNNING -> SUCCEEDED / FAULTED, then releases their
   payload lock and Triton server (`release`; steps 2 and 3 are `finishing`);
4. starts every ready operator of every running job that fits the node now (each operator
   allocates its own request; the others wait PENDING), oldest job first; an operator that
   completes while no other job waits for room starts the operators it made ready itself, in
   the write of its end (`handoff`), without waiting for a pass;
5. admits queued jobs while the queue offers one whose most demanding operator fits: the peak
   is reserved at once, so the next choice sees it taken, and the job is admitted in a task
   (`admission`: Triton acquisition, the RUNNING write, the `job.started` event).
6. works out why each job still queued, and each ready operator that did not start, waits,
   and stores the reasons that changed (`waits`).

Everything the pass decides is written to the store first (optimistic concurrency, each
event staged in the same write) and then published; the in-memory queue, ledger and run
handles are only a cache of the store plus what the executor runs, which is why a new leader
can rebuild them (`reconcile`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from structlog.contextvars import bound_contextvars

from aorta.errors import AortaError, Conflict, Invalid
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta.tasks import GuardedTasks
from aorta_services.scheduler.active import ActiveJob, RunHandle, admission_owner, owner
from aorta_services.scheduler.admission import Admission, admitted_job
from aorta_services.scheduler.domain import (
    JobPhase,
    JobQueue,
    Request,
    ResourceLedger,
    job_peak_request,
    transitions,
)
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.runs import run_id
from aorta_services.scheduler.events import job_event, staged
from aorta_services.scheduler.finishing import JobFinishing
from aorta_services.scheduler.handoff import Claim, Handoff
from aorta_services.scheduler.operator_runs import EngineParts, OperatorRunner
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.pipeline_services import ServiceKeeper
from aorta_services.scheduler.reconcile import Reconciler
from aorta_services.scheduler.release import Releaser
from aorta_services.scheduler.service_admission import ServiceAdmission
from aorta_services.scheduler.waits import WaitRecorder

log = get_logger(__name__)

PASS_RETRY = 0.5
"""Seconds to wait after a pass failed (the store was unavailable) before the next one."""

BUSY_RESYNC_SPACING = 5
"""A leader whose passes keep being woken resyncs every this many resync periods: each
resync reads every queued job, which every 2 s cost more than the hand-offs saved
(docs/performance.md); an idle leader resyncs every period."""


class Engine:
    """See the module docstring. `start` returns at once; `stop` ends every task it made."""

    def __init__(self, parts: EngineParts, peers: Peers) -> None:
        settings = parts.settings
        self._parts = parts
        self._peers = peers
        self._queue = JobQueue(
            settings.weights,
            aging_seconds=settings.aging,
            hold_after_seconds=settings.hold_after,
        )
        self._ledger = ResourceLedger(settings.capacity)
        self._peaks: dict[JobId, Request] = {}
        self.active: dict[JobId, ActiveJob] = {}
        self._admitting: set[JobId] = set()
        self._admitted: list[tuple[JobId, ActiveJob | None]] = []
        self._tasks = GuardedTasks("aorta.scheduler")
        self._wake = asyncio.Event()
        self._resync = True
        self._resync_due = 0.0
        self.resyncs_begun = 0
        """How many resyncs began (`queued`)."""
        self._handed: list[tuple[JobRecord, int, int]] = []
        self._main: asyncio.Task[None] | None = None
        keeper = (
            ServiceKeeper(parts.services, self._ledger, parts.clock)
            if parts.services is not None
            else None
        )
        self._services = ServiceAdmission(keeper, self._ledger, parts.repository, self.spawn)
        self._waits = WaitRecorder(parts.events, self.spawn)
        self._admission = Admission(parts, peers, self._ledger, self._services, self._fault)
        handoff = Handoff(self._ledger, self.active, self._launch_claimed, self.poke)
        self._runner = OperatorRunner(parts, self._run_done, keeper, handoff)
        self._releaser = Releaser(parts.events, peers, self.spawn)
        self._finishing = JobFinishing(
            parts, self.active, self._releaser, self._services, self._resync_next
        )
        self._reconciler = Reconciler(
            parts, self._ledger, self._runner, self.spawn, self._fault, peers
        )

    async def start(self) -> None:
        """Starts the main task: reconcile with the store and the executor, then passes."""
        self._main = asyncio.create_task(self._run(), name="aorta.scheduler.engine")

    def poke(self, *, resync: bool = False) -> None:
        """Runs a pass soon; with `resync`, one that re-reads the store first."""
        if resync:
            self._resync = True
        self._wake.set()

    def queued(self, record: JobRecord, *, resyncs_begun: int) -> None:
        """A job this replica's Start queued, as written: taken into the queue by the next
        pass instead of asking it for a resync, which would read every queued job.

        `resyncs_begun` is the count read before the write began. The record is taken only
        when no resync began since: one that began after the hand-off read the job as stored
        then (queued, or canceled since) and the record is dropped; one that began during the
        write may have read the job before it was queued, so another resync is asked for. A
        record taken stale (a Cancel whose resync is still to come) is what a resync's read
        can be too: that resync takes it out, and its admission's conditional write refuses.
        """
        self._handed.append((record, resyncs_begun, self.resyncs_begun))
        self._wake.set()

    def _resync_next(self) -> None:
        """Has the next pass, whenever it runs, re-read the store first."""
        self._resync = True

    def run_id_of(self, job_id: str, operator: str) -> str | None:
        """The run this leader watches for one operator of one job, if any."""
        job = self.active.get(JobId(job_id))
        handle = job.handles.get(operator) if job is not None else None
        return handle.run_id if handle is not None else None

    async def stop(self, *, kill_runs: bool) -> None:
        """Ends the main task and every run task. With `kill_runs` (the lease was lost, so
        another leader may start these operators) the runs are stopped too, with a grace
        short enough to end before the lease could pass to another replica."""
        if self._main is not None:
            self._main.cancel()
            await asyncio.gather(self._main, return_exceptions=True)
        runs = [h.run_id for job in self.active.values() for h in job.handles.values()]
        # The run tasks go first: a run killed below must not be recorded as failed, since
        # the next leader runs it again.
        await self._tasks.cancel()
        await self._services.close()
        if kill_runs:
            settings = self._parts.settings
            grace = min(settings.grace, settings.lease_ttl / 6)
            await asyncio.gather(
                *(self._parts.executor.cancel(run, grace=grace) for run in runs),
                return_exceptions=True,
            )

    def spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task the engine keeps a reference to, cancels on stop, and logs if it fails."""
        return self._tasks.spawn(coroutine, name)

    async def _run(self) -> None:
        await self._services.takeover()
        await self._reconciler.reconcile(
            self.active, self._queue_with_rotation, self._releaser.release
        )
        while True:
            clock = self._parts.clock
            wait = max(
                0.0,
                min(
                    [self._parts.settings.resync]
                    + [job.deadline - clock() for job in self.active.values()]
                    + [when - clock() for when in self._services.deadlines()]
                ),
            )
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as the wait ends, and this loop would then never stop.
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                self._resync = True
            self._wake.clear()
            try:
                await self._pass()
            except Exception as error:
                # A guard: a failed pass must never end the leader's loop, or no job would
                # move again; the next pass re-reads the store and carries on.
                if isinstance(error, AortaError):
                    log.warning("scheduler.pass_failed", error=str(error))
                else:
                    log.exception("scheduler.pass_crashed")
                self._resync = True
                await asyncio.sleep(PASS_RETRY)

    def _queue_with_rotation(self, rotation: int) -> None:
        settings = self._parts.settings
        with contextlib.suppress(Invalid):
            self._queue = JobQueue(
                settings.weights,
                aging_seconds=settings.aging,
                hold_after_seconds=settings.hold_after,
                rotation=rotation,
            )

    async def _pass(self) -> None:
        if self._resync or self._parts.clock() >= self._resync_due:
            self._resync = False
            await self._resync_store()
        await self._take_handed()
        self._take_admitted()
        now = self._parts.clock()
        await self._finishing.enforce_deadlines(now)
        await self._finishing.finish_jobs()
        await self._services.sweep()
        await self._launch_ready()
        self._admit_queued(now)
        self._waits.refresh(
            self._queue, self._ledger, self._peaks, self.active, now, self._services.waits()
        )

    async def _resync_store(self) -> None:
        self.resyncs_begun += 1
        spacing = self._parts.settings.resync * BUSY_RESYNC_SPACING
        self._resync_due = self._parts.clock() + spacing
        repository = self._parts.repository
        queued = await repository.in_phase(JobPhase.QUEUED)
        self._waits.remember(queued)
        present = {record.id for record in queued}
        for record in queued:
            await self._enqueue(record)
        for job_id in [job_id for job_id in self._peaks if job_id not in present]:
            self._queue.remove(job_id)
            del self._peaks[job_id]
            self._services.forget(job_id)
        running = await repository.in_phase(JobPhase.RUNNING)
        unreleased = await repository.unreleased()
        strangers = []
        for record in (*running, *unreleased):
            job = self.active.get(record.id)
            if job is not None:
                job.update(record)
            elif record.id not in self._admitting and record.id not in self._releaser.busy:
                strangers.append(record)
        await self._reconciler.take_over(strangers, self.active, self._releaser.release)
        await self._reconciler.sweep_abandoned_creations()
        await self._parts.events.replay()
        await self._services.resync()

    async def _enqueue(self, record: JobRecord) -> None:
        """Takes a queued job into the queue, unless it is there, being admitted or running
        already (a hand-off may come after a resync took the job); faults it instead when it
        could never run on this node."""
        if record.id in self._peaks or record.id in self._admitting or record.id in self.active:
            return
        reasons = [self._ledger.never_fits(op.request, op.name) for op in record.operators]
        if any(reasons):
            why = "; ".join(reason for reason in reasons if reason)
            await self._fault(record, f"the job can never run on this node: {why}")
            return
        peak = job_peak_request(op.request for op in record.operators)
        impossible = await self._services.learn(record, peak)
        if impossible is not None:
            await self._fault(record, f"the job can never run on this node: {impossible}")
            return
        self._queue.push(record.id, record.priority, record.enqueued or record.created)
        self._peaks[record.id] = peak

    async def _take_handed(self) -> None:
        """Takes the jobs handed over by `queued` into the queue (see there)."""
        handed, self._handed = self._handed, []
        for record, before, at in handed:
            if self.resyncs_begun == before:
                self._waits.keep(record)
                await self._enqueue(record)
            elif self.resyncs_begun == at:
                # A resync began while Start wrote the job: it may have read it before.
                self.poke(resync=True)

    def _take_admitted(self) -> None:
        admitted, self._admitted = self._admitted, []
        if admitted:
            self._services.admissions_done()
        for job_id, job in admitted:
            self._ledger.release(admission_owner(job_id))
            self._admitting.discard(job_id)
            if job is not None:
                self.active[job_id] = job
            else:
                self._resync = True

    async def _launch_ready(self) -> None:
        for job in list(self.active.values()):
            for name in job.launchable():
                request = job.record.operator(name).request
                if not self._ledger.fits(request):
                    reason = self._ledger.never_fits(request, name)
                    if reason is not None:
                        await self._fault(job.record, reason)
                        break
                    continue
                allocation = self._ledger.allocate(owner(job.id, name), request)
                attempt = job.record.operator(name).attempt + 1
                handle = RunHandle(name, attempt, run_id(job.id, name, attempt))
                job.handles[name] = handle
                handle.task = self.spawn(
                    self._runner.run(job, handle, allocation, reattach=False),
                    name=f"aorta.scheduler.run.{handle.run_id}",
                )

    def _launch_claimed(self, job: ActiveJob, claim: Claim, record: JobRecord) -> None:
        """Runs a claim whose start its upstream's end wrote (`handoff`)."""
        handle = claim.handle
        handle.task = self.spawn(
            self._runner.run(job, handle, claim.allocation, reattach=False, written=record),
            name=f"aorta.scheduler.run.{handle.run_id}",
        )

    def _admit_queued(self, now: float) -> None:
        while True:
            chosen = self._queue.choose(
                now, lambda job_id: self._services.fits(job_id, self._peaks[job_id])
            )
            if chosen is None:
                return
            self._services.admit(chosen)
            self._ledger.allocate(admission_owner(chosen), self._peaks.pop(chosen))
            self._admitting.add(chosen)
            rotation = self._queue.rotation
            self.spawn(self._admit(chosen, rotation), name=f"aorta.scheduler.admit.{chosen}")

    async def _admit(self, job_id: JobId, rotation: int) -> None:
        """Acquires the job's Triton server if it lists models, then writes it RUNNING.

        A definition that no longer resolves, or models no Triton server can be had for,
        fault the job with the reason; a store error leaves it queued for the next pass.
        """
        admitted: ActiveJob | None = None
        try:
            with bound_contextvars(job_id=job_id):
                admitted = await admitted_job(self._admission, job_id, rotation)
        except Conflict:
            log.info("job.admission_refused", job_id=job_id)
        except AortaError as error:
            log.warning("job.admission_failed", job_id=job_id, error=str(error))
        finally:
            self._admitted.append((job_id, admitted))
            self.poke()

    async def _fault(self, record: JobRecord, reason: str) -> JobRecord | None:
        """Faults a queued or running job with `reason`; None when it had stopped already."""
        now = self._parts.clock()
        try:
            faulted = await self._parts.repository.modify(
                record.id,
                staged(lambda r: transitions.fault(r, reason, now=now), job_event("stopped")),
            )
        except Conflict:
            self._resync = True
            return None
        job = self.active.get(record.id)
        if job is not None:
            job.update(faulted)
        self._services.job_ended(record.id)
        log.info("job.faulted", job_id=record.id, reason=reason)
        await self._parts.events.flush(faulted)
        return faulted

    def _run_done(self, job: ActiveJob, operator: str) -> None:
        self._ledger.release(owner(job.id, operator))
        job.handles.pop(operator, None)
        self.poke()
