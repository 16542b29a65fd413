"""Composition root of the payloads service: its verbs on the bus, in the `payloads` queue
group, so any number of replicas share the requests (state lives only in the stores)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aorta import subjects
from aorta.bus import Subscription
from aorta.lifecycle import ServiceContext
from aorta.logs import get_logger

from .contents import PayloadContents
from .events import EventPublisher
from .handlers import ClaraVerbs
from .internal import InternalVerbs
from .repository import PayloadRepository

log = get_logger(__name__)
QUEUE = "payloads"

CREATE = subjects.rpc("payloads", "create")
"""PayloadsCreateRequest -> PayloadsCreateResponse."""
DELETE = subjects.rpc("payloads", "delete")
"""PayloadsDeleteRequest -> PayloadsDeleteResponse."""
DETAILS = subjects.rpc("payloads", "details")
"""PayloadsDetailsRequest -> stream of PayloadsDetailsResponse."""
REMOVE = subjects.rpc("payloads", "remove")
"""PayloadsRemoveRequest -> PayloadsRemoveResponse."""
ADD_METADATA = subjects.rpc("payloads", "add_metadata")
"""PayloadsAddMetadataRequest -> PayloadsAddMetadataResponse."""
REMOVE_METADATA = subjects.rpc("payloads", "remove_metadata")
"""PayloadsRemoveMetadataRequest -> PayloadsRemoveMetadataResponse."""
CHECK_UPLOAD = subjects.rpc("payloads", "check_upload")
"""{payload_id} -> {payload_id, type, job_id}: files may be uploaded now (schemas: `wire`)."""
FILE_ADDED = subjects.rpc("payloads", "file_added")
"""{payload_id, name, size, sha256, mode} -> {}: the gateway stored an uploaded file."""
LOCATE = subjects.rpc("payloads", "locate")
"""{payload_id, name} -> {key, name, size, mode}: the file a Download names."""


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
            await bus.serve(CREATE, clara.create, queue=QUEUE),
            await bus.serve(DELETE, clara.delete, queue=QUEUE),
            await bus.serve_stream(DETAILS, clara.details, queue=QUEUE),
            await bus.serve(REMOVE, clara.remove, queue=QUEUE),
            await bus.serve(ADD_METADATA, clara.add_metadata, queue=QUEUE),
            await bus.serve(REMOVE_METADATA, clara.remove_metadata, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_CREATE_FOR_JOB, internal.create_for_job, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_LOCK, internal.lock, queue=QUEUE),
            await bus.serve(subjects.PAYLOADS_RELEASE, internal.release, queue=QUEUE),
            await bus.serve(CHECK_UPLOAD, internal.check_upload, queue=QUEUE),
            await bus.serve(FILE_ADDED, internal.file_added, queue=QUEUE),
            await bus.serve(LOCATE, internal.locate, queue=QUEUE),
        ]
    except BaseException:
        await running.stop(0)
        raise
    log.info("payloads.serving")
    return running
