"""The leader's retention sweep: removes the stopped jobs and payloads the policy names.

Only the lease holder sweeps (`start` when it leads, `stop` when it steps down): at takeover,
then every `AORTA_RETENTION_INTERVAL` seconds, and never when no limit is set. A sweep reads
the released stopped jobs a page at a time (oldest stop first, only the fields the policy
needs), measures their payloads in the blob store when a byte limit is set, asks
`domain.retention.plan` what goes at this moment, and removes it:

- a whole job as `aorta.v1.Jobs/Delete` removes it (`JobDeletion.remove`: its outbox
  published first, then its payload, its logs, its record), `job.deleted` carrying the reason;
- a payload alone through the payloads service (`PAYLOADS_DELETE_FOR_JOB`, which publishes
  `payload.deleted`), then the job's `payload_removed` written with a `job.payload_removed`
  event staged in its outbox (so that record is published at least once).

A sweep holds one small entry per released stopped job (id, phase, stop time, payload size),
which the byte limit needs to choose the oldest; it lists each kept payload in the blob store
only when a byte limit is set.

Each removal is logged (`retention.removed`, with the job, what went and why) and counted
(`aorta_retention_removals_total`, by what went and the policy's limit that removed it); one
that fails is logged (`retention.not_removed`), counted (`aorta_retention_failures_total`) and
tried again at the next sweep, as the policy still names it. REUSABLE payloads and models are
never touched: they belong to no job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace

from aorta import payload_layout
from aorta.blobs import BlobStore
from aorta.errors import AortaError, NotFound
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta.observability import metrics
from aorta.store import Document
from aorta.tasks import cancel_and_wait
from aorta_services.scheduler.deletion import JobDeletion, check_deletable
from aorta_services.scheduler.domain import JobPhase
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.retention import Removal, RetentionStep, StoppedJob, plan
from aorta_services.scheduler.events import JobEvents, job_event, staged
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.repository import JobRepository
from aorta_services.scheduler.retention_settings import RetentionSettings

log = get_logger(__name__)

SWEPT_FIELDS = ("phase", "stopped", "payload_id", "payload_removed")
"""What a sweep reads of each stopped job."""
TASK_NAME = "aorta.scheduler.retention"


class RetentionSweeper:
    """See the module docstring. `clock` is Unix time (tests pass their own)."""

    def __init__(
        self,
        repository: JobRepository,
        deletion: JobDeletion,
        peers: Peers,
        events: JobEvents,
        blobs: BlobStore,
        settings: RetentionSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._deletion = deletion
        self._peers = peers
        self._events = events
        self._blobs = blobs
        self._settings = settings
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Sweeps now and every interval, until `stop`; nothing when no limit is set."""
        if self._settings.policy.active and self._task is None:
            self._task = asyncio.create_task(self._sweep_forever(), name=TASK_NAME)

    async def stop(self) -> None:
        """Ends the sweeps (another replica may lead now); a removal in progress is cut short
        and finished by the next leader's sweep."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def sweep(self) -> list[RetentionStep]:
        """One sweep (module docstring); answers the removals the policy asked for, each
        done unless `retention.not_removed` was logged for it. Store errors reading the jobs
        raise."""
        policy = self._settings.policy
        now = self._clock()
        measure = policy.max_bytes is not None
        jobs: list[StoppedJob] = []
        pages = self._repository.released_stopped(SWEPT_FIELDS)
        async with contextlib.aclosing(pages):
            async for page in pages:
                for document in page:
                    jobs.append(await self._stopped_job(document, measure=measure))
        steps = plan(policy, jobs, now)
        for step in steps:
            await self._apply(step, now)
        return steps

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as error:
                # A guard, as around the engine's passes: a failed sweep must not end the
                # sweeps; the next one reads the store again.
                if isinstance(error, AortaError):
                    log.warning("retention.sweep_failed", error=str(error))
                else:
                    log.exception("retention.sweep_crashed")
            await asyncio.sleep(self._settings.interval)

    async def _stopped_job(self, document: Document, *, measure: bool) -> StoppedJob:
        kept = document.get("payload_removed") is None
        size = 0
        if kept and measure:
            prefix = payload_layout.payload_prefix(document["payload_id"])
            size = sum([info.size async for info in self._blobs.list(prefix)])
        return StoppedJob(
            JobId(document["id"]),
            JobPhase(document["phase"]),
            float(document["stopped"]),
            payload_kept=kept,
            payload_bytes=size,
        )

    async def _apply(self, step: RetentionStep, now: float) -> None:
        try:
            if step.removal is Removal.JOB:
                await self._remove_job(step)
            else:
                await self._remove_payload(step, now)
        except NotFound:
            # Deleted meanwhile (a client's Delete): nothing left to do.
            return
        except AortaError as error:
            log.warning(
                "retention.not_removed",
                job_id=step.job_id,
                removal=step.removal.value,
                error=str(error),
            )
            if metrics.recording():
                metrics.RETENTION_FAILURES.labels(step.removal.value).inc()
            return
        log.info(
            "retention.removed", job_id=step.job_id, removal=step.removal.value, reason=step.reason
        )
        if metrics.recording():
            metrics.RETENTION_REMOVALS.labels(step.removal.value, step.limit.value).inc()

    async def _remove_job(self, step: RetentionStep) -> None:
        record = await self._repository.get(step.job_id)
        check_deletable(record)
        await self._deletion.remove(record, reason=f"retention: {step.reason}")

    async def _remove_payload(self, step: RetentionStep, now: float) -> None:
        await self._peers.delete_payload(step.job_id)
        reason = f"retention: {step.reason}"

        def removed(record: JobRecord) -> JobRecord:
            return replace(record, payload_removed=now)

        record = await self._repository.modify(
            step.job_id, staged(removed, job_event("payload_removed", {"reason": reason}))
        )
        await self._events.flush(record)
