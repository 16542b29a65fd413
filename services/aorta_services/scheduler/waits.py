"""The leader keeps every wait reason current in the job documents, where every replica reads
them (`Jobs.Status`, `aorta.v1.Jobs/Queue`).

After each pass the engine hands `WaitRecorder.refresh` what it decided with: the queue, the
ledger, the queued jobs' peak requests and the jobs it runs. The reasons are worked out there
(`domain.waiting`), and a job document is written only when one of its reasons changed since
this leader last wrote it, so a pass that changes nothing writes nothing; the writes run
beside the passes, never holding one up. A reason carries no
duration, so time passing changes none. A new leader starts with nothing remembered: its first
pass reads each waiting job and writes only those whose stored reason differs.

Reasons found outside a pass (a Triton server or a pipeline service being made ready while a
job is admitted) are written at once with `record_job_wait`, and `record_operator_wait` is
the same for an operator. The transitions that end a wait clear its reason (admission, an
operator's start, every stop), so nothing here has to.

The recorder's writes start from the leader's copy of each job, as its other writes do: the
queued jobs its last resync read or its Start handed over (`remember`, `keep`, then each
write's result) and the records of the jobs it runs. A copy that is no longer the stored one
only loses a race, and the change is made again on the job read afresh. They go through
`JobEvents.modify`, so a write also removes the events this leader published and left staged
(a `job.queued` its own Start left).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping
from functools import partial
from typing import Any, Protocol

from aorta.errors import AortaError
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta_services.scheduler.active import ActiveJob, admission_owner
from aorta_services.scheduler.domain import JobQueue, Request, ResourceLedger
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.wait_changes import with_job_wait, with_operator_wait
from aorta_services.scheduler.domain.waiting import (
    Holder,
    WaitReason,
    operator_reason,
    queue_reasons,
)

log = get_logger(__name__)


class JobWriter(Protocol):
    """What writes a reason: `JobRepository.modify`, or `JobEvents.modify` (which also removes
    the events left staged)."""

    async def modify(
        self,
        job_id: JobId,
        change: Callable[[JobRecord], JobRecord],
        *,
        known: JobRecord | None = None,
    ) -> JobRecord: ...


def holder_of(active: Mapping[JobId, ActiveJob], owner: str) -> Holder:
    """The `Holder` a ledger owner (`<job id>/<operator>`) names, with the time its operator's
    current attempt started when this leader runs the job."""
    job_id, _, operator = owner.partition("/")
    if owner == admission_owner(job_id):
        return Holder(job_id)
    job = active.get(JobId(job_id))
    since = None
    if job is not None:
        since = next((op.started for op in job.record.operators if op.name == operator), None)
    return Holder(job_id, operator, since)


async def _store(
    writer: JobWriter,
    job_id: JobId,
    change: Callable[[JobRecord], JobRecord],
    known: JobRecord | None,
) -> JobRecord | None:
    """Writes one reason change; None when the store refused it (logged: the next pass, or
    the wait's end, puts it right)."""
    try:
        return await writer.modify(job_id, change, known=known)
    except AortaError as error:
        log.warning("job.wait_reason_not_stored", job_id=job_id, error=str(error))
        return None


async def record_job_wait(
    writer: JobWriter,
    job_id: JobId,
    reason: WaitReason | None,
    *,
    known: JobRecord | None = None,
) -> JobRecord | None:
    """Stores a queued job's reason now (`None` clears it); nothing for a job that is no
    longer queued. `known`: the caller's copy of the job, changed instead of a fresh read
    (`JobRepository.modify`). Store errors are logged, not raised: a reason is worth a line
    in the log, never a failed admission."""
    return await _store(writer, job_id, partial(with_job_wait, reason=reason), known)


async def record_operator_wait(
    writer: JobWriter,
    job_id: JobId,
    operator: str,
    reason: WaitReason | None,
    *,
    known: JobRecord | None = None,
) -> JobRecord | None:
    """Stores the reason of a PENDING operator of a running job now (`None` clears it), as
    `record_job_wait` does for a job."""
    change = partial(with_operator_wait, name=operator, reason=reason)
    return await _store(writer, job_id, change, known)


Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class WaitRecorder:
    """The reasons this leader wrote last, and the writes that keep them current.

    The writes run in one task of their own (`spawn`, the engine's), so a pass that finds many
    reasons changed (hundreds of jobs started at once) never waits for the store: it leaves the
    newest reason of each job or operator to that task, which writes them one by one.
    """

    def __init__(self, writer: JobWriter, spawn: Spawn) -> None:
        self._job_writer = writer
        self._spawn = spawn
        self._written: dict[tuple[JobId, str], WaitReason] = {}
        self._pending: dict[tuple[JobId, str], WaitReason] = {}
        self._writer: asyncio.Task[None] | None = None
        self._active: Mapping[JobId, ActiveJob] = {}
        self._copies: dict[JobId, JobRecord] = {}
        """The latest record seen of each queued job (module docstring)."""

    def remember(self, queued: Iterable[JobRecord]) -> None:
        """The queued jobs as the leader's resync read them: the copies their reasons' writes
        start from (a newer copy of one, from a write since, is kept)."""
        copies = {}
        for record in queued:
            known = self._copies.get(record.id)
            copies[record.id] = known if known and known.version > record.version else record
        self._copies = copies

    def keep(self, record: JobRecord) -> None:
        """A queued job's copy handed to the leader outside a resync (`Engine.queued`), kept
        as if a resync had read it (a newer copy of it is kept instead)."""
        known = self._copies.get(record.id)
        if known is None or known.version < record.version:
            self._copies[record.id] = record

    def refresh(
        self,
        queue: JobQueue,
        ledger: ResourceLedger,
        peaks: Mapping[JobId, Request],
        active: Mapping[JobId, ActiveJob],
        now: float,
        found: Mapping[JobId, WaitReason] | None = None,
    ) -> None:
        """Works out every queued job's reason and every ready but waiting operator's, and
        has those that changed written (module docstring). `found` are reasons the engine
        found itself (`domain.waiting.queue_reasons`)."""
        holder = partial(holder_of, active)
        # Keyed by job and operator, "" for the job's own reason.
        wanted: dict[tuple[JobId, str], WaitReason] = {
            (job_id, ""): reason
            for job_id, reason in queue_reasons(queue, ledger, peaks, now, holder, found).items()
        }
        for job in active.values():
            for name in job.launchable():
                reason = operator_reason(ledger, job.record.operator(name).request, holder)
                if reason is not None:
                    wanted[(job.id, name)] = reason
        self._written = {key: value for key, value in self._written.items() if key in wanted}
        self._copies = {
            job_id: copy for job_id, copy in self._copies.items() if (job_id, "") in wanted
        }
        self._pending = {
            key: reason for key, reason in wanted.items() if self._written.get(key) != reason
        }
        self._active = active
        if self._pending and (self._writer is None or self._writer.done()):
            self._writer = self._spawn(self._write_pending(), "aorta.scheduler.wait_reasons")

    async def _write_pending(self) -> None:
        while self._pending:
            key = next(iter(self._pending))
            reason = self._pending.pop(key)
            job_id, operator = key
            running = self._active.get(job_id)
            if not operator:
                known = self._copies.get(job_id)
                record = await record_job_wait(self._job_writer, job_id, reason, known=known)
                if record is not None:
                    self._written[key] = reason
                    if job_id in self._copies:
                        self._copies[job_id] = record
                continue
            known = running.record if running is not None else None
            record = await record_operator_wait(
                self._job_writer, job_id, operator, reason, known=known
            )
            if record is not None:
                self._written[key] = reason
                if running is not None:
                    running.update(record)
