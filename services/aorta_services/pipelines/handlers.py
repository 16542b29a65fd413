"""The service's bus verbs: requests in (Clara messages, see `wire`, or contracts, see
`aorta.contracts`), domain and store calls, answers out.

A pipeline records the subject that created it (`owner`); Update and the metadata verbs are
its owner's or an admin's (`aorta.auth.ownership`, checked on the record read for the write),
while Details and List are open to every caller.

Every verb checks the whole request before it writes anything and writes once, its event
(`pipeline.created`, `pipeline.updated`, `pipeline.removed`) staged in that write, then
publishes it (`aorta.outbox`, at least once): an event always describes state the store held.
`removed` is staged apart before the delete. Events carry `{"pipeline_id", "name"}`; `updated`
adds `"change": "definition" | "metadata"`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

from aorta import contracts, ids
from aorta.api import pipelines_pb2
from aorta.auth.ownership import check_owner
from aorta.auth.principal import current_principal
from aorta.bus import CloudEvent, Request, StreamItem, make_event
from aorta.bus.batches import LIST_BATCH_BYTES, batched
from aorta.bus.port import DEFAULT_MAX_PAYLOAD
from aorta.errors import AortaError, ErrorCode
from aorta.ids import PipelineId
from aorta.logger import get_logger
from aorta.metadata import add_metadata, remove_metadata
from aorta.outbox import Outbox
from aorta_services.pipelines import answers, wire
from aorta_services.pipelines.domain import DefinitionFile, PipelineRecord, load_definition
from aorta_services.pipelines.repository import PipelineRepository

log = get_logger(__name__)

SERVICE = "pipelines"

MAX_ANSWER_BYTES = DEFAULT_MAX_PAYLOAD - 64 * 1024
"""The largest answer the service sends: one bus message (`DEFAULT_MAX_PAYLOAD`, 8 MiB), less
room for the headers and the reply envelope; room for 4 MiB of metadata (`aorta.metadata`)."""


class PipelineHandlers:
    """The handlers of every pipelines verb, over one repository and one outbox."""

    def __init__(
        self,
        repository: PipelineRepository,
        outbox: Outbox,
        *,
        answer_limit: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._repository = repository
        self._outbox = outbox
        self._limit = answer_limit

    async def create(
        self, command: contracts.CreatePipeline
    ) -> pipelines_pb2.PipelinesCreateResponse:
        """Create: loads the definition, stores it, answers `PipelinesCreateResponse` with the
        definition's warnings as header messages (code 0)."""
        id = ids.pipeline_id(command.pipeline_id) if command.pipeline_id else _fresh_id()
        definition = load_definition(_files(command.files))
        metadata = add_metadata({}, command.metadata)
        record = PipelineRecord.new(id, definition, metadata, current_principal().subject)
        answers.check_fits(
            record,
            self._limit,
            code=ErrorCode.PIPELINE_DEFINITION_ERROR,
            what="the definition with its metadata",
        )
        document = await self._repository.insert(record, _event(record, "created"))
        stored = PipelineRecord.from_document(document)
        log.info(
            "pipeline.created",
            pipeline_id=stored.id,
            files=len(stored.files),
            operators=len(stored.operators),
            warnings=len(definition.warnings),
        )
        await self._outbox.flush(self._repository.collection, document)
        return answers.created(stored, definition.warnings)

    async def update(
        self, command: contracts.UpdatePipeline
    ) -> pipelines_pb2.PipelinesUpdateResponse:
        """Update: replaces the definition (jobs keep the snapshot they were created with)."""
        id = ids.pipeline_id(command.pipeline_id)
        definition = load_definition(_files(command.files))

        def replaced(current: PipelineRecord) -> PipelineRecord:
            check_owner(current.owner, f"pipeline {id}")
            record = current.with_definition(definition)
            answers.check_fits(
                record,
                self._limit,
                code=ErrorCode.PIPELINE_DEFINITION_ERROR,
                what="the new definition with the pipeline's metadata",
            )
            return record

        stored = await self._modify(id, replaced, change_="definition")
        log.info("pipeline.updated", pipeline_id=id, files=len(stored.files))
        return answers.updated(definition.warnings)

    async def details(self, request: Request) -> AsyncIterator[bytes]:
        """Details (`contracts.PIPELINES_DETAILS`): one `PipelinesDetailsResponse` per
        definition file, root first, each with the pipeline's owner; open to every caller."""
        message = wire.parse_message(request.data, pipelines_pb2.PipelinesDetailsRequest)
        record = await self._repository.get(ids.pipeline_id(message.pipeline_id.value))
        for answer in answers.details_items(record):
            yield answer

    async def list_pipelines(self, request: Request) -> AsyncIterator[StreamItem]:
        """List: one `PipelinesListResponse` per pipeline, oldest first (one without details
        when there is none), read from the store a page at a time as the bus takes them; a
        page's small items travel in batches of `LIST_BATCH_BYTES` (`aorta.bus.batches`),
        each encoded only as its batch is filled."""
        wire.parse_message(request.data, pipelines_pb2.PipelinesListRequest)
        listed = 0
        pages = self._repository.listed()
        async with aclosing(pages):
            async for page in pages:
                encoded = (answers.list_item(d).SerializeToString() for d in page)
                for item in batched(encoded, LIST_BATCH_BYTES):
                    yield item
                listed += len(page)
        if not listed:
            yield answers.empty_list().SerializeToString()

    async def remove(self, request: Request) -> bytes:
        message = wire.parse_message(request.data, pipelines_pb2.PipelinesRemoveRequest)
        document = await self._repository.get_document(ids.pipeline_id(message.pipeline_id.value))
        record = PipelineRecord.from_document(document)
        entry = await self._outbox.stage_apart(
            _event(record, "removed"), self._repository.collection, record.id, document
        )
        try:
            await self._repository.delete(document)
        except AortaError:
            await self._outbox.discard_apart(entry)
            raise
        log.info("pipeline.removed", pipeline_id=record.id)
        await self._outbox.publish_apart(entry)
        return answers.removed()

    async def add_metadata(self, request: Request) -> bytes:
        """AddMetadata: Clara's rules (`aorta.metadata`); any broken rule changes nothing."""
        message = wire.parse_message(request.data, pipelines_pb2.PipelinesAddMetadataRequest)
        id = ids.pipeline_id(message.pipeline_id.value)
        new = dict(message.metadata)

        def added(current: PipelineRecord) -> PipelineRecord:
            check_owner(current.owner, f"pipeline {id}")
            record = current.with_metadata(add_metadata(current.metadata, new))
            answers.check_fits(
                record, self._limit, code=ErrorCode.METADATA_INVALID, what="the new metadata"
            )
            return record

        stored = await self._modify(id, added, change_="metadata")
        log.info("pipeline.metadata_added", pipeline_id=id, keys=len(new))
        return answers.metadata_added(stored)

    async def remove_metadata(self, request: Request) -> bytes:
        """RemoveMetadata: keys that are absent are ignored (see `aorta.metadata`)."""
        message = wire.parse_message(request.data, pipelines_pb2.PipelinesRemoveMetadataRequest)
        id = ids.pipeline_id(message.pipeline_id.value)
        keys = list(message.keys)

        def removed(current: PipelineRecord) -> PipelineRecord:
            check_owner(current.owner, f"pipeline {id}")
            return current.with_metadata(remove_metadata(current.metadata, keys))

        stored = await self._modify(id, removed, change_="metadata")
        log.info("pipeline.metadata_removed", pipeline_id=id, keys=len(keys))
        return answers.metadata_removed(stored)

    async def snapshot(self, request: contracts.SnapshotRequest) -> contracts.PipelineSnapshot:
        """PIPELINES_SNAPSHOT: the definition as it is now, for a job to keep."""
        return answers.snapshot(await self._repository.get(request.pipeline_id))

    async def _modify(
        self, id: PipelineId, change: Callable[[PipelineRecord], PipelineRecord], *, change_: str
    ) -> PipelineRecord:
        """`change` with its `updated` event staged in the same write, then published."""
        document = await self._repository.modify(
            id, change, lambda record: _event(record, "updated", change=change_)
        )
        await self._outbox.flush(self._repository.collection, document)
        return PipelineRecord.from_document(document)


def _event(record: PipelineRecord, event: str, **extra: Any) -> CloudEvent:
    data = {"pipeline_id": record.id, "name": record.name, **extra}
    return make_event(SERVICE, "pipeline", record.id, event, data)


def _fresh_id() -> PipelineId:
    return PipelineId(ids.new_id())


def _files(files: tuple[contracts.PipelineFile, ...]) -> tuple[DefinitionFile, ...]:
    return tuple(DefinitionFile(file.path, file.content) for file in files)
