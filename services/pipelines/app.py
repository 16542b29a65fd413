"""Composition root of the pipelines service: its verbs on the bus, in the `pipelines` queue
group, so any number of replicas share the requests (state lives only in the store)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aorta import subjects
from aorta.bus import Subscription
from aorta.lifecycle import ServiceContext
from aorta.logs import get_logger

from .handlers import PipelineHandlers
from .repository import PipelineRepository

log = get_logger(__name__)
QUEUE = "pipelines"

CREATE = subjects.rpc("pipelines", "create")
"""create body (JSON, see `wire`) -> PipelinesCreateResponse."""
UPDATE = subjects.rpc("pipelines", "update")
"""update body (JSON, see `wire`) -> PipelinesUpdateResponse."""
DETAILS = subjects.rpc("pipelines", "details")
"""PipelinesDetailsRequest -> stream of PipelinesDetailsResponse."""
LIST = subjects.rpc("pipelines", "list")
"""PipelinesListRequest -> stream of PipelinesListResponse."""
REMOVE = subjects.rpc("pipelines", "remove")
"""PipelinesRemoveRequest -> PipelinesRemoveResponse."""
ADD_METADATA = subjects.rpc("pipelines", "add_metadata")
"""PipelinesAddMetadataRequest -> PipelinesAddMetadataResponse."""
REMOVE_METADATA = subjects.rpc("pipelines", "remove_metadata")
"""PipelinesRemoveMetadataRequest -> PipelinesRemoveMetadataResponse."""


@dataclass
class RunningPipelines:
    """A started pipelines service; `stop` lets requests in hand finish, then stops answering."""

    name: str = "pipelines"
    served: list[Subscription] = field(default_factory=list)

    async def stop(self, grace: float) -> None:
        # Each drain is bounded by the bus's own drain timeout; nothing else runs here.
        for subscription in self.served:
            await subscription.drain()
        log.info("pipelines.stopped")


async def start(ctx: ServiceContext) -> RunningPipelines:
    """Serves every verb; returns once requests from any client reach the handlers."""
    handlers = PipelineHandlers(PipelineRepository(ctx.store), ctx.bus)
    running = RunningPipelines()
    bus = ctx.bus
    try:
        running.served += [
            await bus.serve(CREATE, handlers.create, queue=QUEUE),
            await bus.serve(UPDATE, handlers.update, queue=QUEUE),
            await bus.serve_stream(DETAILS, handlers.details, queue=QUEUE),
            await bus.serve_stream(LIST, handlers.list_pipelines, queue=QUEUE),
            await bus.serve(REMOVE, handlers.remove, queue=QUEUE),
            await bus.serve(ADD_METADATA, handlers.add_metadata, queue=QUEUE),
            await bus.serve(REMOVE_METADATA, handlers.remove_metadata, queue=QUEUE),
            await bus.serve(subjects.PIPELINES_SNAPSHOT, handlers.snapshot, queue=QUEUE),
        ]
    except BaseException:
        await running.stop(0)
        raise
    log.info("pipelines.serving")
    return running
