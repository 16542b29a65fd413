"""Composition root of the pipelines service: its verbs on the bus, in the `pipelines` queue
group, so any number of replicas share the requests (state lives only in the store)."""

from __future__ import annotations

from aorta import contracts, subjects
from aorta.logger import get_logger
from aorta.outbox import Outbox
from aorta.runtime.service import RunningService, ServiceContext
from aorta_services.pipelines.handlers import PipelineHandlers
from aorta_services.pipelines.repository import PipelineRepository

log = get_logger(__name__)


async def start(ctx: ServiceContext) -> RunningService:
    """Serves every verb; returns once requests from any client reach the handlers."""
    repository = PipelineRepository(ctx.store)
    await repository.prepare()
    outbox = Outbox(ctx.bus, ctx.store, service="pipelines")
    await outbox.watch(repository.collection)
    handlers = PipelineHandlers(repository, outbox)
    running = RunningService("pipelines", ctx.bus)
    async with running.starting():
        running.on_stop(outbox.start_replaying())
        await running.serve_verb(contracts.PIPELINES_CREATE, handlers.create)
        await running.serve_verb(contracts.PIPELINES_UPDATE, handlers.update)
        await running.serve_stream(subjects.PIPELINES_DETAILS, handlers.details)
        await running.serve_stream(subjects.PIPELINES_LIST, handlers.list_pipelines)
        await running.serve(subjects.PIPELINES_REMOVE, handlers.remove)
        await running.serve(subjects.PIPELINES_ADD_METADATA, handlers.add_metadata)
        await running.serve(subjects.PIPELINES_REMOVE_METADATA, handlers.remove_metadata)
        await running.serve_verb(contracts.PIPELINES_SNAPSHOT, handlers.snapshot)
    log.info("pipelines.serving")
    return running
