"""Composition root of the payloads service: its verbs on the bus, in the `payloads` queue
group, so any number of replicas share the requests (state lives only in the stores)."""

from __future__ import annotations

from aorta import contracts, subjects
from aorta.logger import get_logger
from aorta.outbox import Outbox
from aorta.runtime.service import RunningService, ServiceContext
from aorta_services.payloads.contents import PayloadContents
from aorta_services.payloads.events import EventPublisher
from aorta_services.payloads.handlers import ClaraVerbs
from aorta_services.payloads.internal import InternalVerbs
from aorta_services.payloads.repository import PayloadRepository

log = get_logger(__name__)


async def start(ctx: ServiceContext) -> RunningService:
    """Creates the store's indexes, serves every verb; returns once requests from any client
    reach the handlers."""
    repository = PayloadRepository(ctx.store)
    await repository.prepare()
    contents = PayloadContents(ctx.blobs)
    outbox = Outbox(ctx.bus, ctx.store, service="payloads")
    # The outbox's removals of events keep the repository's copies current.
    await outbox.watch(repository.payloads, written=repository.remember)
    events = EventPublisher(outbox, repository)
    clara = ClaraVerbs(repository, contents, events)
    internal = InternalVerbs(repository, contents, events)
    running = RunningService("payloads", ctx.bus)
    async with running.starting():
        running.on_stop(outbox.start_replaying())
        await running.serve(subjects.PAYLOADS_CREATE, clara.create)
        await running.serve(subjects.PAYLOADS_DELETE, clara.delete)
        await running.serve_stream(subjects.PAYLOADS_DETAILS, clara.details)
        await running.serve(subjects.PAYLOADS_REMOVE, clara.remove)
        await running.serve(subjects.PAYLOADS_ADD_METADATA, clara.add_metadata)
        await running.serve(subjects.PAYLOADS_REMOVE_METADATA, clara.remove_metadata)
        await running.serve_verb(contracts.PAYLOADS_CREATE_FOR_JOB, internal.create_for_job)
        await running.serve_verb(contracts.PAYLOADS_LOCK, internal.lock)
        await running.serve_verb(contracts.PAYLOADS_RELEASE, internal.release)
        await running.serve_verb(contracts.PAYLOADS_DISCARD_FOR_JOB, internal.discard_for_job)
        await running.serve_verb(contracts.PAYLOADS_DELETE_FOR_JOB, internal.delete_for_job)
        await running.serve_verb(contracts.PAYLOADS_CHECK_UPLOAD, internal.check_upload)
        await running.serve_verb(contracts.PAYLOADS_FILE_ADDED, internal.file_added)
        await running.serve_verb(contracts.PAYLOADS_LOCATE, internal.locate)
    log.info("payloads.serving")
    return running
