"""The model verbs: upload, download, list, delete and metadata (Clara messages in `wire`;
upload and download are contracts, `aorta.contracts.MODELS_UPLOAD` and `MODELS_DOWNLOAD`).

Every verb checks the whole request before it writes anything and writes once, its event
(`model.uploaded`, `model.deleted`: `aorta_services.models.events`) staged with that write, and
only then publishes it (`aorta.outbox`, at least once), so an event always describes state the
store held.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import aclosing

from aorta import contracts, ids
from aorta.api import models_pb2
from aorta.blobs import BlobStore
from aorta.bus import Request
from aorta.errors import AortaError, Conflict, ErrorCode
from aorta.logger import get_logger
from aorta.metadata import add_metadata, remove_metadata
from aorta.outbox import Outbox
from aorta.store import Document, kept_changing, optimistic_update
from aorta_services.models import answers, events, wire
from aorta_services.models.archives import ModelArchives
from aorta_services.models.domain.model_record import ModelRecord, model_prefix
from aorta_services.models.pool_cluster import PoolCluster
from aorta_services.models.repository import ModelRepository

log = get_logger(__name__)

SERVICE = "models"


class ModelHandlers:
    """The handlers of the model verbs, over the repository, the archives and the pool."""

    def __init__(
        self,
        repository: ModelRepository,
        archives: ModelArchives,
        blobs: BlobStore,
        pool: PoolCluster,
        outbox: Outbox,
    ) -> None:
        self._repository = repository
        self._archives = archives
        self._blobs = blobs
        self._pool = pool
        self._outbox = outbox

    async def upload(self, command: contracts.UploadModel) -> models_pb2.ModelsUploadModelResponse:
        """Checks and stores the staged archive; a model of the same name is replaced."""
        stored, replaced = await self._archives.accept(command)
        log.info(
            "model.uploaded",
            model_id=stored.id,
            name=stored.name,
            revision=stored.revision,
            size=stored.archive_size,
            replaced=replaced is not None,
        )
        document = await self._repository.get_document(stored.id)
        if document is not None:
            await self._outbox.flush(self._repository.collection, document)
        return models_pb2.ModelsUploadModelResponse(
            header=answers.header(), details=stored.details()
        )

    async def download(
        self, request: models_pb2.ModelsDownloadModelRequest
    ) -> contracts.ModelLocation:
        """Where the gateway finds the archive."""
        record = await self._repository.get(ids.model_id(request.model_id.value))
        return contracts.ModelLocation(record.details(), record.archive_key, record.archive_size)

    async def list_models(self, request: Request) -> AsyncIterator[bytes]:
        """Every model, by name, packed (see `answers`), read from the store a page at a
        time as the bus takes the messages."""
        wire.parse_message(request.data, models_pb2.ModelsListModelsRequest)
        listed = False
        pages = self._repository.listed()
        async with aclosing(pages):
            async for page in pages:
                listed = True
                for answer in answers.list_models(page):
                    yield answer
        if not listed:
            for answer in answers.list_models([]):
                yield answer

    async def delete(self, request: Request) -> bytes:
        """Deletes a model, refused with MODEL_IN_USE while a running job holds a Triton
        server (of any replica) that holds it."""
        message = wire.parse_message(request.data, models_pb2.ModelsDeleteModelRequest)
        id = ids.model_id(message.model_id.value)

        async def unused() -> ModelRecord:
            record = await self._repository.get(id)
            jobs = await self._pool.jobs_using(record.name)
            if jobs:
                held = f"job {jobs[0]}" if len(jobs) == 1 else f"jobs {', '.join(jobs)}"
                raise Conflict(
                    f"model {record.name!r} ({id}) is in use by running {held}: delete it "
                    "once no running job uses it",
                    code=ErrorCode.MODEL_IN_USE,
                )
            return record

        async def remove(record: ModelRecord) -> tuple[ModelRecord, Document]:
            # Deleted only at the version read, so the pending events carried are all there are.
            document = await self._repository.get_document(id)
            entry = await self._outbox.stage_apart(
                events.deleted(record), self._repository.collection, id, document
            )
            try:
                await self._repository.delete(record)
            except AortaError:
                await self._outbox.discard_apart(entry)
                raise
            return record, entry

        busy = kept_changing(f"model {id}", code=ErrorCode.MODEL_STORE_ERROR)
        record, entry = await optimistic_update(unused, remove, gave_up=busy)
        removed = await self._blobs.delete_prefix(model_prefix(id))
        await self._pool.pool.forget(record.name)
        log.info("model.deleted", model_id=id, name=record.name, blobs=removed)
        await self._outbox.publish_apart(entry)
        response = models_pb2.ModelsDeleteModelResponse(
            header=answers.header(), model_id=answers.identifier(id)
        )
        return response.SerializeToString()

    async def add_metadata(self, request: Request) -> bytes:
        """Clara's metadata rules (`aorta.metadata`); any broken rule changes nothing."""
        message = wire.parse_message(request.data, models_pb2.ModelsAddMetadataRequest)
        id = ids.model_id(message.model_id.value)
        new = dict(message.metadata)

        def added(current: ModelRecord) -> ModelRecord:
            record = _with_metadata(current, add_metadata(current.metadata, new))
            answers.check_details_fit(record.details())
            return record

        stored = await self._repository.modify(id, added)
        log.info("model.metadata_added", model_id=id, keys=len(new))
        response = models_pb2.ModelsAddMetadataResponse(
            header=answers.header(), model_id=answers.identifier(id), metadata=stored.metadata
        )
        return response.SerializeToString()

    async def remove_metadata(self, request: Request) -> bytes:
        """Keys that are absent are ignored (see `aorta.metadata`)."""
        message = wire.parse_message(request.data, models_pb2.ModelsRemoveMetadataRequest)
        id = ids.model_id(message.model_id.value)
        keys = list(message.keys)
        stored = await self._repository.modify(
            id, lambda current: _with_metadata(current, remove_metadata(current.metadata, keys))
        )
        log.info("model.metadata_removed", model_id=id, keys=len(keys))
        response = models_pb2.ModelsRemoveMetadataResponse(
            header=answers.header(), model_id=answers.identifier(id), metadata=stored.metadata
        )
        return response.SerializeToString()


def _with_metadata(record: ModelRecord, metadata: dict[str, str]) -> ModelRecord:
    return dataclasses.replace(record, metadata=metadata)
