"""One operator run on the leader, from the guarded start to the recorded end.

The order is what makes crashes harmless:

1. the operator's RUNNING state and new attempt are written with optimistic concurrency
   (`transitions.start_operator`, its `job.operator.started` event staged in the same write)
   BEFORE the executor is asked to start anything, so two schedulers never both start the
   same attempt, and a scheduler that dies right after the write leaves a RUNNING operator
   that the next leader re-runs as attempt + 1;
2. the executor starts the run (a run id it already knows is not started again);
3. the task waits for the run to end, or for the job to stop (cancel, terminate, timeout, a
   failed sibling), in which case the run is stopped: SIGTERM, `grace` seconds, SIGKILL;
4. the end is written (COMPLETED, or FAULTED with the reason) with its event staged in the
   same write, then the staged events are published (`events`; a start's event is published
   while the executor starts the run, and the published events are removed from the job's
   document by its next write, the end's or the next operator's start, rather than by one
   write of their own). A failure stops the job's other runs: nothing new starts after a
   fault, and the job's outcome is known as soon as possible. A completed operator's write
   also starts the operators its end made ready, where the engine would have started them
   (`handoff`): their RUNNING states follow the end in that one write, their events follow
   its event, and their runs start once it is stored (step 1 holds for them as for any).
   An end that leaves its job nothing to run carries the job's finish (SUCCEEDED or FAULTED,
   `job.stopped` staged after the end's event) in the same write, which the engine's pass
   would otherwise have made next (`_Finishing`).

Each write keeps the attempt's timeline (`domain.timeline`): when it became ready and was
admitted at the start, the executor's stage times at the end, from which the operator metrics
and spans are fed (`observations`).

A run the executor no longer knows (LOST) is re-run, up to `MAX_ATTEMPTS` attempts in all.
Cancelling the task (the leader stepping down) abandons the run without recording anything:
the next leader reconciles it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

from structlog.contextvars import bound_contextvars

from aorta.errors import AortaError, Conflict, Unavailable
from aorta.executors import Executor, RunOutcome, RunReason
from aorta.logger import get_logger
from aorta_services.scheduler import observations
from aorta_services.scheduler.active import ActiveJob, RunHandle
from aorta_services.scheduler.domain import Allocation, OperatorStatus, transitions
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.runs import build_run
from aorta_services.scheduler.events import (
    Change,
    JobEvents,
    job_event,
    operator_event,
    staged,
)
from aorta_services.scheduler.handoff import Claim, Handoff
from aorta_services.scheduler.pipeline_services import ServiceKeeper, ServiceParts
from aorta_services.scheduler.repository import JobRepository
from aorta_services.scheduler.settings import SchedulerSettings

log = get_logger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 3
"""Runs of one operator the executor may lose before the operator is FAULTED."""
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 4.0)
"""Seconds between tries of a store write that failed because the store was unavailable."""


@dataclass(frozen=True)
class EngineParts:
    """What the leader's pieces share."""

    repository: JobRepository
    events: JobEvents
    executor: Executor
    settings: SchedulerSettings
    clock: Callable[[], float]
    services: ServiceParts | None = None
    """Where pipeline services run and are recorded; None: jobs declaring one fault."""


def executor_kind(executor: Executor) -> str:
    """`local`, `container` or `kubernetes`: the adapter package `executor` comes from (its
    class name for one from elsewhere, such as a test's)."""
    module, prefix = type(executor).__module__, "aorta.executors."
    if module.startswith(prefix):
        return module.removeprefix(prefix).split(".", 1)[0]
    return type(executor).__name__.lower()


class _Refused(Exception):
    """The guarded start write was refused: the run must not start."""


class _Finishing:
    """An operator's end (`ending`), then the job's finish with its `job.stopped` staged when
    that end leaves the job nothing to run: no other run of the leader's (`handles`), no
    orphan, and an outcome (`transitions.finish` refuses otherwise, and the end is written
    alone). The engine's pass would have written that finish next, in a write of its own; in
    one write the end still comes first, and its event before the job's. `finished` says
    whether the change's last run finished the job."""

    def __init__(
        self, job: ActiveJob, name: str, ending: Change, clock: Callable[[], float]
    ) -> None:
        self._job = job
        self._name = name
        self._ending = ending
        self._clock = clock
        self.finished = False

    def __call__(self, record: JobRecord) -> JobRecord:
        after = self._ending(record)
        self.finished = False
        if self._job.orphans or any(other != self._name for other in self._job.handles):
            return after
        # The job stops when its last operator did.
        now = after.operator(self._name).stopped or self._clock()
        try:
            after = staged(partial(transitions.finish, now=now), job_event("stopped"))(after)
        except Conflict:
            return after
        self.finished = True
        return after


