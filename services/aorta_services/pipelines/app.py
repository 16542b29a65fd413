"""Composition root of the pipelines service: its verbs on the bus, in the `pipelines` queue
group, so any number of replicas share the requests (state lives only in the store)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aorta import subjects
from aorta.bus import Subscription
from aorta.logger import get_logger
from aorta.runtime.service import ServiceContext
from aorta_services.pipelines.handlers import PipelineHandlers
from aorta_services.pipelines.repository import PipelineRepository

log = get_logger(__name__)
QUEUE = "pipelines"


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
            await bus.serve(subjects.PIPELINES_CREATE, handlers.create, queue=QUEUE),
            await bus.serve(subjects.PIPELINES_UPDATE, handlers.update, queue=QUEUE),
            await bus.serve_stream(subjects.PIPELINES_DETAILS, handlers.details, queue=QUEUE),
            await bus.serve_stream(subjects.PIPELINES_LIST, handlers.list_pipelines, queue=QUEUE),
            await bus.serve(subjects.PIPELINES_REMOVE, handlers.remove, queue=QUEUE),
            await bus.serve(subjects.PIPELINES_ADD_METADATA, handlers.add_metadata, queue=QUEUE),
            await bus.serve(
                subjects.PIPELINES_REMOVE_METADATA, handlers.remove_metadata, queue=QUEUE
            ),
            await bus.serve(subjects.PIPELINES_SNAPSHOT, handlers.snapshot, queue=QUEUE),
        ]
    except BaseException:
        await running.stop(0)
        raise
    log.info("pipelines.serving")
    return running
