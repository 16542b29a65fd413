"""The commands: Jobs.Create, Start, Cancel, and Clara.Stop's `platform_stop`; any replica.

A job records the subject that created it (`owner`), and so does its PIPELINE payload; Start
and Cancel are the owner's or an admin's (`aorta.auth.ownership`), and Create with REUSABLE
input payloads needs the caller to own them (the payloads service checks, the caller passed
on in the request).

Every command checks the whole request first, writes the job with optimistic concurrency (its
event staged in the same write, see `events`), and only then publishes the event and nudges the
leader (`notify`), which does the rest: admits queued jobs, stops the runs of canceled or
terminated ones, releases what stopped jobs held.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from functools import partial
from typing import Any

from aorta import contracts
from aorta.auth.ownership import check_owner
from aorta.auth.principal import current_principal
from aorta.bus import Request
from aorta.errors import AortaError, Conflict, Forbidden, Invalid, NotFound
from aorta.ids import JobId, PayloadId, new_id
from aorta.logger import get_logger
from aorta.observability import tracing
from aorta_services.scheduler import observations
from aorta_services.scheduler.domain import (
    JobEvent,
    JobPhase,
    ResourceLedger,
    answers,
    next_phase,
    requests,
    transitions,
)
from aorta_services.scheduler.domain.definition import (
    Definition,
    job_timeout,
    models_of,
    operator_records,
    progress_of,
)
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.runs import check_runnable
from aorta_services.scheduler.domain.timeline import JobTrace
from aorta_services.scheduler.events import JobEvents, job_event, staged
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.repository import JobRepository
from aorta_services.scheduler.settings import SchedulerSettings

log = get_logger(__name__)

STOP_REASON = "the platform was stopped (Clara.Stop)"


async def _run_to_the_end(cleanup: Coroutine[Any, Any, None], name: str) -> None:
    """Runs `cleanup` (as a task named `name`) to its end even when the caller is cancelled
    meanwhile, however often, then raises `CancelledError` if it was: a cleanup cut short
    would leave behind what it was removing, and a cancellation must not be swallowed."""
    task = asyncio.create_task(cleanup, name=name)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


class JobCommands:
    """Create, Start, Cancel and platform_stop over one repository."""

    def __init__(
        self,
        repository: JobRepository,
        peers: Peers,
        events: JobEvents,
        settings: SchedulerSettings,
        notify: Callable[[], Awaitable[None]],
        *,
        clock: Callable[[], float] = time.time,
        leads: Callable[[], bool] = lambda: False,
        queueing: Callable[[], Callable[[JobRecord], Awaitable[None]]] | None = None,
    ) -> None:
        """`leads`: whether this replica leads now, so that the leader's next write of a job
        it queued may remove the published `job.queued` (`JobEvents.flush`'s `later`).
        `queueing`: called before Start's write, the notice that tells the leader about the
        job queued (`start_handoff`); without it, Start nudges (`notify`) as the others do."""
        self._repository = repository
        self._peers = peers
        self._events = events
        self._settings = settings
        self._notify = notify
        self._clock = clock
        self._leads = leads
        self._queueing = queueing

    async def create(self, request: Request) -> bytes:
        """Jobs.Create: the pipeline must exist; the job gets its own PIPELINE payload.

        The job and its frozen definition are stored hidden first, then the payload is made,
        then the job is revealed with the payload's id. A failure or a cancellation on the way
        undoes the creation (`_abandon`: the payload, then the job) before the error goes on,
        so nothing half-made is ever listed and the payload made for the job goes with it.
        """
        command = requests.parse_create(request.data)
        snapshot = await self._peers.pipeline_snapshot(command.pipeline_id)
        files = tuple((file.path, file.content) for file in snapshot.files)
        definition = Definition(root=snapshot.root, files=files)
        pipeline = definition.pipeline()
        job_id = JobId(new_id())
        record = JobRecord(
            id=job_id,
            name=command.name,
            pipeline_id=snapshot.pipeline_id,
            pipeline_name=snapshot.name,
            payload_id=PayloadId(""),
            priority=command.priority,
            phase=JobPhase.CREATED,
            created=self._clock(),
            progress=progress_of(pipeline).to_document(),
            operators=operator_records(
                pipeline,
                default_timeout=self._settings.default_timeout,
                max_timeout=self._settings.max_timeout,
            ),
            visible=False,
            metadata=command.metadata,
            released=True,
            owner=current_principal().subject,
        )
        await self._repository.insert(record, definition)
        made: PayloadId | None = None
        try:
            payload_id = made = await self._peers.create_payload(
                job_id, command.input_payloads, record.owner
            )
            record = await self._repository.modify(
                job_id,
                staged(
                    lambda r: replace(r, payload_id=payload_id, visible=True),
                    job_event("created"),
                ),
                hidden=True,
            )
        except BaseException as error:
            # The payloads service answers a refusal only when it made nothing (it stores a
            # payload whole or not at all); a timeout or a cancellation leaves that unknown.
            refused = made is None and isinstance(error, (Invalid, NotFound, Conflict, Forbidden))
            await _run_to_the_end(
                self._abandon(job_id, made, refused=refused), f"aorta.scheduler.abandon.{job_id}"
            )
            raise
        log.info(
            "job.created", job_id=job_id, pipeline_id=record.pipeline_id, payload_id=payload_id
        )
        await self._events.flush(record)
        return answers.created(job_id, payload_id)

    async def _abandon(self, job_id: JobId, payload_id: PayloadId | None, *, refused: bool) -> None:
        """Undoes a Create that failed after its job was stored hidden: discards the payload
        made for the job, then removes the job. Store and bus errors are logged, not raised:
        the error that made the Create fail is the one its caller must hear.

        Unless the payloads service `refused` to make the payload, it is asked for by job even
        when `payload_id` is None: the answer naming it may be what was lost (a timeout, a
        cancellation). The hidden job stays, so that a leader's sweep of abandoned creations
        (`reconcile`) discards both later, when the payload cannot be discarded now, and when
        none was found although one may still be in the making; removing the job would lose
        the only trace of the payload.
        """
        if not refused:
            try:
                discarded = await self._peers.discard_payload(job_id)
            except AortaError as error:
                log.warning(
                    "job.payload_discard_failed",
                    job_id=job_id,
                    payload_id=payload_id,
                    error=str(error),
                )
                return
            if discarded is None and payload_id is None:
                log.info("job.payload_unknown_kept_for_sweep", job_id=job_id)
                return
        try:
            await self._repository.remove(job_id)
        except AortaError as error:
            # Hidden, and without a payload now: the leader's sweep removes it.
            log.warning("job.removal_failed", job_id=job_id, error=str(error))

    async def start(self, request: Request) -> bytes:
        """Jobs.Start: resolves the variables, locks the payload and queues the job.

        Refused without any change when the job is not a created one (JOB_STATE_CONFLICT) or
        the variables do not resolve the pipeline (JOB_VARIABLES_INVALID): the job stays
        startable. A job whose operators could never fit this node is FAULTED at once.
        """
        command = requests.parse_start(request.data)
        job_id = command.job_id
        record = await self._repository.get(job_id)
        check_owner(record.owner, f"job {job_id}")
        next_phase(record.phase, JobEvent.START, job_id=job_id)
        pipeline = (await self._repository.definition(job_id)).resolved(command.variables)
        check_runnable(pipeline)
        settings = self._settings
        operators = operator_records(
            pipeline, default_timeout=settings.default_timeout, max_timeout=settings.max_timeout
        )
        now = self._clock()
        trace = _call_trace()

        def queued(current: JobRecord) -> JobRecord:
            return transitions.queue(
                current,
                variables=command.variables,
                operators=operators,
                progress=progress_of(pipeline).to_document(),
                models=models_of(pipeline),
                timeout=job_timeout(
                    pipeline, default=settings.default_timeout, maximum=settings.max_timeout
                ),
                now=now,
                trace=trace,
            )

        probe = ResourceLedger(settings.capacity)
        reasons = [probe.never_fits(op.request, op.name) for op in operators]
        if any(reasons):
            why = "; ".join(reason for reason in reasons if reason)
            unplaceable = staged(
                lambda r: transitions.fault_unplaceable(queued(r), why, now=now),
                job_event("stopped"),
            )
            record = await self._repository.modify(job_id, unplaceable, known=record)
            log.info("job.unplaceable", job_id=job_id, reason=why)
            await self._events.flush(record)
            # It held nothing, so no release feeds its span: fed here, where it stopped.
            observations.job_stopped(record)
            return answers.started(record)
        await self._peers.lock_payload(record.payload_id, job_id)
        notice = self._queueing() if self._queueing is not None else None
        try:
            # From the copy read above: a Start or Cancel that came between only costs a
            # second try on the job read afresh.
            record = await self._repository.modify(
                job_id, staged(queued, job_event("queued")), known=record
            )
        except Conflict:
            await self._unlock_if_stopped(job_id)
            raise
        log.info("job.queued", job_id=job_id, priority=record.priority.name)
        # On the leader, the job's next write (its wait reason or its admission, this
        # replica's) removes the published event: one write of the job fewer.
        await self._events.flush(record, later=self._leads())
        if notice is not None:
            await notice(record)
        else:
            await self._notify()
        return answers.started(record)

    async def _unlock_if_stopped(self, job_id: JobId) -> None:
        """After losing the queueing race: if a Cancel won (not another Start, whose lock this
        is as well), give back the lock taken here, which nothing else would release."""
        try:
            current = await self._repository.get(job_id)
            if current.phase.stopped and current.enqueued is None:
                await self._peers.release_payload(current.payload_id, job_id)
        except AortaError as error:
            log.warning("job.unlock_failed", job_id=job_id, error=str(error))

    async def cancel(self, request: Request) -> bytes:
        """Jobs.Cancel: a created, queued or running job is STOPPED/CANCELED at once, the
        reason in its messages; the leader stops its running operators (SIGTERM, grace,
        SIGKILL). A job that has stopped already is a JOB_STATE_CONFLICT."""
        command = requests.parse_cancel(request.data)
        now = self._clock()
        trace = _call_trace()

        def cancel(current: JobRecord) -> JobRecord:
            check_owner(current.owner, f"job {current.id}")
            return transitions.cancel(current, command.reason, now=now, trace=trace)

        canceled = staged(cancel, job_event("stopped"))
        record = await self._repository.modify(command.job_id, canceled)
        log.info("job.canceled", job_id=record.id, reason=command.reason)
        await self._events.flush(record)
        if record.released:
            # Canceled before Start: it held nothing, so no release feeds its span.
            observations.job_stopped(record)
        await self._notify()
        return answers.canceled(record)

    async def platform_stop(self, request: contracts.PlatformStop) -> contracts.PlatformStopped:
        """SCHEDULER_PLATFORM_STOP (Clara.Stop): every queued and running job becomes
        STOPPED/TERMINATED; the leader stops their operators and releases what they hold.
        Answers the count of `jobs` stopped. New jobs are accepted afterwards."""
        stopped = 0
        for phase in (JobPhase.QUEUED, JobPhase.RUNNING):
            for record in await self._repository.in_phase(phase):
                now = self._clock()
                try:
                    terminated = partial(transitions.terminate, reason=STOP_REASON, now=now)
                    record = await self._repository.modify(
                        record.id, staged(terminated, job_event("stopped"))
                    )
                except Conflict:
                    continue
                stopped += 1
                await self._events.flush(record)
        log.info("scheduler.platform_stopped", jobs=stopped)
        await self._notify()
        return contracts.PlatformStopped({"jobs": stopped})


def _call_trace() -> JobTrace | None:
    """Ids for a job's trace, continuing the call being served (the client's Jobs.Start or
    Jobs.Cancel, when it traced it); None when tracing is off."""
    ids = tracing.new_ids()
    return None if ids is None else JobTrace(ids.trace_id, ids.span_id, ids.parent_span_id)