async def with_retries(write: Callable[[], Awaitable[T]]) -> T:
    """`write()`, tried again after `RETRY_DELAYS` while the store is unavailable."""
    for delay in RETRY_DELAYS:
        try:
            return await write()
        except Unavailable as error:
            log.warning("job.store_unavailable", error=str(error), retry_in=delay)
            await asyncio.sleep(delay)
    return await write()


class OperatorRunner:
    """Runs operators of active jobs; `done(job, operator)` is called when a run's task ends."""

    def __init__(
        self,
        parts: EngineParts,
        done: Callable[[ActiveJob, str], None],
        services: ServiceKeeper | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        """`handoff`: where a completed operator claims the operators its end makes ready,
        to start them in the same write (`handoff`); None: the engine's pass starts them."""
        self._parts = parts
        self._done = done
        self._services = services
        self._handoff = handoff

    async def run(
        self,
        job: ActiveJob,
        handle: RunHandle,
        allocation: Allocation,
        *,
        reattach: bool,
        written: JobRecord | None = None,
    ) -> None:
        """Runs (or, with `reattach`, waits for) `handle`'s attempt; never raises but
        `CancelledError`. `written`: the job as stored by the write that started the attempt
        already (its upstream's end, `handoff`). Always calls `done` at the end, so the
        allocation is given back."""
        operator = handle.operator
        trace_id = job.record.trace.trace_id
        context = bound_contextvars(
            job_id=job.id,
            operator=operator,
            attempt=handle.attempt,
            **({"trace_id": trace_id} if trace_id else {}),
        )
        try:
            with context:
                early = None if reattach else await self._start(job, handle, allocation, written)
                outcome = early or await self._wait(job, handle.run_id)
                lost = outcome.reason is RunReason.LOST and not job.stop.is_set()
                if lost and handle.attempt < MAX_ATTEMPTS:
                    log.warning("operator.lost", run_id=handle.run_id)
                    job.orphans.add(operator)
                    return
                await self._finish(job, handle, outcome)
        except _Refused:
            job.orphans.discard(operator)
            await self._refresh(job)
        except AortaError as error:
            # Only a store that stayed unavailable through every retry gets here: the
            # operator stays RUNNING in the store, and the next leader or resync re-runs it.
            log.error("operator.unrecorded", job_id=job.id, operator=operator, error=str(error))
            job.orphans.add(operator)
        finally:
            self._done(job, operator)

    async def _refresh(self, job: ActiveJob) -> None:
        """Replaces the leader's copy of `job` by the store's after a refused start: the copy
        is stale (a cancel that raced the job's admission, say), and the next pass would only
        try the same start again, however often, instead of seeing why."""
        try:
            job.update(await self._parts.repository.get(job.id, hidden=True))
        except AortaError as error:
            log.warning("operator.refresh_failed", job_id=job.id, error=str(error))

    async def _start(
        self,
        job: ActiveJob,
        handle: RunHandle,
        allocation: Allocation,
        written: JobRecord | None,
    ) -> RunOutcome | None:
        """The guarded write (unless `written` holds it), then `executor.start`; the outcome
        when the start failed."""
        parts = self._parts
        if written is None:
            starting = self._starting(handle, allocation)
            try:
                record = await with_retries(
                    lambda: parts.events.modify(job.id, starting, known=job.record)
                )
            except Conflict as refused:
                log.info("operator.start_refused", reason=str(refused))
                raise _Refused from refused
            job.update(record)
        else:
            record = written  # its events are published by the upstream's runner
        job.orphans.discard(handle.operator)
        log.info("operator.started", run_id=handle.run_id)
        if written is not None:
            return await self._launch(job, handle, allocation, record)
        # The RUNNING write is stored, which is all the start must wait for: its event is
        # published while the executor starts the run, and left staged for the end's write.
        publishing = asyncio.ensure_future(parts.events.flush(record, later=True))
        try:
            outcome = await self._launch(job, handle, allocation, record)
        except BaseException:
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
            raise
        await publishing
        return outcome

    def _starting(self, handle: RunHandle, allocation: Allocation) -> Change:
        """The change that starts `handle`'s attempt with `allocation`, its event staged."""
        parts = self._parts

        def started(record: JobRecord) -> JobRecord:
            return transitions.start_operator(
                record,
                handle.operator,
                attempt=handle.attempt,
                run_id=handle.run_id,
                allocation=allocation,
                now=parts.clock(),
                executor=executor_kind(parts.executor),
            )

        return staged(
            started, operator_event(handle.operator, "started", status=OperatorStatus.RUNNING)
        )

    def _claims(self, job: ActiveJob, name: str, finished: Change) -> list[Claim]:
        """What the completed operator `name` hands its place to (`handoff`)."""
        if self._handoff is None:
            return []
        try:
            after = finished(job.record)
        except Conflict:
            return []  # the leader's copy is stale: the write finds out, and the pass decides
        return self._handoff.claim(job, name, after)

    def _settle(self, job: ActiveJob, claims: list[Claim], record: JobRecord | None) -> None:
        if self._handoff is not None and claims:
            self._handoff.settle(job, claims, record)

    def _with_starts(self, ending: Change, claims: list[Claim]) -> Change:
        """`ending`, then the start of each claim that the job as ended allows; a start it
        refuses is left out of the write, and its claim given back after it."""
        if not claims:
            return ending
        starts = [self._starting(claim.handle, claim.allocation) for claim in claims]

        def changed(record: JobRecord) -> JobRecord:
            after = ending(record)
            for start in starts:
                with contextlib.suppress(Conflict):
                    after = start(after)
            return after

        return changed

    async def _launch(
        self, job: ActiveJob, handle: RunHandle, allocation: Allocation, record: JobRecord
    ) -> RunOutcome | None:
        """`executor.start` of the run built from `record`; the outcome when it failed."""
        parts = self._parts
        if job.pipeline is None:
            message = "the job's definition could not be loaded"
            return RunOutcome(handle.run_id, RunReason.START_FAILED, message=message)
        try:
            run = build_run(
                record,
                job.pipeline,
                handle.operator,
                attempt=handle.attempt,
                allocation=allocation,
            )
            if self._services is not None:
                # The operator's services, started again if they went away since admission.
                environment, mounts = await self._services.connect(
                    job.id, record.pipeline_id, job.pipeline, handle.operator
                )
                if environment or mounts:
                    run = replace(
                        run,
                        environment={**run.environment, **environment},
                        service_mounts=mounts,
                    )
            await parts.executor.start(run)
        except AortaError as error:
            message = "; ".join(error.messages)
            return RunOutcome(handle.run_id, RunReason.START_FAILED, message=message)
        return None

    async def _wait(self, job: ActiveJob, run_id: str) -> RunOutcome:
        """The run's outcome; when the job stops first, the run is stopped and then awaited."""
        executor = self._parts.executor
        ended = asyncio.create_task(executor.wait(run_id), name=f"aorta.scheduler.wait.{run_id}")
        stopping = asyncio.create_task(job.stop.wait(), name=f"aorta.scheduler.stop.{run_id}")
        try:
            await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not ended.done():
                log.info("operator.stopping", run_id=run_id, why=job.stop_reason)
                await executor.cancel(run_id, grace=self._parts.settings.grace)
            return await ended
        finally:
            for task in (ended, stopping):
                task.cancel()
            await asyncio.gather(ended, stopping, return_exceptions=True)

    async def _finish(self, job: ActiveJob, handle: RunHandle, outcome: RunOutcome) -> None:
        parts = self._parts
        name = handle.operator
        if outcome.succeeded:
            reason = ""
        elif outcome.reason is RunReason.CANCELLED and job.stop.is_set():
            reason = f"operator {name!r} was stopped: {job.stop_reason}"
        else:
            timeout = job.record.operator(name).timeout
            reason = transitions.failure_reason(name, outcome, timeout)

        def finished(record: JobRecord) -> JobRecord:
            return transitions.finish_operator(
                record,
                name,
                attempt=handle.attempt,
                outcome=outcome,
                reason=reason,
                now=parts.clock(),
            )

        status = OperatorStatus.COMPLETED if outcome.succeeded else OperatorStatus.FAULTED
        stopped = operator_event(
            name, "stopped", status=status, exit_code=outcome.exit_code, reason=reason
        )
        claims = self._claims(job, name, finished) if outcome.succeeded else []
        ending = staged(finished, stopped)
        finishing = None if claims else _Finishing(job, name, ending, parts.clock)
        change = finishing or self._with_starts(ending, claims)
        try:
            record = await with_retries(
                lambda: parts.events.modify(job.id, change, known=job.record)
            )
        except BaseException as error:
            self._settle(job, claims, None)
            if not isinstance(error, Conflict):
                raise
            log.warning("operator.end_refused", reason=str(error))
            return
        job.update(record)
        self._settle(job, claims, record)
        log.info("operator.stopped", status=status.name, exit_code=outcome.exit_code, reason=reason)
        observations.operator_ended(record, name, handle.attempt)
        if finishing is not None and finishing.finished:
            log.info("job.stopped", status=record.phase.status.name)
        # The job's next write removes this end's event (and the job's `stopped` when this
        # write finished the job): the next operator's RUNNING, or the job's release.
        await parts.events.flush(record, later=True)
        if not outcome.succeeded:
            job.halt(f"operator {name!r} failed")
