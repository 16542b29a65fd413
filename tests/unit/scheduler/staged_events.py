"""A stored job with an event staged in its document, for tests of the events' flushes."""

from __future__ import annotations

from dataclasses import replace

from aorta.bus import CloudEvent, make_event
from aorta.outbox import event_document
from aorta_services.scheduler.domain.definition import Definition
from aorta_services.scheduler.domain.job_record import JobRecord
from aorta_services.scheduler.repository import JobRepository
from tests.unit.scheduler.test_transitions import FORK, created


async def job_with_created_event(repository: JobRepository) -> tuple[JobRecord, CloudEvent]:
    """A visible job stored through `repository` whose document holds its `created` event,
    staged and not published yet; the job as stored and the event."""
    definition = Definition(root="f.yaml", files=(("f.yaml", FORK),))
    job = await repository.insert(replace(created(), visible=True), definition)
    event = make_event("scheduler", "job", job.id, "created", {"state": "PENDING"})
    job = await repository.modify(job.id, lambda r: r.with_event(event_document(event)))
    return job, event
