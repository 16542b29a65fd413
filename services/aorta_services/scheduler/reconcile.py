"""How a new leader (or a leader finding a job it does not run) takes over: level-triggered.

It compares what the store says with what the executor knows now (`executor.running()`: its
live runs, and the ended ones whose outcome it recorded):

- the queue's rotation continues from the job admitted last (its stored `rotation`); the
  queue itself is rebuilt by the first pass from the stored queued jobs and their enqueue
  times;
- an operator RUNNING in the store whose run the executor still runs keeps running: its
  allocation is restored in the ledger and the leader waits for it (`wait`) like for its own;
- an operator RUNNING in the store whose run is gone (the local executor's processes die with
  the scheduler that started them) is re-run as attempt + 1 once the node has room, so it
  never runs twice at once; COMPLETED operators stay completed: their outputs are stored;
- a stopped job whose runs still run is adopted so those runs are stopped and recorded;
  one with nothing running is released;
- a live run that no job claims is stopped; an ended one no job claims is only an old record
  (the executor keeps them for a day: thousands on a busy platform), counted in the
  `scheduler.reconciled` line, never stopped;
- events still pending in job documents (`events`) are published.

Jobs whose `Jobs.Create` never finished (hidden) are removed once they are an hour old, together
with any payload made for them (`PAYLOADS_DISCARD_FOR_JOB`), at takeover and then every ten
minutes from the leader's resync; one whose payload cannot be discarded now stays hidden for
the next sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, MutableMapping
from typing import Any

from aorta.errors import AortaError, Conflict, Invalid
from aorta.executors import KnownRuns
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta_services.scheduler.active import ActiveJob, RunHandle, owner
from aorta_services.scheduler.domain import JobPhase, ResourceLedger
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.operator_runs import EngineParts, OperatorRunner
from aorta_services.scheduler.peers import Peers

log = get_logger(__name__)

RETRY = 1.0
"""Seconds between tries of a reconciliation the store or the executor did not answer."""
ABANDONED_CREATION_AGE = 3600.0
"""Seconds after which a job whose creation never finished is removed."""
ABANDONED_SWEEP_INTERVAL = 600.0
"""Seconds between a leader's sweeps of such jobs, after the one at its takeover."""

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]
Fault = Callable[[JobRecord, str], Awaitable[JobRecord | None]]


