"""A queued job's admission: what the leader does, in a task of its own, once the queue chose
the job and its peak was reserved (`engine.Engine`): the definition resolved, the Triton server
acquired for its models, its pipeline services ensured, and the job written RUNNING with its
`job.started` event staged (docs/jobs.md). A job that can no longer run is faulted with why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from structlog.contextvars import bind_contextvars

from aorta.errors import AortaError, Invalid
from aorta.ids import JobId
from aorta.logger import get_logger
from aorta.observability import tracing
from aorta_services.scheduler import observations
from aorta_services.scheduler.active import ActiveJob, admission_owner
from aorta_services.scheduler.domain import JobPhase, ResourceLedger, transitions
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.domain.waiting import waiting_for_triton
from aorta_services.scheduler.events import job_event, staged
from aorta_services.scheduler.operator_runs import EngineParts
from aorta_services.scheduler.peers import Peers
from aorta_services.scheduler.service_admission import ServiceAdmission
from aorta_services.scheduler.waits import record_job_wait

log = get_logger(__name__)


@dataclass(frozen=True)
class Admission:
    """What an admission uses of the engine's: `fault(record, reason)` faults a job."""

    parts: EngineParts
    peers: Peers
    ledger: ResourceLedger
    services: ServiceAdmission
    fault: Callable[[JobRecord, str], Awaitable[JobRecord | None]]


async def admitted_job(admission: Admission, job_id: JobId, rotation: int) -> ActiveJob | None:
    """The job written RUNNING, or None when it may not run (faulted, or no longer
    queued). `Conflict` when another writer won; store errors propagate."""
    parts = admission.parts
    record = await parts.repository.get(job_id)
    if record.phase is not JobPhase.QUEUED:
        return None
    if record.trace.trace_id:
        # This task's own context: the admission's log lines name the job's trace.
        bind_contextvars(trace_id=record.trace.trace_id)
    definition = await parts.repository.definition(job_id)
    try:
        pipeline = definition.resolved(record.variables)
    except Invalid as error:
        why = "; ".join(error.messages)
        await admission.fault(record, f"the job's definition can no longer be resolved: {why}")
        return None
    triton = None
    triton_wait = None
    if record.models:
        waiting = waiting_for_triton(record.models)
        record = await record_job_wait(parts.events, job_id, waiting, known=record) or record
        try:
            # The admission reservation names the devices lowest free first, as the job's
            # operators will get them, so its Triton server runs on the job's own GPUs.
            reserved = admission.ledger.allocations().get(admission_owner(job_id))
            gpus = reserved.gpus if reserved is not None else ()
            requested = parts.clock()
            with tracing.job_parent(record.trace.trace_id, record.trace.span_id):
                triton = await admission.peers.acquire_triton(job_id, record.models, gpus)
            triton_wait = (requested, parts.clock())
        except AortaError as error:
            models = ", ".join(record.models)
            why = "; ".join(error.messages)
            await admission.fault(
                record, f"no Triton server with the models {models} could be had: {why}"
            )
            return None
    failed = await admission.services.ensure(record, pipeline)
    if failed is not None:
        await admission.fault(record, failed)
        return None
    # Through the events: the write also removes a `job.queued` the leader's Start left.
    record = await parts.events.modify(
        job_id,
        staged(
            lambda r: transitions.admit(
                r, now=parts.clock(), rotation=rotation, triton=triton, triton_wait=triton_wait
            ),
            job_event("started"),
        ),
        known=record,
    )
    log.info("job.started", priority=record.priority.name)
    observations.job_admitted(record)
    # Its first operator's RUNNING write, coming next, removes the published event.
    await parts.events.flush(record, later=True)
    started = record.started if record.started is not None else parts.clock()
    return ActiveJob(record, pipeline, deadline=started + record.timeout + parts.settings.grace)
