"""Composition root of the payloads service: its verbs on the bus, in the `payloads` queue
group, so any number of replicas share the requests (state lives only in the stores)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aorta import subjects
from aorta.bus import Subscription
from aorta.logger import get_logger
from aorta.runtime.service import ServiceContext
from aorta_services.payloads.contents import PayloadContents
from aorta_services.payloads.events import EventPublisher
from aorta_services.payloads.handlers import ClaraVerbs
from aorta_services.payloads.internal import InternalVerbs
from aorta_services.payloads.repository import PayloadRepository

log = get_logger(__name__)
QUEUE = "payloads"


@dataclass
class RunningPayloads:
    """A started payloads service; `stop` lets requests in hand finish, then stops answering."""

    name: str = "payloads"
    served: list[Subscription] = field(default_factory=list)

    async def stop(self, grace: float) -> None:
        # Each drain is bounded by the bus's own drain timeout; nothing else runs here.
        for subscription in self.served:
            await subscription.drain()
        log.info("payloads.stopped")


async def start(ctx: ServiceContext) -> RunningPayloads:
    """Creates the store's indexes, serves every verb; returns once requests from any client
    reach the handlers."""
    repository = PayloadRepository(ctx.store)
    await repository.prepare()
    contents = PayloadContents(ctx.blobs)
    events = EventPublisher(ctx.bus)
    clara = ClaraVerbs(repository, contents, events)
    internal = InternalVerbs(repository, contents, events)
    running = RunningPayloads()
    bus = ctx.bus
    try:
        running.served += [
            await bus.serve(subjects.PAYLOADS_CREATE, clara.create, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_DELETE, clara.delete, queue=QUEUE),
            await bus.serve_stream(subjects.PAYLOADS_DETAILS, clara.details, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_REMOVE, clara.remove, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_ADD_METADATA, clara.add_metadata, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_REMOVE_METADATA, clara.remove_metadata, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_CREATE_FOR_JOB, internal.create_for_job, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_LOCK, internal.lock, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_RELEASE, internal.release, queue=QUEUE),
            await bus.serve(
                subjects.PAYLOADS_DISCARD_FOR_JOB, internal.discard_for_job, queue=QUEUE
            ),
            await bus.serve(subjects.PAYLOADS_CHECK_UPLOAD, internal.check_upload, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_FILE_ADDED, internal.file_added, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_LOCATE, internal.locate, queue=QUEUE),
        ]
    except BaseException:
        await running.stop(0)
        raise
    log.info("payloads.serving")
    return running