class Reconciler:
    """Rebuilds the leader's view from the store and the executor (module docstring)."""

    def __init__(
        self,
        parts: EngineParts,
        ledger: ResourceLedger,
        runner: OperatorRunner,
        spawn: Spawn,
        fault: Fault,
        peers: Peers,
    ) -> None:
        self._parts = parts
        self._ledger = ledger
        self._runner = runner
        self._spawn = spawn
        self._fault = fault
        self._peers = peers
        self._next_sweep = 0.0

    async def reconcile(
        self,
        active: MutableMapping[JobId, ActiveJob],
        rotation: Callable[[int], None],
        clean: Callable[[JobRecord], None],
    ) -> None:
        """The takeover of a new leader; retried until the store and executor answer."""
        while True:
            try:
                await self._reconcile(active, rotation, clean)
                return
            except Exception as error:
                # A guard, as for the passes: the leader retries rather than never leading.
                if isinstance(error, AortaError):
                    log.warning("scheduler.reconcile_failed", error=str(error))
                else:
                    log.exception("scheduler.reconcile_crashed")
                await asyncio.sleep(RETRY)

    async def _reconcile(
        self,
        active: MutableMapping[JobId, ActiveJob],
        rotation: Callable[[int], None],
        clean: Callable[[JobRecord], None],
    ) -> None:
        repository = self._parts.repository
        # Events a writer stored but never published (it died, or the bus was down) go out
        # first, in the order they were staged.
        await self._parts.events.replay()
        last = await repository.last_admitted()
        if last is not None and last.rotation is not None:
            rotation(last.rotation)
        records = [
            *await repository.in_phase(JobPhase.RUNNING),
            *await repository.unreleased(),
        ]
        # Listed even with no job to take over: a live run no job claims is stopped all the same.
        known = await self._parts.executor.running()
        await self._take_over(records, active, clean, known)
        claimed = {
            record.operator(name).run_id
            for record in records
            for name in record.job_progress().running()
        }
        strays = sorted(set(known.live) - claimed)
        for stray in strays:
            log.warning("scheduler.stray_run", run_id=stray)
            self._spawn(self._stop_run(stray), f"aorta.scheduler.stray.{stray}")
        await self.sweep_abandoned_creations(force=True)
        log.info(
            "scheduler.reconciled",
            jobs=len(active),
            live=len(known.live),
            ended=len(known.ended),
            claimed=len(claimed),
            strays=len(strays),
        )

    async def sweep_abandoned_creations(self, *, force: bool = False) -> None:
        """Removes the jobs whose `Jobs.Create` never finished, once `ABANDONED_CREATION_AGE`
        old, with their payloads: at takeover (`force`), then at most every
        `ABANDONED_SWEEP_INTERVAL` seconds, so one kept for a later sweep does not wait for the
        next change of leader."""
        now = self._parts.clock()
        if not force and now < self._next_sweep:
            return
        self._next_sweep = now + ABANDONED_SWEEP_INTERVAL
        cutoff = now - ABANDONED_CREATION_AGE
        for record in await self._parts.repository.abandoned_creations(cutoff):
            await self._remove_abandoned(record)

    async def _remove_abandoned(self, record: JobRecord) -> None:
        """Removes a job whose `Jobs.Create` never finished, and the payload made for it if
        there is one. A payload that cannot be discarded now keeps the job, hidden: removing
        it would lose the only trace of the payload, and the next sweep tries again."""
        try:
            payload_id = await self._peers.discard_payload(record.id)
        except AortaError as error:
            log.warning("job.payload_discard_failed", job_id=record.id, error=str(error))
            return
        log.warning("job.creation_abandoned", job_id=record.id, payload_id=payload_id)
        await self._parts.repository.remove(record.id)

    async def take_over(
        self,
        records: Iterable[JobRecord],
        active: MutableMapping[JobId, ActiveJob],
        clean: Callable[[JobRecord], None],
    ) -> None:
        """Adopts each job of `records` that is RUNNING or still has RUNNING operators, and
        cleans up the others (stopped, nothing running); asks the executor what it knows only
        when one of them is not active yet."""
        if any(record.id not in active for record in records):
            known = await self._parts.executor.running()
            await self._take_over(records, active, clean, known)

    async def _take_over(
        self,
        records: Iterable[JobRecord],
        active: MutableMapping[JobId, ActiveJob],
        clean: Callable[[JobRecord], None],
        known: KnownRuns,
    ) -> None:
        for record in records:
            if record.id in active:
                continue
            if record.phase is JobPhase.RUNNING or record.job_progress().running():
                await self._adopt(record, active, known)
            else:
                clean(record)

    async def _adopt(
        self, record: JobRecord, active: MutableMapping[JobId, ActiveJob], known: KnownRuns
    ) -> None:
        parts = self._parts
        pipeline = None
        if record.phase is JobPhase.RUNNING:
            try:
                definition = await parts.repository.definition(record.id)
                pipeline = definition.resolved(record.variables)
            except Invalid as error:
                why = "; ".join(error.messages)
                faulted = await self._fault(
                    record, f"the job's definition can no longer be resolved: {why}"
                )
                if faulted is None:
                    return
                record = faulted
        started = record.started if record.started is not None else parts.clock()
        job = ActiveJob(record, pipeline, deadline=started + record.timeout + parts.settings.grace)
        job.update(record)
        for name in record.job_progress().running():
            operator = record.operator(name)
            # An ended run is waited for too: `wait` answers its recorded outcome.
            if operator.run_id not in known or operator.allocation is None:
                job.orphans.add(name)
                continue
            try:
                self._ledger.restore(owner(record.id, name), operator.allocation)
            except Conflict as clash:
                log.error("operator.allocation_clash", job_id=record.id, error=str(clash))
            handle = RunHandle(name, operator.attempt, operator.run_id)
            job.handles[name] = handle
            log.info("operator.reattached", job_id=record.id, operator=name, run_id=handle.run_id)
            handle.task = self._spawn(
                self._runner.run(job, handle, operator.allocation, reattach=True),
                f"aorta.scheduler.run.{handle.run_id}",
            )
        active[record.id] = job
        log.info(
            "job.adopted", job_id=record.id, phase=record.phase.value, orphans=len(job.orphans)
        )

    async def _stop_run(self, run_id: str) -> None:
        try:
            await self._parts.executor.cancel(run_id, grace=self._parts.settings.grace)
        except AortaError as error:
            log.warning("scheduler.stray_run_not_stopped", run_id=run_id, error=str(error))
